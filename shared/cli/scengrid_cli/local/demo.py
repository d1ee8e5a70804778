"""A whole run on the local stack: submit (or retry) through its API, as any client does, then
watch the runs item and collect the results."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scengrid.aws import client
from scengrid_cli.local.results import copy_logs, copy_results, shard_seconds, stage_seconds
from scengrid_cli.local.stack import LocalStack
from scengrid.chaos import read_injections
from scengrid_cli.local.pollers import execution_arn
from scengrid.s3io import get_json
from scengrid.spec import RunSpec
from scengrid.status import FINAL, RunRecord, Status, read_run, read_shards

POLL_S = 0.1
EXECUTION_FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class RunOutcome:
    run_id: str
    record: RunRecord
    execution_arn: str
    execution_status: str
    wall_s: float
    results_dir: Path | None
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] | None = None
    shard_statuses: dict[str, int] = field(default_factory=dict)  # from the shards table

    def as_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "run_id": self.run_id,
            "status": self.record.status.value,
            "scenarios": self.record.scenarios,
            "shards": self.record.shards_total,
            "shards_done": self.record.shards_done,
            "shards_failed": self.record.shards_failed,
            "shard_statuses": self.shard_statuses,
            "var_95": s.get("var_95"),
            "var_99": s.get("var_99"),
            "es_975": s.get("es_975"),
            "mean": s.get("mean"),
            "std": s.get("std"),
            "wall_s": round(self.wall_s, 3),
            "execution_arn": self.execution_arn,
            "execution_status": self.execution_status,
            "results_dir": str(self.results_dir) if self.results_dir else None,
            "reason": self.record.reason,
            "timings": self.timings,
            **({"faults": self.faults} if self.faults is not None else {}),
            **({"model_version": s["model_version"]} if s.get("model_version") else {}),
        }


class RunTimeout(RuntimeError):
    pass


def watch_run(
    run_id: str, arn: str, timeout_s: float, on_progress: Callable[[RunRecord], None]
) -> tuple[RunRecord, str]:
    """Poll the runs item (one GetItem) until the run is final, then its execution until that
    is final too."""
    sfn = client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    execution_status = "PENDING"
    while time.monotonic() < deadline:
        record = read_run(run_id)
        if record is not None:
            on_progress(record)
        if record is not None and record.status in FINAL:
            try:
                execution_status = sfn.describe_execution(executionArn=arn)["status"]
            except sfn.exceptions.ExecutionDoesNotExist:
                pass
            if execution_status in EXECUTION_FINAL:
                return record, execution_status
        time.sleep(POLL_S)
    raise RunTimeout(f"run {run_id} did not finish within {timeout_s:.0f}s (see scengrid job logs)")


def run_on_stack(
    stack: LocalStack,
    spec: RunSpec,
    out_dir: Path | None,
    timeout_s: float,
    on_progress: Callable[[RunRecord], None] = lambda r: None,
) -> RunOutcome:
    """Submit a run through the stack's API (POST /runs, signed with the stack's key) and follow
    it to the end."""
    accepted = stack.api_client().submit(spec.model_dump(mode="json"))
    return follow_run(stack, accepted["run_id"], accepted["round"], out_dir, timeout_s, on_progress)


def retry_on_stack(
    stack: LocalStack,
    run_id: str,
    out_dir: Path | None,
    timeout_s: float,
    on_progress: Callable[[RunRecord], None] = lambda r: None,
) -> RunOutcome:
    """Start the next round of a FAILED run through the stack's API (POST /runs/{id}/retry) and
    follow it to the end."""
    accepted = stack.api_client().retry(run_id)
    return follow_run(stack, run_id, accepted["round"], out_dir, timeout_s, on_progress)


def follow_run(
    stack: LocalStack,
    run_id: str,
    round_: int,
    out_dir: Path | None,
    timeout_s: float,
    on_progress: Callable[[RunRecord], None],
) -> RunOutcome:
    assert stack.settings is not None and stack.runner is not None
    started = time.perf_counter()
    retries_before = stack.runner.retried_attempts()
    arn = execution_arn(stack.settings.state_machine_arn, run_id, round_)
    record, execution_status = watch_run(run_id, arn, timeout_s, on_progress)
    wall = time.perf_counter() - started
    summary: dict[str, Any] = {}
    results_dir = None
    if record.status is Status.COMPLETE and record.summary_key:
        summary = get_json(record.summary_key)
        if out_dir is not None:
            results_dir = copy_results(run_id, out_dir)
    if out_dir is not None:
        copy_logs(run_id, stack.work_dir / "jobs", Path(stack.settings.log_file or ""), out_dir / run_id)
    timings = {"stack_startup_s": round(stack.startup_s, 3), "stages_s": stage_seconds(arn), **shard_seconds(run_id)}
    shards = read_shards(run_id)
    statuses = dict(Counter(s.status.value for s in shards))
    faults = None
    if stack.chaos_seed is not None:
        faults = {
            "injected": read_injections(stack.chaos_dir),
            "recovered": {
                "batch_job_retries": stack.runner.retried_attempts() - retries_before,
                "shard_redeliveries": sum(s.attempt - 1 for s in shards),
                "events_refused_as_duplicates": record.duplicates,
            },
        }
    return RunOutcome(run_id, record, arn, execution_status, wall, results_dir, summary, timings, faults, statuses)
