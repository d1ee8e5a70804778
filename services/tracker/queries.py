"""The read side of the API: run views with progress, shards, results. Pure reads."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from scengrid import layout
from scengrid.errors import Conflict, RunNotFound
from scengrid.s3io import get_json
from scengrid.aws import client
from scengrid.risk import PartialEstimate, batch_means
from scengrid.settings import get_settings
from scengrid.status import FINAL, RunRecord, ShardRecord, Status, page_runs, read_run, read_shards

from services.tracker.admission import AdmissionStore

PRESIGNED_TTL_S = 3600


class Progress(BaseModel):
    shards_total: int
    shards_done: int
    shards_failed: int
    scenarios_done: int
    elapsed_s: float
    scenarios_per_s: float | None
    eta_s: float | None


class RunView(BaseModel):
    run_id: str
    status: Status
    round: int
    scenarios: int
    model: str | None
    created_at: str | None
    updated_at: str | None
    finished_at: str | None
    progress: Progress
    var_95: float | None = None
    var_99: float | None = None
    es_975: float | None = None
    reason: str | None = None
    failed_shards: list[str] = []
    partial_var_99: PartialEstimate | None = Field(
        None, description="while the run is in flight: VaR 99% from the shards done, with a 95% interval"
    )
    execution_arn: str | None = Field(None, description="the Step Functions execution of the current round, once it started")
    execution_status: str | None = Field(None, description="that execution's status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED")


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def progress_of(record: RunRecord, now: datetime | None = None) -> Progress:
    """Throughput and ETA from the runs item alone (one GetItem)."""
    now = now or datetime.now(timezone.utc)
    # shards are equal but for the last one: exact once all are done, and close before
    done = round(record.scenarios * record.shards_done / record.shards_total) if record.shards_total else 0
    start = _parse(record.created_at)
    end = _parse(record.finished_at) if record.status in FINAL else now
    elapsed = max(0.0, (end - start).total_seconds()) if start and end else 0.0
    rate = done / elapsed if elapsed > 0 and done else None
    left = record.scenarios - done
    eta = 0.0 if record.status in FINAL else (left / rate if rate else None)
    return Progress(
        shards_total=record.shards_total,
        shards_done=record.shards_done,
        shards_failed=record.shards_failed,
        scenarios_done=done,
        elapsed_s=round(elapsed, 3),
        scenarios_per_s=round(rate, 1) if rate else None,
        eta_s=round(eta, 1) if eta is not None else None,
    )


def get_run(run_id: str) -> RunRecord:
    record = read_run(run_id)
    if record is None:
        raise RunNotFound(run_id)
    return record


def run_view(run_id: str) -> RunView:
    """The run as the tracker has it; a run the API accepted that the tracker has not recorded
    yet (its run-requested is on its way) is PENDING, from its admission ticket, not a 404."""
    record = read_run(run_id)
    if record is None:
        settings = get_settings()
        ticket = AdmissionStore(settings.admission_table).ticket(run_id) if settings.admission_table else None
        if ticket is None:
            raise RunNotFound(run_id)
        record = RunRecord(run_id=run_id, round=ticket.round, scenarios=ticket.scenarios, created_at=ticket.admitted_at.isoformat())
    return run_view_of(record)


def list_runs(limit: int, next_token: str | None) -> tuple[list[RunView], str | None]:
    """A page of runs. The runs table is keyed by run id only, so this pages a scan."""
    records, token = page_runs(limit, next_token)
    return [run_view_of(r) for r in records], token


def run_view_of(record: RunRecord) -> RunView:
    return RunView(
        run_id=record.run_id, status=record.status, round=record.round, scenarios=record.scenarios,
        model=(record.spec.get("model") or {}).get("name"), created_at=record.created_at,
        updated_at=record.updated_at, finished_at=record.finished_at, progress=progress_of(record),
        var_95=record.var_95, var_99=record.var_99, es_975=record.es_975, reason=record.reason,
        failed_shards=record.failed_shards,
        partial_var_99=None if record.var_99 is not None else batch_means(record.var99_n, record.var99_sum, record.var99_sumsq),
        execution_arn=record.current_execution_arn,
        execution_status=record.execution_status if record.current_execution_arn else None,
    )


def shards_of(run_id: str, status: Status | None) -> list[ShardRecord]:
    get_run(run_id)
    shards = read_shards(run_id)
    return [s for s in shards if status is None or s.status is status]


def results_of(run_id: str) -> dict[str, Any]:
    """The summary and presigned URLs of the result objects of a COMPLETE run."""
    record = get_run(run_id)
    if record.status is not Status.COMPLETE or not record.summary_key:
        raise Conflict(f"run {run_id} is {record.status.value}; results exist once it is COMPLETE")
    s3 = client("s3")
    bucket = get_settings().bucket
    summary = get_json(record.summary_key)
    dataset = summary.get("pnl_dataset", {}).get("files", [])  # the collator lists the shard files it read
    keys = (layout.summary_key(run_id), layout.report_key(run_id), layout.histogram_key(run_id), *dataset)
    urls = {  # each named by its path in the run's local folder: summary.json, …, pnl/000000.parquet, …
        layout.result_name(run_id, key): s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_TTL_S
        )
        for key in keys
    }
    return {"run_id": run_id, "summary": summary, "urls": urls, "expires_in_s": PRESIGNED_TTL_S}
