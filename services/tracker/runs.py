"""Runs as a user acts on them: submit (validated at the edge), retry, cancel. Each emits an
event; the tracker alone turns events into status."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, ValidationError

from scengrid.aws import client
from scengrid.errors import Conflict, InvalidInput
from scengrid.events import RunCancelled, RunRequested, publish
from scengrid.models import load_model
from scengrid.scenario_sources import resolve_source
from scengrid.settings import get_settings
from scengrid.spec import RunSpec, scenario_count
from scengrid.status import FINAL, Status

from services.tracker.limits import admitted
from services.tracker.queries import get_run


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


# A repeated Idempotency-Key returns the first answer for this long (then it is a new request).
# The API's Lambda handler registers its context here, so that a request that dies mid-way
# frees its key when the invocation's time is up.
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="spec",
    expires_after_seconds=24 * 3600,
    raise_on_no_idempotency_key=True,
)


class IdempotentSubmission(BaseModel):
    """What Powertools' idempotency layer hashes: the caller's key, and the spec it must match."""

    key: str
    spec: dict[str, Any]


def submit_run(spec: RunSpec, run_id: str | None = None, idempotency_key: str | None = None) -> str:
    """Validate that the model exists and takes these params, then request the run.

    A scenario file is read and checked against the model's factors here, and its row count
    becomes the spec's ``scenarios.count`` (what the sharder splits). Nothing is written before
    validation passes, so a bad spec leaves nothing behind; nor before the run is admitted
    under the limits (``services.tracker.limits``: OverLimit otherwise). With an idempotency key, a repeat
    returns the same run and starts nothing twice (Powertools' idempotency utility, DynamoDB
    persistence); the same key with another spec, or while the first request is still being
    handled, is a Conflict."""
    spec = resolve_spec(spec)
    if not idempotency_key:
        return _request_run(spec, run_id or new_run_id())
    submission = IdempotentSubmission(key=idempotency_key, spec=spec.model_dump(mode="json"))
    try:
        settings = get_settings()
        return _idempotent_request(settings.idempotency_table, settings.endpoint_url)(submission=submission)["run_id"]
    except IdempotencyValidationError:
        raise Conflict("Idempotency-Key was already used with another spec; use a new key") from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("a request with this Idempotency-Key is still being handled; send it again in a second") from None


def _request_run(spec: RunSpec, run_id: str) -> str:
    with admitted(run_id, 1, scenario_count(spec.scenarios)):
        publish([RunRequested(run_id=run_id, spec=spec)], service="api")
    return run_id


@lru_cache(maxsize=4)
def _idempotent_request(table: str, endpoint_url: str | None) -> Callable[..., dict[str, str]]:
    """``_request_run`` made idempotent on the submission's key, its spec validated against the
    first request's. Built once per table and endpoint, with a client from the factory."""
    get_settings().require("idempotency_table")
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))

    def request_once(submission: IdempotentSubmission) -> dict[str, str]:
        spec = RunSpec.model_validate(submission.spec)
        return {"run_id": _request_run(spec, new_run_id())}

    return idempotent_function(data_keyword_argument="submission", persistence_store=persistence, config=IDEMPOTENCY)(request_once)


def resolve_spec(spec: RunSpec) -> RunSpec:
    """The spec with its scenario source checked against the model and its count filled in."""
    model = load_model(spec.model.name, spec.model.params)
    source = resolve_source(spec.scenarios, model.factors)
    if source is spec.scenarios:
        return spec
    try:
        return RunSpec.model_validate({**spec.model_dump(mode="json"), "scenarios": source.model_dump(mode="json")})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(".".join(str(p) for p in error["loc"]) or "scenarios", error["msg"]) from None


def retry_run(run_id: str) -> int:
    """Start the next round of a FAILED run: only its FAILED or missing shards run again,
    then it is collated. The round is admitted under the limits as a whole run would be.
    Returns the new round."""
    record = get_run(run_id)
    if record.status is not Status.FAILED:
        raise Conflict(f"run {run_id} is {record.status.value}; only a FAILED run can be retried")
    next_round = record.round + 1
    with admitted(run_id, next_round, record.scenarios):
        publish([RunRequested(run_id=run_id, round=next_round, spec=RunSpec.model_validate(record.spec))], service="api")
    return next_round


def cancel_run(run_id: str) -> None:
    """Stop the execution of the run's round, found by the ARN the tracker recorded from its
    status change (AWS names the executions the rule starts), and mark the run CANCELLED;
    workers drop its remaining shards. With no execution recorded yet there is nothing to
    stop: the CANCELLED status keeps its shards from running."""
    record = get_run(run_id)
    if record.status in FINAL:
        raise Conflict(f"run {run_id} is already {record.status.value}")
    arn = record.current_execution_arn
    if arn is not None:
        sfn = client("stepfunctions")
        try:
            sfn.stop_execution(executionArn=arn, cause="cancelled by the user")
        except sfn.exceptions.ExecutionDoesNotExist:
            pass  # gone (past Step Functions' retention): nothing left to stop
    publish([RunCancelled(run_id=run_id, round=record.round)], service="api")
