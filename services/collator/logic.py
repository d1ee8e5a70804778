"""Collation: check that every shard is COMPLETE with its output, compute the run's risk from
the shard files (the P&L dataset) read in part, and write the summary and the report."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from scengrid import layout, pnl_dataset, s3io
from scengrid.errors import IncompleteRun
from scengrid.events import AllDone, publish
from scengrid.kernel import result_metadata
from scengrid.observability import peak_rss_bytes
from scengrid.pnl_dataset import ReadCounter
from scengrid.risk import (
    Moments,
    RiskSummary,
    SmallestValues,
    TailCandidates,
    TailRows,
    es_tail_size,
    risk_summary,
    tail_threshold,
    var_tail_size,
)
from scengrid.settings import get_settings
from scengrid.spec import RunSpec
from scengrid.status import ShardRecord, Status, read_run, read_shards
from scengrid.work import ShardWork

from services.collator.reporting import attribution, histogram_counts, histogram_edges, model_factors, write_report

T = TypeVar("T")
R = TypeVar("R")

READERS = 8  # shard files read at once: their reads are requests, not CPU
PROVENANCE = ("model_version", "model_package", "image")  # what workers record in each shard file

TRACKER_POLL_S = 0.05


def wait_for_tracker(run_id: str, round_: int, shards_total: int, timeout_s: float) -> None:
    """The tracker applies shard events asynchronously: wait (one GetItem per poll) until it
    has seen every shard finish, or the timeout passes (then the check below names what is late)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = read_run(run_id)
        if run is not None and run.round >= round_ and run.shards_done + run.shards_failed >= shards_total:
            return
        time.sleep(TRACKER_POLL_S)


def ready_records(run_id: str, round_: int, planned: list[ShardWork], wait_s: float) -> dict[str, ShardRecord]:
    """The tracker's record of every planned shard, once it has applied every shard's end: at
    once (one Query) when all are COMPLETE already, as they are when the tracker kept up;
    else after ``wait_for_tracker``."""
    records = {r.shard_id: r for r in read_shards(run_id)}
    if all(r is not None and r.status is Status.COMPLETE for r in (records.get(s.shard_id) for s in planned)):
        return records
    wait_for_tracker(run_id, round_, len(planned), wait_s)
    return {r.shard_id: r for r in read_shards(run_id)}


def check_complete(run_id: str, planned: list[ShardWork], records: dict[str, ShardRecord] | None = None) -> dict[str, ShardRecord]:
    """The tracker's record of every planned shard; raise IncompleteRun naming each shard that is
    not COMPLETE, reported another row count, or reported no P&L figures."""
    records = records if records is not None else {r.shard_id: r for r in read_shards(run_id)}
    problems: dict[str, str] = {}
    for shard in planned:
        record = records.get(shard.shard_id)
        if record is None:
            problems[shard.shard_id] = "unknown to the tracker"
        elif record.status is not Status.COMPLETE:
            problems[shard.shard_id] = f"{record.status}" + (f" ({record.error})" if record.error else "")
        elif record.rows != shard.count:
            problems[shard.shard_id] = f"reported {record.rows} rows, expected {shard.count}"
        elif record.pnl_stats is None or record.pnl_stats.count != shard.count:
            problems[shard.shard_id] = "its shard-done reported no P&L figures for its rows (a worker older than this collator?)"
    if problems:
        raise IncompleteRun(run_id, problems)
    return records


@dataclass
class ShardScan:
    """What collation keeps of a shard file once read: where it is and its footer (for the rare
    second look), its smallest P&L values, its histogram counts and its head rows (the worst)."""

    key: str
    size: int
    footer: pq.FileMetaData
    smallest: np.ndarray
    counts: np.ndarray
    head: TailRows
    head_max: float  # the best P&L among the head rows
    recorded: dict[str, str]


class Collation:
    """A run's shard files, each read in one range, its end: the rest's pnl chunk, the head row
    group (the shard's worst 5%, every column) and the footer. The pnl column gives the
    smallest values and the histogram; the head rows the tail's ids and components. A shard
    whose head lies wholly inside the run's tail (its shard held more than 5% of the run's
    worst) gets a second look at its other rows. Memory: the kept tail and a few shards in
    flight, whatever the run's size."""

    def __init__(self, run_id: str, planned: list[ShardWork], moments: Moments, readers: int = READERS) -> None:
        self.run_id = run_id
        self.planned = planned
        self.moments = moments
        self.readers = readers
        self.counter = ReadCounter()
        self.edges = histogram_edges(moments.low, moments.high)
        self.keep = max(var_tail_size(moments.count), es_tail_size(moments.count))
        self.columns = 2 + len(moments.part_sums)  # scenario_id, pnl and the components the workers summed

    def scan(self, shard: ShardWork) -> ShardScan | str:
        """Read one shard file; a string says what is wrong with it."""
        key = layout.shard_key(self.run_id, shard.shard_id)
        try:
            found = pnl_dataset.open_shard(key, self.counter, rows=shard.count, columns=self.columns)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "InvalidRange"):
                return f"output {key} is missing"
            raise
        parquet = found.parquet
        last = shard.start + shard.count - 1
        if parquet.metadata.num_rows != shard.count or pnl_dataset.scenario_range(parquet) != (shard.start, last):
            return (f"output has {parquet.metadata.num_rows} rows of scenarios {pnl_dataset.scenario_range(parquet)}, "
                    f"expected {shard.count} rows of scenarios {shard.start}..{last}")
        last = parquet.metadata.num_row_groups - 1
        found.prefetch_groups([last])  # the head, every column: fetched with the footer unless wider than guessed
        head = _rows(parquet.read_row_group(last))
        pnl = parquet.read(columns=["pnl"]).column(0).to_numpy()[::-1]  # ascending: the worst first
        if pnl.shape[0] > 1 and not bool((pnl[1:] >= pnl[:-1]).all()):
            return f"output {key} is not ordered by P&L (not written by this version's worker)"
        recorded = {k: v for k, v in result_metadata(parquet.schema_arrow).items() if k in PROVENANCE}
        return ShardScan(key, found.source.size, parquet.metadata, pnl[: self.keep].copy(),
                         histogram_counts(pnl, self.edges), head, float(head.pnl.max()), recorded)

    def rest_inside(self, scan: ShardScan, threshold: float) -> TailRows:
        """The rows after the head with P&L at or below ``threshold`` (a second look)."""
        found = pnl_dataset.open_shard(scan.key, self.counter, size=scan.size, footer=scan.footer)
        groups = list(range(scan.footer.num_row_groups - 1))
        found.prefetch_groups(groups)
        rows = _rows(found.parquet.read_row_groups(groups))
        return rows.take(rows.pnl <= threshold)


def _rows(table: pa.Table) -> TailRows:
    return TailRows(
        table.column("pnl").to_numpy(),
        table.column("scenario_id").to_numpy(),
        {n: table.column(n).to_numpy() for n in table.column_names if n.startswith(pnl_dataset.COMPONENT_PREFIX)},
    )


def _bounded_map(function: Callable[[T], R], items: list[T], workers: int) -> Iterator[R]:
    """``function`` over ``items`` on ``workers`` threads, results in order, at most twice
    ``workers`` of them held at once."""
    with ThreadPoolExecutor(workers, thread_name_prefix="shard-reader") as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass
class Collated:
    summary: RiskSummary
    tail: TailRows
    moments: Moments
    histogram: tuple[np.ndarray, np.ndarray]
    files: list[str]
    file_bytes: int
    recorded: dict[str, list[str]]
    bytes_read: int
    requests: int
    second_looks: int


def collate(run_id: str, planned: list[ShardWork], records: dict[str, ShardRecord]) -> Collated:
    """The run's exact risk figures from its shard files, each read in part."""
    moments = Moments.of([records[s.shard_id].pnl_stats for s in planned])  # type: ignore[misc]
    collation = Collation(run_id, planned, moments)
    smallest = SmallestValues(collation.keep)
    candidates = TailCandidates(es_tail_size(moments.count))
    counts = np.zeros(len(collation.edges) - 1, dtype=np.int64)
    scans: list[ShardScan] = []
    problems: dict[str, str] = {}
    for shard, scan in zip(planned, _bounded_map(collation.scan, planned, collation.readers)):
        if isinstance(scan, str):
            problems[shard.shard_id] = scan
            continue
        smallest.add(scan.smallest)
        candidates.see(scan.smallest)
        candidates.add(scan.head)
        counts += scan.counts
        scans.append(replace(scan, smallest=np.empty(0), counts=np.empty(0), head=TailRows(np.empty(0), np.empty(0, dtype=np.int64))))
    if problems:
        raise IncompleteRun(run_id, problems)
    ordered = smallest.sorted()
    threshold = tail_threshold(ordered, moments.count)
    # a shard whose whole head is inside the tail may hold more of it
    wider = [s for s in scans if s.footer.num_row_groups > 1 and s.head_max <= threshold]
    for rows in _bounded_map(lambda s: collation.rest_inside(s, threshold), wider, collation.readers):
        candidates.add(rows)
    tail = candidates.worst()
    recorded: dict[str, set[str]] = {}
    for scan in scans:
        for name, value in scan.recorded.items():
            recorded.setdefault(name, set()).add(value)
    return Collated(
        summary=risk_summary(ordered, tail, moments),
        tail=tail,
        moments=moments,
        histogram=(counts, collation.edges),
        files=[scan.key for scan in scans],
        file_bytes=sum(scan.size for scan in scans),
        recorded={name: sorted(values) for name, values in recorded.items()},
        bytes_read=collation.counter.bytes,
        requests=collation.counter.requests,
        second_looks=len(wider),
    )


def collate_run(run_id: str, round_: int, wait_s: float) -> RiskSummary:
    """Check and summarise a run, and write its summary and report. On missing or failed
    shards raise IncompleteRun naming them (their outputs stay): the job fails, and the state
    machine reports the run failed. The shard files stay the run's P&L dataset as they are."""
    clock = _Phases()
    manifest = s3io.get_json(layout.manifest_key(run_id))
    planned = [ShardWork.model_validate(s) for s in manifest["shards"]]
    spec = RunSpec.model_validate(manifest["spec"])
    with ThreadPoolExecutor(1, thread_name_prefix="model") as preparing:
        factors = preparing.submit(model_factors, spec)  # for the report, while the shards are read
        records = check_complete(run_id, planned, ready_records(run_id, round_, planned, wait_s))
        clock.lap("wait")
        collated = collate(run_id, planned, records)
        clock.lap("read")
    write_report(
        run_id,
        spec,
        collated.summary,
        collated.histogram,
        attribution(collated.tail, collated.moments),
        {**_metadata(run_id, round_, manifest, len(planned), records), **_provenance(collated.recorded)},
        factors.result(),
    )
    clock.lap("report")
    _publish_results(run_id, round_, manifest, collated, clock)
    return collated.summary


class _Phases:
    """Wall seconds of collation's phases."""

    def __init__(self) -> None:
        self.started = self._last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def _provenance(recorded: dict[str, list[str]]) -> dict[str, str]:
    """The model package and image the shards were computed with, for the report."""
    return {name: ", ".join(values) for name, values in recorded.items() if name in ("model_package", "image")}


def _metadata(run_id: str, round_: int, manifest: dict, shards: int, records: dict[str, ShardRecord]) -> dict[str, object]:
    run = read_run(run_id)
    return {
        "model": manifest["spec"]["model"]["name"],
        "seed": manifest["spec"]["scenarios"].get("seed"),
        "scenarios": manifest["spec"]["scenarios"]["count"],
        "shards": shards,
        "shard_size": manifest["shard_size"],
        "round": round_,
        "created_at": run.created_at if run else None,
        "worker_seconds": round(sum(s.duration_s or 0.0 for s in records.values()), 3),
        "cost": _cost(manifest),
        "sizing": "; ".join(manifest.get("sizing", {}).get("reasons", [])) or None,
    }


def _cost(manifest: dict) -> str:
    plan = manifest["spec"].get("plan")
    if plan:
        return (f"planned ${plan['cost_usd_mean']:,.2f} mean, ${plan['cost_usd_p90']:,.2f} p90 on {plan['target']} "
                f"(prices {plan['prices_as_of']})")
    return "not planned (scengrid plan --submit records the predicted cost)"


def _publish_results(run_id: str, round_: int, manifest: dict, collated: Collated, clock: _Phases) -> None:
    run = read_run(run_id)
    summary = collated.summary
    versions = collated.recorded.get("model_version", [])
    packages = collated.recorded.get("model_package", [])
    images = collated.recorded.get("image", [])
    prefix = layout.pnl_dataset_prefix(run_id)
    s3io.put_json(
        layout.summary_key(run_id),
        {
            "run_id": run_id,
            "status": Status.COMPLETE,
            "model": manifest["spec"]["model"],
            "scenarios_spec": manifest["spec"]["scenarios"],
            "shards": len(collated.files),
            "shard_size": manifest["shard_size"],
            "sizing": manifest.get("sizing"),
            "plan": manifest["spec"].get("plan"),
            "created_at": run.created_at if run else None,
            **summary.model_dump(),
            # the PD model of the credit overlay: its SHA-256 (None without the overlay, or if
            # shards were scored by different versions, all of which model_versions lists)
            "model_version": versions[0] if len(versions) == 1 else None,
            "model_versions": versions,
            # the model's distribution ("name version") and the worker image, as the shards recorded them
            "model_package": packages[0] if len(packages) == 1 else (packages or None),
            "image": images[0] if len(images) == 1 else (images or None),
            "pnl_dataset": {
                "prefix": prefix,
                "uri": layout.s3_uri(get_settings().bucket, prefix),
                "files": collated.files,
                "rows": summary.scenarios,
                "bytes": collated.file_bytes,
                "order": "each file holds one shard's scenarios, ordered by pnl descending (the worst last); its last row group holds the shard's worst 5%",
            },
            "collation": {
                "seconds": clock.total,
                "phases_s": clock.seconds,
                "bytes_read": collated.bytes_read,
                "read_requests": collated.requests,
                "share_of_dataset_read": round(collated.bytes_read / max(1, collated.file_bytes), 4),
                "shards_read_twice": collated.second_looks,
                "peak_rss_bytes": peak_rss_bytes(),
            },
        },
    )
    done = AllDone(
        run_id=run_id,
        round=round_,
        summary_key=layout.summary_key(run_id),
        pnl_prefix=prefix,
        pnl_files=len(collated.files),
        scenarios=summary.scenarios,
        var_95=summary.var_95,
        var_99=summary.var_99,
        es_975=summary.es_975,
    )
    publish([done], service="collator")
