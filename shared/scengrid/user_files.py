"""Files a user names by URI (a portfolio, a scenario file): ``s3://bucket/key`` or a local
path. S3 objects are read through the client factory, in ranges, so that reading a Parquet
file's footer or a few of its row groups does not download the whole object."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from scengrid.aws import client
from scengrid.errors import InvalidInput

S3_SCHEME = "s3://"


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    return bucket, key


class RangeFile(io.RawIOBase):
    """A seekable, read-only file of ``size`` bytes whose reads are ranges: a subclass gives
    ``_read(start, end)`` (bytes ``start .. end - 1``) and sets ``size``."""

    size = 0
    _position = 0

    def _read(self, start: int, end: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self.size, self._position + len(buffer))
        if end <= self._position:
            return 0
        body = self._read(self._position, end)
        buffer[: len(body)] = body
        self._position += len(body)
        return len(body)


class S3RangeReader(RangeFile):
    """A seekable, read-only view of one S3 object: every read is a ranged GET."""

    def __init__(self, uri: str, field: str) -> None:
        super().__init__()
        self.uri = uri
        self._field = field
        self._bucket, self._key = split_s3_uri(uri)
        head = self._call("head_object")
        self.size = int(head["ContentLength"])

    def _call(self, operation: str, **extra: str) -> dict:
        try:
            return getattr(client("s3"), operation)(Bucket=self._bucket, Key=self._key, **extra)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise InvalidInput(self._field, f"cannot read {self.uri}: {code}") from None
        except BotoCoreError as exc:
            raise InvalidInput(self._field, f"cannot read {self.uri}: {exc}") from None

    def _read(self, start: int, end: int) -> bytes:
        return self._call("get_object", Range=f"bytes={start}-{end - 1}")["Body"].read()


def open_user_file(uri: str, field: str) -> BinaryIO:
    """A seekable binary file for ``uri``; a missing or unreadable one is InvalidInput(field)."""
    if uri.startswith(S3_SCHEME):
        return io.BufferedReader(S3RangeReader(uri, field), buffer_size=1 << 20)
    try:
        return Path(uri).open("rb")
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {uri}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a path the OS cannot take (an embedded NUL)
        raise InvalidInput(field, f"cannot read {uri!r}: {exc}") from None


def require_s3(spec_files: dict[str, str]) -> None:
    """Files named through the API must be S3 objects: a service never reads its own disk on a
    caller's behalf. ``spec_files`` maps each field to the URI it names."""
    for field, uri in spec_files.items():
        if not uri.startswith(S3_SCHEME):
            raise InvalidInput(field, f"{uri[:100]!r}: the API reads input files from S3 only; upload it and give s3://bucket/inputs/...")


def read_user_file(uri: str, field: str) -> bytes:
    with open_user_file(uri, field) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise InvalidInput(field, f"cannot read {uri}: {exc.strerror or exc}") from None
