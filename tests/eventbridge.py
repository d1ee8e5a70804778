"""EventBridge envelopes as AWS delivers them to a target, for tests: one of our events (put by
a service), and Step Functions' status change of an execution (put by AWS)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from scengrid.events import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE, Event, ExecutionStatus, entry_for

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
