"""Local stand-ins for the AWS-side consumers of queues:

- the SQS event sources of the tracker's Lambdas (events; the work dead-letter queue): a thread
  per queue receives batches and calls the same handler with the same SQS event shape,
  deleting only what the handler did not report as failed;
- the run-requested → Step Functions rule target (moto_gaps 5): a thread starts one execution
  per run, named after the run, so that duplicate deliveries start nothing twice."""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scengrid.aws import client
from scengrid.events import RunRequested, parse_envelope

TRACKER_HANDLER = "services.tracker.handler.lambda_handler"
DEAD_LETTER_HANDLER = "services.tracker.dead_letter_handler.lambda_handler"
RECEIVE_WAIT_S = 1


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def load_handler(dotted: str) -> Callable[[dict[str, Any], Any], Any]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event the Lambda SQS event source sends for these messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueuePoller(threading.Thread):
    """Receive → handle → delete, until stopped. ``handle`` returns the ids that failed."""

    def __init__(self, name: str, queue_url: str, handle: Callable[[list[dict[str, Any]]], set[str]]) -> None:
        super().__init__(name=name, daemon=True)
        self.queue_url = queue_url
        self.handle = handle
        self._stopping = threading.Event()
        self.handled = 0
        self.errors: list[str] = []

    def run(self) -> None:
        sqs = client("sqs")
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=RECEIVE_WAIT_S,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    continue
                failed = self.handle(messages)
                done = [m for m in messages if m["MessageId"] not in failed]
                if done:
                    sqs.delete_message_batch(
                        QueueUrl=self.queue_url,
                        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                    )
                self.handled += len(done)
            except Exception as exc:  # keep consuming; the message comes back after its visibility timeout
                if self._stopping.is_set():
                    return
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stopping.set()


def lambda_poller(function_name: str, handler_path: str, queue_url: str, region: str) -> QueuePoller:
    """A Lambda's SQS event source: batches of the queue to the handler, partial failures kept."""
    handler = load_handler(handler_path)
    queue_arn = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def handle(messages: list[dict[str, Any]]) -> set[str]:
        ctx = LambdaContext(function_name, aws_request_id=str(uuid.uuid4()))
        response = handler(sqs_event(messages, queue_arn, region), ctx)
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}

    return QueuePoller(function_name, queue_url, handle)


def tracker_poller(queue_url: str, region: str) -> QueuePoller:
    return lambda_poller("scengrid-tracker", TRACKER_HANDLER, queue_url, region)


def dead_letter_poller(queue_url: str, region: str) -> QueuePoller:
    """The tracker's second Lambda: shards whose worker died on each delivery become FAILED."""
    return lambda_poller("scengrid-work-dead-letters", DEAD_LETTER_HANDLER, queue_url, region)


def execution_name(run_id: str, round_: int) -> str:
    """The execution the local launcher starts for a run's round: the run id, then ``<run_id>-r<round>``
    (so that a duplicate run-requested starts nothing twice)."""
    return run_id if round_ == 1 else f"{run_id}-r{round_}"


def execution_arn(state_machine_arn: str, run_id: str, round_: int = 1) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution_name(run_id, round_)}"


def launch_poller(queue_url: str, state_machine_arn: str) -> QueuePoller:
    sfn = client("stepfunctions")

    def handle(messages: list[dict[str, Any]]) -> set[str]:
        for message in messages:
            event = parse_envelope(message["Body"])
            if not isinstance(event, RunRequested):
                continue
            try:
                name = execution_name(event.run_id, event.round)
                sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=message["Body"])
            except sfn.exceptions.ExecutionAlreadyExists:
                pass  # a duplicate delivery of the same run-requested
        return set()

    return QueuePoller("scengrid-launcher", queue_url, handle)
