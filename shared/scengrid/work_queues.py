"""Each run's work queue, one per round: the sharder creates it, the run's own workers alone take
shards from it, and the tracker deletes it when the round ends (complete, failed or cancelled).

So a worker never evaluates another run's shard, and a run's Evaluate stage ends when its own
shards are done, however many runs share the account."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from scengrid.aws import client
from scengrid.settings import get_settings
from scengrid.work import work_queue_name

RETENTION_S = 4 * 24 * 3600  # a message outlives any round: a round ends well inside a day
# The error codes of a queue that is not there (deleted with its round, or never created), by
# protocol: AWS JSON, then the query protocol's.
_QUEUE_GONE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def queue_name(run_id: str, round_: int) -> str:
    settings = get_settings()
    settings.require("work_queue_prefix")
    return work_queue_name(settings.work_queue_prefix, run_id, round_)


def create(run_id: str, round_: int) -> str:
    """Create (or find: the same name and attributes make CreateQueue idempotent) the round's
    queue, encrypted, redriving to the stack's dead-letter queue; return its URL."""
    settings = get_settings()
    settings.require("work_queue_prefix", "work_dead_letter_queue_url")
    sqs = client("sqs")
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=settings.work_dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    return sqs.create_queue(
        QueueName=queue_name(run_id, round_),
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_s),
            "MessageRetentionPeriod": str(RETENTION_S),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": settings.work_max_receives}),
        },
        tags={"scengrid:run-id": run_id, "scengrid:round": str(round_)},
    )["QueueUrl"]


def delete(run_id: str, round_: int) -> bool:
    """Delete the round's queue and whatever it still holds; False if it was not there."""
    sqs = client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=queue_name(run_id, round_))["QueueUrl"]
        sqs.delete_queue(QueueUrl=url)
    except ClientError as error:
        if is_gone(error):
            return False
        raise
    return True


def open_queues() -> list[str]:
    """Every run's work queue that exists now (for a worker that serves any run)."""
    settings = get_settings()
    settings.require("work_queue_prefix")
    urls: list[str] = []
    for page in client("sqs").get_paginator("list_queues").paginate(QueueNamePrefix=settings.work_queue_prefix):
        urls.extend(page.get("QueueUrls", []))
    return urls


def is_gone(error: ClientError) -> bool:
    """Whether an SQS error says the queue does not exist (its round ended: it was deleted)."""
    return error.response.get("Error", {}).get("Code") in _QUEUE_GONE
