"""Tracker Lambda on the work dead-letter queue (SQS batches, partial failures).

SQS moves a shard's work message there after maxReceiveCount receives that nobody deleted.
A worker deletes a shard's message once its output or its final failure is announced, so a
message in the dead-letter queue is a shard whose worker died on each delivery (killed, out of
memory, or the model ended the process): the shard is marked FAILED, saying so."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from scengrid.observability import service_logger, service_metrics, service_tracer
from scengrid.settings import get_settings
from scengrid.work import ShardWork

from services.tracker.dal import RunStore
from services.tracker.logic import fail_dead_lettered_shard

logger = service_logger("tracker")
tracer = service_tracer("tracker")
metrics = service_metrics("tracker")
processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def _store() -> RunStore:
    return RunStore()


def deliveries() -> int:
    """The work queues' maxReceiveCount (the sharder creates each with it): how many deliveries
    a dead-lettered shard had."""
    return get_settings().work_max_receives


def record_handler(record: SQSRecord) -> None:
    try:
        work = ShardWork.model_validate_json(record.body)
    except ValidationError as exc:  # nothing else is ever put on the work queue; retrying cannot parse it
        logger.error("not a shard work message: dropped", extra={"message_id": record.message_id, "error": str(exc)})
        return
    logger.append_keys(run_id=work.run_id, shard_id=work.shard_id)
    changed = fail_dead_lettered_shard(work, deliveries(), _store())
    logger.warning("dead-lettered shard marked FAILED" if changed else "dead-lettered shard had already finished")
    metrics.add_metric(name="DeadLetteredShards" if changed else "DuplicateEvents", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
