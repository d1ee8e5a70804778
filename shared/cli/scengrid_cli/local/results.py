"""What a finished local run leaves for its user: results copied out of the emulator, and
where the time went (from the execution history and the shards table)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from scengrid import layout
from scengrid.aws import client
from scengrid.settings import get_settings
from scengrid.status import read_shards

STAGES = ("Shard", "Evaluate", "Collate")


def copy_results(run_id: str, out_dir: Path) -> Path:
    """Download ``runs/<id>/results/*`` and the run's P&L dataset to ``out_dir/<run_id>/``
    (``summary.json``, ``report.html``, … and ``pnl/*.parquet``); returns that folder."""
    target = out_dir / run_id
    target.mkdir(parents=True, exist_ok=True)
    s3 = client("s3")
    bucket = get_settings().bucket
    for prefix in (layout.results_prefix(run_id), layout.pnl_dataset_prefix(run_id)):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                local = target / layout.result_name(run_id, obj["Key"])
                local.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(local))
    return target


def copy_logs(run_id: str, jobs_dir: Path, services_log: Path, target: Path) -> Path:
    """The run's logs in ``target/logs``: each Batch job's log, and the in-process services'
    log lines that carry this run id."""
    logs = target / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for log in jobs_dir.glob(f"*{run_id}*.log"):
        (logs / log.name).write_bytes(log.read_bytes())
    if services_log.is_file():
        mine = [line for line in services_log.read_text().splitlines() if f'"run_id":"{run_id}"' in line]
        (logs / "services.log").write_text("\n".join(mine) + ("\n" if mine else ""))
    return logs


def stage_seconds(execution_arn: str) -> dict[str, float]:
    """Wall seconds of each stage of the state machine, from its history."""
    history = client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered: dict[str, datetime] = {}
    out: dict[str, float] = {}
    for event in history:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
        if not details or details["name"] not in STAGES:
            continue
        if event["type"].endswith("StateEntered"):
            entered[details["name"]] = event["timestamp"]
        elif details["name"] in entered:
            out[details["name"]] = (event["timestamp"] - entered[details["name"]]).total_seconds()
    return out


def state_names(execution_arn: str) -> list[str]:
    """The states the execution entered, in order."""
    history = client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def shard_seconds(run_id: str) -> dict[str, Any]:
    """Summed worker time: evaluating the model vs writing the output and reporting."""
    shards = read_shards(run_id)
    kernel = sum(s.eval_s or 0.0 for s in shards)
    total = sum(s.duration_s or 0.0 for s in shards)
    return {"kernel_s": round(kernel, 3), "output_io_s": round(total - kernel, 3), "shards": len(shards)}
