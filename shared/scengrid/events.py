"""Event contracts. Each event is a versioned pydantic model carried in EventBridge ``detail``,
with ``source`` = ``scengrid.<service>`` and ``detail-type`` = the event's name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scengrid import chaos
from scengrid.aws import client
from scengrid.risk import PnlStats
from scengrid.settings import get_settings
from scengrid.spec import RunSpec
from scengrid.work import SHARE_PATTERN, share_identifier

SOURCE_PREFIX = "scengrid."
PUT_EVENTS_BATCH = 10


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    detail_type: ClassVar[str]
    version: Literal[1] = 1
    run_id: str = Field(min_length=1, max_length=64)
    round: int = Field(1, ge=1, description="retry round of the run: 1, then +1 for each `scengrid retry`")
    at: datetime = Field(default_factory=utcnow)


class ShardEvent(Event):
    shard_id: str = Field(min_length=1, max_length=32)
    attempt: int = Field(1, ge=1, description="delivery attempt of the shard's work within its round")


class RunRequested(Event):
    detail_type: ClassVar[str] = "run-requested"
    spec: RunSpec
    share: str = Field(
        "", description="the fair-share identifier of the run's Batch jobs: the spec's share, else the run's own "
        "(filled in from the run id when not given)"
    )

    @model_validator(mode="after")
    def _fill_share(self) -> RunRequested:
        if not self.share:
            object.__setattr__(self, "share", share_identifier(self.run_id, self.spec.share))
        if not re.fullmatch(SHARE_PATTERN, self.share):
            raise ValueError(f"share {self.share!r} is not a fair-share identifier (1-255 letters and digits)")
        return self


class ShardWritten(ShardEvent):
    """A shard is planned: its work message is queued."""

    detail_type: ClassVar[str] = "shard-written"
    shards_total: int = Field(ge=1)
    start: int = Field(ge=0)
    count: int = Field(ge=1)


class ShardDone(ShardEvent):
    detail_type: ClassVar[str] = "shard-done"
    output_key: str
    rows: int = Field(ge=0)
    duration_s: float = Field(ge=0, description="evaluation plus writing the output")
    eval_s: float = Field(0.0, ge=0, description="generating scenarios and evaluating the model")
    task_id: str
    var_99: float | None = Field(None, description="the shard's own VaR 99%: the run's partial estimate while it is in flight")
    pnl_stats: PnlStats | None = Field(
        None, description="the shard's P&L count, sum, squared deviations, extremes and component sums: the collator "
        "combines them into the run's mean, std and attribution means instead of reading every row"
    )
    model_version: str | None = Field(None, description="SHA-256 of the PD model that scored the shard (credit overlay)")


class ShardFailed(ShardEvent):
    detail_type: ClassVar[str] = "shard-failed"
    error: str
    task_id: str


class AllDone(Event):
    detail_type: ClassVar[str] = "all-done"
    summary_key: str
    pnl_prefix: str = Field(
        description="the run's P&L dataset: one Parquet file per shard under this prefix, and nothing else (the "
        "Athena table pnl reads it); each file's rows are ordered by P&L, the worst last"
    )
    pnl_files: int = Field(ge=1, description="files in the dataset (one per shard)")
    scenarios: int
    var_95: float
    var_99: float
    es_975: float


class RunFailed(Event):
    """A stage of the run's round failed. Its only producer is the state machine's Catch
    (ReportRunFailed); the tracker names the failed and missing shards from its own records."""

    detail_type: ClassVar[str] = "run-failed"
    reason: str = Field(description="the failed stage's error and cause, as Step Functions reports them")


class RunCancelled(Event):
    detail_type: ClassVar[str] = "run-cancelled"
    reason: str = "cancelled by the user"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.detail_type: cls
    for cls in (RunRequested, ShardWritten, ShardDone, ShardFailed, AllDone, RunFailed, RunCancelled)
}

# Step Functions' own event when an execution starts or ends (on the account's default bus).
EXECUTION_STATUS_SOURCE = "aws.states"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"


class ExecutionStatusChange(BaseModel):
    """The ``detail`` of a "Step Functions Execution Status Change" event: AWS's shape, not one
    of our versioned events. Dates are epoch milliseconds; ``input`` is the execution's input
    as JSON text (for a run, the run-requested envelope the rule passed), left out by AWS above
    248 KiB."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str
    status: ExecutionStatus
    start_date: int | None = Field(None, alias="startDate")
    stop_date: int | None = Field(None, alias="stopDate")
    input: str | None = None
    output: str | None = None


class RunExecutionChanged(BaseModel):
    """What the tracker learns from an execution's status change: which execution runs a
    round of a run (AWS names the executions the rule starts), and its status."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detail_type: ClassVar[str] = EXECUTION_STATUS_CHANGE
    run_id: str = Field(min_length=1, max_length=64)
    round: int = Field(1, ge=1)
    execution_arn: str = Field(min_length=1)
    status: ExecutionStatus
    at: datetime = Field(default_factory=utcnow)


def run_execution_changed(change: ExecutionStatusChange, at: datetime | None = None) -> RunExecutionChanged:
    """The run and round an execution runs, read from its input (a run-requested envelope)."""
    if not change.input:
        raise ValueError(f"execution {change.execution_arn}: its input is not in the event, so its run is unknown")
    requested = parse_envelope(change.input)
    if not isinstance(requested, RunRequested):
        raise ValueError(f"execution {change.execution_arn} was started by {requested.detail_type}, not run-requested")
    return RunExecutionChanged(
        run_id=requested.run_id,
        round=requested.round,
        execution_arn=change.execution_arn,
        status=change.status,
        at=at or utcnow(),
    )


class Envelope(BaseModel):
    """The EventBridge envelope as an SQS target receives it (the emulator omits ``account``)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    account: str | None = None
    time: datetime | None = None


def parse_envelope(body: str | dict[str, Any]) -> Event | RunExecutionChanged:
    """The domain event inside an EventBridge envelope: one of ours, or what a status change of
    a run's execution says; raises on unknown types or bad fields."""
    envelope = Envelope.model_validate_json(body) if isinstance(body, str) else Envelope.model_validate(body)
    if envelope.source == EXECUTION_STATUS_SOURCE and envelope.detail_type == EXECUTION_STATUS_CHANGE:
        return run_execution_changed(ExecutionStatusChange.model_validate(envelope.detail), envelope.time)
    event_type = EVENT_TYPES.get(envelope.detail_type)
    if event_type is None or not envelope.source.startswith(SOURCE_PREFIX):
        raise ValueError(f"not a scengrid event: source={envelope.source!r} detail-type={envelope.detail_type!r}")
    return event_type.model_validate(envelope.detail)


def entry_for(event: Event, service: str) -> dict[str, str]:
    return {
        "Source": f"{SOURCE_PREFIX}{service}",
        "DetailType": event.detail_type,
        "Detail": event.model_dump_json(),
        "EventBusName": get_settings().event_bus,
    }


def publish(events: Sequence[Event] | Iterable[Event], service: str) -> int:
    """Put events on the bus, ``PUT_EVENTS_BATCH`` entries per call; failed entries are retried.

    Returns the number of events put. Raises when an entry still fails after retries."""
    entries = [entry_for(e, service) for e in events]
    if chaos.enabled():
        entries += chaos.duplicated(entries)
    events_client = client("events")
    for i in range(0, len(entries), PUT_EVENTS_BATCH):
        batch = entries[i : i + PUT_EVENTS_BATCH]
        for _ in range(5):
            response = events_client.put_events(Entries=batch)
            if not response.get("FailedEntryCount"):
                break
            batch = [e for e, r in zip(batch, response["Entries"]) if r.get("ErrorCode")]
        else:
            raise RuntimeError(f"EventBridge refused {len(batch)} events: {response['Entries'][:1]}")
    return len(entries)


def event_schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of each event's ``detail``, by detail-type (written to infra/schemas/)."""
    return {name: cls.model_json_schema() for name, cls in EVENT_TYPES.items()}


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
