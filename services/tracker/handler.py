"""Tracker Lambda: SQS batches of EventBridge envelopes → status in DynamoDB (partial failures).
When a round of a run ends (all-done, run-failed, run-cancelled), its work queue goes too."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from scengrid import work_queues
from scengrid.events import AllDone, RunCancelled, RunFailed, ShardEvent, parse_envelope
from scengrid.observability import service_logger, service_metrics, service_tracer

from services.tracker.dal import RunStore
from services.tracker.logic import apply_event

logger = service_logger("tracker")
tracer = service_tracer("tracker")
metrics = service_metrics("tracker")
processor = BatchProcessor(event_type=EventType.SQS)
ROUND_ENDS = (AllDone, RunFailed, RunCancelled)
_store: RunStore | None = None


def _get_store() -> RunStore:
    global _store
    if _store is None:
        _store = RunStore()
    return _store


def record_handler(record: SQSRecord) -> None:
    event = parse_envelope(record.body)
    logger.append_keys(run_id=event.run_id, shard_id=event.shard_id if isinstance(event, ShardEvent) else None)
    changed = apply_event(event, _get_store())
    logger.info("applied" if changed else "duplicate ignored", extra={"event": event.detail_type})
    metrics.add_metric(name="EventsApplied" if changed else "DuplicateEvents", unit=MetricUnit.Count, value=1)
    if isinstance(event, ROUND_ENDS):
        # Each time, not only on the first transition: a delivery that failed after the status
        # write comes again, and deleting a queue that is gone changes nothing.
        if work_queues.delete(event.run_id, event.round):
            logger.info("work queue of the round deleted", extra={"round": event.round})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
