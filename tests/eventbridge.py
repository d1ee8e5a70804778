"""EventBridge envelopes as AWS delivers them to a target, for tests: one of our events (put by
a service), and Step Functions' status change of an execution (put by AWS); and a spy on the
emulator's bus, which sees the envelopes our services and the state machine really put."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from scengrid.aws import client
from scengrid.events import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE, SOURCE_PREFIX, Event, ExecutionStatus, entry_for
from scengrid.settings import get_settings

ACCOUNT = "123456789012"
REGION = "us-east-1"


def envelope(source: str, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": resources or [],
        "detail": detail,
    }


def envelope_of(event: Event, service: str) -> dict[str, Any]:
    """The envelope of one of our events, as the bus's rules pass it on."""
    entry = entry_for(event, service)
    return envelope(entry["Source"], entry["DetailType"], json.loads(entry["Detail"]))


def execution_status_change(
    execution_arn: str, state_machine_arn: str, status: ExecutionStatus, execution_input: str | None
) -> dict[str, Any]:
    """Step Functions' event when the execution starts (RUNNING) or ends, as documented by AWS."""
    ended = status is not ExecutionStatus.RUNNING
    detail = {
        "executionArn": execution_arn,
        "stateMachineArn": state_machine_arn,
        "name": execution_arn.rsplit(":", 1)[1],
        "status": status.value,
        "startDate": 1_700_000_000_000,
        "stopDate": 1_700_000_060_000 if ended else None,
        "input": execution_input,
        "inputDetails": {"included": execution_input is not None},
        "output": None,
        "outputDetails": None,
        "error": None,
        "cause": None,
    }
    return envelope(EXECUTION_STATUS_SOURCE, EXECUTION_STATUS_CHANGE, detail, [execution_arn])


SPY_MARKER = "test.bus-spy"


@contextmanager
def bus_spy(timeout_s: float = 30) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every scengrid event put on the stack's bus while the block runs, as envelopes: a rule of
    the test's own sends them to a queue of its own. The function it yields puts a marker and
    returns what arrived before it, so "nothing of the kind was put" is an answer, not a timeout."""
    sqs, events = client("sqs"), client("events")
    bus = get_settings().event_bus
    name = f"bus-spy-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": SOURCE_PREFIX}, SPY_MARKER]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "spy", "Arn": queue}])

    def seen() -> list[dict[str, Any]]:
        marker = str(uuid.uuid4())
        events.put_events(Entries=[{"Source": SPY_MARKER, "DetailType": "marker", "Detail": json.dumps({"marker": marker}), "EventBusName": bus}])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                if body["detail"].get("marker") == marker:
                    return found
                found.append(body)
        raise AssertionError(f"the bus spy's marker did not arrive within {timeout_s} s")

    try:
        yield seen
    finally:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["spy"])
        events.delete_rule(Name=name, EventBusName=bus)
        sqs.delete_queue(QueueUrl=url)
