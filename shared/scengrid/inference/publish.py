"""The PD model's files: where ``make model`` writes them, their SHA-256, and publishing one to
S3 with its SHA-256 in the object's metadata (``x-amz-meta-sha256``), where the inference
function and inline workers verify it.

    python -m scengrid.inference.publish                        # build/models/pd.onnx to the stack's bucket
    python -m scengrid.inference.publish --model build/models/pd-large.onnx --uri s3://bucket/models/pd.onnx"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

from scengrid import layout
from scengrid.aws import client
from scengrid.settings import get_settings

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "build" / "models"
SHA256_METADATA = "sha256"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def model_file_name(variant: str) -> str:
    return "pd.onnx" if variant == "default" else f"pd-{variant}.onnx"


def default_model_file() -> Path | None:
    """``build/models/pd.onnx`` when ``make model`` has written it."""
    path = DEFAULT_MODEL_DIR / model_file_name("default")
    return path if path.is_file() else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_file(path: Path) -> Path:
    """Where a model's SHA-256 sits beside it: ``pd.onnx.sha256``."""
    return path.with_name(path.name + ".sha256")


def write_checksum(path: Path) -> str:
    sha = sha256_file(path)
    checksum_file(path).write_text(f"{sha}  {path.name}\n")
    return sha


def parse_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key


def publish_model(path: Path, uri: str) -> str:
    """Upload a model to ``uri`` with its SHA-256 in the metadata; returns the SHA-256."""
    bucket, key = parse_s3_uri(uri)
    sha = sha256_file(path)
    client("s3").upload_file(
        str(path), bucket, key, ExtraArgs={"Metadata": {SHA256_METADATA: sha}, "ContentType": "application/octet-stream"}
    )
    return sha


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload a trained PD model to S3 with its SHA-256 in the object's metadata.")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR / "pd.onnx", help="model file (default %(default)s)")
    parser.add_argument("--uri", help="s3://bucket/key (default: the stack's bucket, models/pd.onnx)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"no model at {args.model}: train one with `make model`", file=sys.stderr)
        return 2
    settings = get_settings()
    uri = args.uri or layout.s3_uri(settings.bucket, layout.pd_model_key())
    if not args.uri and not settings.bucket:
        print("give --uri, or set SCENGRID_BUCKET to the stack's bucket", file=sys.stderr)
        return 2
    sha = publish_model(args.model, uri)
    print(f"published {args.model} to {uri} (sha256 {sha})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
