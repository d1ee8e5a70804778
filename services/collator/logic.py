"""Collation: check that every shard is COMPLETE with its output, merge, compute risk, report."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scengrid import layout, s3io
from scengrid.errors import IncompleteRun
from scengrid.events import AllDone, publish
from scengrid.kernel import result_metadata
from scengrid.risk import RiskSummary, TailAccumulator
from scengrid.status import Status, read_run, read_shards
from scengrid.spec import RunSpec
from scengrid.work import ShardWork

from services.collator.reporting import COMPONENT_PREFIX, write_report

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


def check_complete(run_id: str, planned: list[ShardWork]) -> None:
    """Raise IncompleteRun naming each shard that is not COMPLETE or has no output."""
    records = {r.shard_id: r for r in read_shards(run_id)}
    problems: dict[str, str] = {}
    for shard in planned:
        record = records.get(shard.shard_id)
        if record is None:
            problems[shard.shard_id] = "unknown to the tracker"
        elif record.status is not Status.COMPLETE:
            problems[shard.shard_id] = f"{record.status}" + (f" ({record.error})" if record.error else "")
        elif record.rows != shard.count:
            problems[shard.shard_id] = f"reported {record.rows} rows, expected {shard.count}"
    if problems:
        raise IncompleteRun(run_id, problems)


def stream_outputs(run_id: str, planned: list[ShardWork], merged_path: Path, model_versions: set[str] | None = None) -> TailAccumulator:
    """Read the shard outputs in scenario order (the next one is fetched while this one is
    merged): check each one, feed the risk accumulator, and append it to the merged Parquet
    file. Memory: two shards plus the tail. The PD model versions the shards record are added
    to ``model_versions``."""
    accumulator = TailAccumulator(total=sum(s.count for s in planned))
    problems: dict[str, str] = {}
    writer: pq.ParquetWriter | None = None
    keys = [layout.shard_key(run_id, shard.shard_id) for shard in planned]
    try:
        for shard, key, table in zip(planned, keys, _prefetched(keys)):
            if table is None:
                problems[shard.shard_id] = f"output {key} is missing"
                continue
            ids = table.column("scenario_id").to_numpy()
            if table.num_rows != shard.count or not np.array_equal(ids, np.arange(shard.start, shard.start + shard.count)):
                problems[shard.shard_id] = f"output has {table.num_rows} rows, expected scenarios {shard.start}..{shard.start + shard.count - 1}"
                continue
            parts = {c: table.column(c).to_numpy() for c in table.column_names if c.startswith(COMPONENT_PREFIX)}
            if model_versions is not None and "model_version" in result_metadata(table.schema):
                model_versions.add(result_metadata(table.schema)["model_version"])
            accumulator.add(ids, table.column("pnl").to_numpy(), parts)
            if writer is None:
                writer = pq.ParquetWriter(merged_path, table.schema, **s3io.PARQUET_OPTIONS)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if problems:
        raise IncompleteRun(run_id, problems)
    return accumulator


def _prefetched(keys: list[str]) -> Iterator[pa.Table | None]:
    """Each Parquet object in turn (None if missing), the next one fetched meanwhile."""
    if not keys:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="shard-reader") as reader:
        following = reader.submit(s3io.get_table_if_exists, keys[0])
        for next_key in [*keys[1:], None]:
            table = following.result()
            if next_key is not None:
                following = reader.submit(s3io.get_table_if_exists, next_key)
            yield table


def collate_run(run_id: str, round_: int, wait_s: float) -> RiskSummary:
    """Check, merge and summarise a run. On missing or failed shards raise IncompleteRun naming
    them (their outputs stay): the job fails, and the state machine reports the run failed."""
    manifest = s3io.get_json(layout.manifest_key(run_id))
    planned = [ShardWork.model_validate(s) for s in manifest["shards"]]
    spec = RunSpec.model_validate(manifest["spec"])
    wait_for_tracker(run_id, round_, len(planned), wait_s)
    with tempfile.TemporaryDirectory(prefix="scengrid-collate-") as scratch:
        merged_path = Path(scratch) / "pnl.parquet"
        check_complete(run_id, planned)
        model_versions: set[str] = set()
        accumulator = stream_outputs(run_id, planned, merged_path, model_versions)
        summary = accumulator.summary()
        with ThreadPoolExecutor(1, thread_name_prefix="pnl-upload") as uploader:  # while the report is drawn
            upload = uploader.submit(s3io.put_file, layout.pnl_key(run_id), str(merged_path))
            write_report(run_id, spec, merged_path, accumulator, _metadata(run_id, round_, manifest, len(planned)))
            upload.result()
    _publish_results(run_id, round_, manifest, len(planned), summary, sorted(model_versions))
    return summary


def _metadata(run_id: str, round_: int, manifest: dict, shards: int) -> dict[str, object]:
    run = read_run(run_id)
    return {
        "model": manifest["spec"]["model"]["name"],
        "seed": manifest["spec"]["scenarios"].get("seed"),
        "scenarios": manifest["spec"]["scenarios"]["count"],
        "shards": shards,
        "shard_size": manifest["shard_size"],
        "round": round_,
        "created_at": run.created_at if run else None,
        "worker_seconds": round(sum(s.duration_s or 0.0 for s in read_shards(run_id)), 3),
        "cost": _cost(manifest),
        "sizing": "; ".join(manifest.get("sizing", {}).get("reasons", [])) or None,
    }


def _cost(manifest: dict) -> str:
    plan = manifest["spec"].get("plan")
    if plan:
        return (f"planned ${plan['cost_usd_mean']:,.2f} mean, ${plan['cost_usd_p90']:,.2f} p90 on {plan['target']} "
                f"(prices {plan['prices_as_of']})")
    return "not planned (scengrid plan --submit records the predicted cost)"


def _publish_results(run_id: str, round_: int, manifest: dict, shards: int, summary: RiskSummary, model_versions: list[str]) -> None:
    run = read_run(run_id)
    s3io.put_json(
        layout.summary_key(run_id),
        {
            "run_id": run_id,
            "status": Status.COMPLETE,
            "model": manifest["spec"]["model"],
            "scenarios_spec": manifest["spec"]["scenarios"],
            "shards": shards,
            "shard_size": manifest["shard_size"],
            "sizing": manifest.get("sizing"),
            "plan": manifest["spec"].get("plan"),
            "created_at": run.created_at if run else None,
            **summary.model_dump(),
            # the PD model of the credit overlay: its SHA-256 (None without the overlay, or if
            # shards were scored by different versions, all of which model_versions lists)
            "model_version": model_versions[0] if len(model_versions) == 1 else None,
            "model_versions": model_versions,
        },
    )
    done = AllDone(
        run_id=run_id,
        round=round_,
        summary_key=layout.summary_key(run_id),
        pnl_key=layout.pnl_key(run_id),
        scenarios=summary.scenarios,
        var_95=summary.var_95,
        var_99=summary.var_99,
        es_975=summary.es_975,
    )
    publish([done], service="collator")
