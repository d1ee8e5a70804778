"""Collation: check that every shard is COMPLETE with its output, merge, compute risk, report."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from scengrid import layout, s3io
from scengrid.errors import IncompleteRun
from scengrid.events import AllDone, RunFailed, publish
from scengrid.risk import RiskSummary, summarise
from scengrid.status import Status, read_run, read_shards
from scengrid.spec import RunSpec
from scengrid.work import ShardWork

from services.collator.reporting import write_report


def wait_for_tracker(run_id: str, round_: int, shards_total: int, timeout_s: float) -> None:
    """The tracker applies shard events asynchronously: wait (one GetItem per poll) until it
    has seen every shard finish, or the timeout passes (then the check below names what is late)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = read_run(run_id)
        if run is not None and run.round >= round_ and run.shards_done + run.shards_failed >= shards_total:
            return
        time.sleep(0.25)


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


def merge_outputs(run_id: str, planned: list[ShardWork]) -> pa.Table:
    """Concatenate the shard outputs in scenario order, checking each one's row count."""
    tables: list[pa.Table] = []
    problems: dict[str, str] = {}
    for shard in planned:
        key = layout.shard_key(run_id, shard.shard_id)
        if not s3io.object_exists(key):
            problems[shard.shard_id] = f"output {key} is missing"
            continue
        table = s3io.get_table(key)
        if table.num_rows != shard.count:
            problems[shard.shard_id] = f"output has {table.num_rows} rows, expected {shard.count}"
        tables.append(table)
    if problems:
        raise IncompleteRun(run_id, problems)
    return pa.concat_tables(tables)


def collate_run(run_id: str, round_: int, wait_s: float) -> RiskSummary:
    manifest = s3io.get_json(layout.manifest_key(run_id))
    planned = [ShardWork.model_validate(s) for s in manifest["shards"]]
    wait_for_tracker(run_id, round_, len(planned), wait_s)
    try:
        check_complete(run_id, planned)
        merged = merge_outputs(run_id, planned)
    except IncompleteRun as exc:
        publish(
            [RunFailed(run_id=run_id, round=round_, reason=str(exc), failed_shards=sorted(exc.problems))],
            service="collator",
        )
        raise
    ids = merged.column("scenario_id").to_numpy()
    pnl = merged.column("pnl").to_numpy()
    if ids.shape[0] and not (ids[0] == 0 and np.all(np.diff(ids) == 1)):
        raise IncompleteRun(run_id, {"*": "merged scenario ids are not 0..n-1 in order"})
    summary = summarise(ids, pnl)
    s3io.put_table(layout.pnl_key(run_id), merged)
    run = read_run(run_id)
    metadata = {
        "model": manifest["spec"]["model"]["name"],
        "seed": manifest["spec"]["scenarios"].get("seed"),
        "scenarios": summary.scenarios,
        "shards": len(planned),
        "shard_size": manifest["shard_size"],
        "round": round_,
        "created_at": run.created_at if run else None,
        "worker_seconds": round(sum(s.duration_s or 0.0 for s in read_shards(run_id)), 3),
        "cost": "not known for local runs",
    }
    write_report(run_id, RunSpec.model_validate(manifest["spec"]), merged, summary, metadata)
    s3io.put_json(
        layout.summary_key(run_id),
        {
            "run_id": run_id,
            "status": Status.COMPLETE,
            "model": manifest["spec"]["model"],
            "scenarios_spec": manifest["spec"]["scenarios"],
            "shards": len(planned),
            "shard_size": manifest["shard_size"],
            "created_at": run.created_at if run else None,
            **summary.model_dump(),
        },
    )
    publish(
        [
            AllDone(
                run_id=run_id,
                round=round_,
                summary_key=layout.summary_key(run_id),
                pnl_key=layout.pnl_key(run_id),
                scenarios=summary.scenarios,
                var_95=summary.var_95,
                var_99=summary.var_99,
                es_975=summary.es_975,
            )
        ],
        service="collator",
    )
    return summary

