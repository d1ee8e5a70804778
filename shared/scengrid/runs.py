"""Submitting a run: validate the RunSpec at the edge, then emit ``run-requested``."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from scengrid.errors import InvalidInput
from scengrid.events import RunRequested, publish
from scengrid.models import load_model
from scengrid.spec import RunSpec
from scengrid.status import Status, read_run


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def submit_run(spec: RunSpec, run_id: str | None = None) -> str:
    """Validate that the model exists and takes these params, then request the run.

    Nothing is written before validation passes, so a bad spec leaves nothing behind."""
    load_model(spec.model.name, spec.model.params)
    run_id = run_id or new_run_id()
    publish([RunRequested(run_id=run_id, spec=spec)], service="api")
    return run_id


def execution_name(run_id: str, round_: int) -> str:
    """The state machine execution of a run's round: the run id, then ``<run_id>-r<round>``."""
    return run_id if round_ == 1 else f"{run_id}-r{round_}"


def retry_run(run_id: str) -> int:
    """Start the next round of a FAILED run: only its FAILED or missing shards run again,
    then it is collated. Returns the new round."""
    record = read_run(run_id)
    if record is None:
        raise InvalidInput("run_id", f"no run {run_id!r}")
    if record.status is not Status.FAILED:
        raise InvalidInput("run_id", f"run {run_id} is {record.status.value}; only a FAILED run can be retried")
    spec = RunSpec.model_validate(record.spec)
    next_round = record.round + 1
    publish([RunRequested(run_id=run_id, round=next_round, spec=spec)], service="api")
    return next_round
