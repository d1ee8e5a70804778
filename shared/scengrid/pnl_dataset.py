"""The run's P&L dataset: one Parquet file per shard under ``runs/<id>/pnl/``, and nothing else.

The workers write it, the collator, Athena, DuckDB and ``scengrid results`` read it; there is no
merged copy unless a user asks for one (``scengrid results RUN --merge``).

A shard file holds ``scenario_id``, the model's other columns and ``pnl`` (last), one row per
scenario of the shard, **ordered by P&L, best first**: its worst rows are its last (ties in
descending scenario id). Its first row group holds all but the shard's worst ``head_rows(n)``
scenarios; its last row group holds those worst ones, every column. So the collator reads one
byte range of a file, its end: the first group's ``pnl`` chunk (the file's last column), the
whole last group, and the footer. That is the ``pnl`` column of every row (a sixth of the bytes
for the portfolio model) and every column of the worst 5%, where the run's ES tail (2.5%)
lies when the shards are alike. Parquet's footer gives the row count and the ``scenario_id``
range without reading a row.

Reads go through ``RangedObject``: HTTP range requests, counted, so that what collation reads is
measured, and cached by segment, so that Parquet's own reads of those ranges cost nothing more."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scengrid import layout
from scengrid.aws import client
from scengrid.kernel import results_table
from scengrid.settings import get_settings
from scengrid.user_files import RangeFile

COMPONENT_PREFIX = "pnl_"  # the P&L's components (pnl_rates, …): attributed in the report
HEAD_SHARE = 0.05  # the last row group: the worst 5% of a shard (the run's ES tail is 2.5%)
HEAD_MIN_ROWS = 1_024
FOOTER_GUESS = 64 << 10  # one request for the footer: Parquet's own first read is 64 KiB
WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": False, "write_statistics": ["scenario_id", "pnl"]}


def head_rows(rows: int) -> int:
    """Rows of a shard file's last row group (its head, the shard's worst): 5%, at least 1,024."""
    return min(rows, max(HEAD_MIN_ROWS, math.ceil(HEAD_SHARE * rows)))


def components(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The P&L component columns of a model's output."""
    return {name: values for name, values in columns.items() if name.startswith(COMPONENT_PREFIX)}


def shard_table(start: int, columns: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> pa.Table:
    """A shard's rows as the dataset stores them: ordered by (pnl, scenario_id) descending, the
    worst row last."""
    table = results_table(start, columns, metadata)
    order = np.argsort(np.asarray(columns["pnl"]), kind="stable")[::-1]
    last = [name for name in table.column_names if name != "pnl"] + ["pnl"]  # its chunk ends the file, by the footer
    return table.select(last).take(pa.array(order))


def shard_bytes(table: pa.Table) -> bytes:
    """The Parquet file of a shard table: the rest in one row group, then the head (the worst)."""
    sink = io.BytesIO()
    rest = table.num_rows - head_rows(table.num_rows)
    with pq.ParquetWriter(sink, table.schema, **WRITE_OPTIONS) as writer:
        if rest:
            writer.write_table(table.slice(0, rest), row_group_size=rest)
        writer.write_table(table.slice(rest), row_group_size=max(1, table.num_rows - rest))
    return sink.getvalue()


def put_shard(key: str, table: pa.Table) -> int:
    """Write a shard file; returns its size in bytes."""
    body = shard_bytes(table)
    client("s3").put_object(Bucket=get_settings().bucket, Key=key, Body=body)
    return len(body)


class ReadCounter:
    """Bytes and requests of ranged reads, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def add(self, size: int) -> None:
        with self._lock:
            self.bytes += size
            self.requests += 1


class RangedObject(RangeFile):
    """A read-only, seekable S3 object read by range requests. Opened without its size, it
    reads its last ``suffix`` bytes (one request that also gives the size). ``prefetch`` reads
    a range in one request; a read within a range already fetched costs no request, any other
    read is one ranged GET of what was asked."""

    def __init__(self, key: str, counter: ReadCounter | None = None, size: int | None = None, suffix: int = FOOTER_GUESS) -> None:
        super().__init__()
        self.key = key
        self._s3 = client("s3")
        self._bucket = get_settings().bucket
        self._counter = counter or ReadCounter()
        self._segments: list[tuple[int, bytes]] = []
        if size is None:
            response = self._s3.get_object(Bucket=self._bucket, Key=key, Range=f"bytes=-{max(1, suffix)}")
            body = response["Body"].read()
            size = int(response["ContentRange"].rsplit("/", 1)[1])
            self._counter.add(len(body))
            self._segments.append((size - len(body), body))
        self.size = size

    def prefetch(self, start: int, end: int) -> None:
        """Bytes ``start .. end - 1`` in one request, unless already fetched."""
        end = min(end, self.size)
        if end > start and self._cached(start, end) is None:
            self._segments.append((start, self._get(start, end)))

    def _cached(self, start: int, end: int) -> bytes | None:
        for first, body in self._segments:
            if first <= start and end <= first + len(body):
                return body[start - first : end - first]
        return None

    def _get(self, start: int, end: int) -> bytes:
        body = self._s3.get_object(Bucket=self._bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")["Body"].read()
        self._counter.add(len(body))
        return body

    def _read(self, start: int, end: int) -> bytes:
        cached = self._cached(start, end)
        return cached if cached is not None else self._get(start, end)


def _chunk_range(column: pq.ColumnChunkMetaData) -> tuple[int, int]:
    start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
    return start, start + column.total_compressed_size


def group_range(footer: pq.FileMetaData, group: int, columns: Sequence[int] | None = None) -> tuple[int, int]:
    """The bytes of a row group's column chunks (all, or those of ``columns``)."""
    chunks = [_chunk_range(footer.row_group(group).column(i)) for i in (columns if columns is not None else range(footer.num_columns))]
    return min(a for a, _ in chunks), max(b for _, b in chunks)


@dataclass
class ShardFile:
    """A shard file in S3, read by ranges through ``RangedObject``."""

    parquet: pq.ParquetFile
    source: RangedObject

    @property
    def footer(self) -> pq.FileMetaData:
        return self.parquet.metadata

    def prefetch_groups(self, groups: Sequence[int], columns: Sequence[str] | None = None) -> None:
        """The bytes of these row groups' chunks (of ``columns``, or all), one request each."""
        indices = None if columns is None else [self.parquet.schema_arrow.get_field_index(c) for c in columns]
        for group in groups:
            self.source.prefetch(*group_range(self.footer, group, indices))


def tail_bytes(rows: int, columns: int) -> int:
    """Bytes to read at the end of a shard file of ``rows`` rows and ``columns`` columns for its
    footer, its head row group and the rest's pnl chunk before them (8 bytes a value, at most:
    zstd does not grow incompressible data by more than 1%, and ids compress)."""
    head = head_rows(rows)
    return FOOTER_GUESS + int(8.08 * (rows - head + columns * head))


def open_shard(
    key: str,
    counter: ReadCounter | None = None,
    rows: int | None = None,
    columns: int = 2,
    size: int | None = None,
    footer: pq.FileMetaData | None = None,
) -> ShardFile:
    """A shard file in S3, read lazily by ranges. Its end is read now, in one request: the
    footer, and for a shard of ``rows`` rows of about ``columns`` columns also its head row
    group and the rest's pnl chunk (unless the footer and size are given, from an earlier
    opening); anything else when asked."""
    raw = RangedObject(key, counter, size, suffix=tail_bytes(rows, columns) if rows else FOOTER_GUESS)
    return ShardFile(pq.ParquetFile(pa.PythonFile(raw, mode="r"), metadata=footer), raw)


def scenario_range(parquet: pq.ParquetFile) -> tuple[int, int] | None:
    """(first, last) scenario id of a shard file, from its footer's statistics (None without)."""
    meta = parquet.metadata
    index = parquet.schema_arrow.get_field_index("scenario_id")
    if index < 0 or meta.num_row_groups == 0:
        return None
    lows, highs = [], []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    return int(min(lows)), int(max(highs))


def dataset_keys(run_id: str) -> list[str]:
    """The run's shard files, by listing its dataset prefix."""
    s3 = client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=get_settings().bucket, Prefix=layout.pnl_dataset_prefix(run_id)):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def in_scenario_order(table: pa.Table) -> pa.Table:
    """One shard's rows back in scenario order."""
    return table.take(pa.array(np.argsort(table.column("scenario_id").to_numpy(), kind="stable")))


def _by_first_scenario(tables: Iterator[pa.Table]) -> list[pa.Table]:
    return sorted(tables, key=lambda t: int(t.column("scenario_id").to_numpy().min()))


def read_run(run_id: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The whole P&L of a run from S3, in scenario order (tests and small runs; it is all in
    memory)."""
    s3 = client("s3")
    bucket = get_settings().bucket

    def fetch(key: str) -> pa.Table:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return in_scenario_order(pq.read_table(pa.BufferReader(body), columns=_with_ids(columns)))

    return _concat(_by_first_scenario(fetch(key) for key in dataset_keys(run_id)))


def read_local(folder: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The whole P&L of a downloaded dataset folder (``runs/<id>/pnl/``), in scenario order."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet files in {folder}")
    return _concat(_by_first_scenario(in_scenario_order(pq.read_table(f, columns=_with_ids(columns))) for f in files))


def merge_local(folder: Path, out: Path) -> int:
    """Write the dataset of ``folder`` as one Parquet file in scenario order, a shard at a time
    (memory: one shard); returns the rows written."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet files in {folder}")
    firsts = []
    for f in files:
        parquet = pq.ParquetFile(f)
        found = scenario_range(parquet)
        firsts.append(found[0] if found else int(parquet.read(columns=["scenario_id"]).column(0).to_numpy().min()))
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for _, f in sorted(zip(firsts, files)):
            table = in_scenario_order(pq.read_table(f))
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd", use_dictionary=False)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _with_ids(columns: Sequence[str] | None) -> list[str] | None:
    return None if columns is None else ["scenario_id", *[c for c in columns if c != "scenario_id"]]


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        raise FileNotFoundError("the run's P&L dataset has no files")
    return pa.concat_tables(tables)
