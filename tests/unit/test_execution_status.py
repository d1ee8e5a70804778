"""Step Functions' status change of an execution (AWS's event, on the default bus) as the
tracker reads it: the run and round come from the execution's input, the run-requested
envelope the rule passed."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from scengrid.events import ExecutionStatus, RunExecutionChanged, RunRequested, ShardFailed, parse_envelope
from scengrid.spec import GeneratedScenarios, RunSpec
from tests.eventbridge import envelope_of, execution_status_change

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:scengrid-run"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:scengrid-run:0f1e2d3c-aws-picked"


def test_a_status_change_names_the_run_round_and_execution() -> None:
    requested = RunRequested(run_id="r-1", round=3, spec=RunSpec(scenarios=GeneratedScenarios(count=10)))
    body = execution_status_change(EXECUTION, MACHINE, ExecutionStatus.ABORTED, json.dumps(envelope_of(requested, "api")))
    changed = parse_envelope(json.dumps(body))
    assert isinstance(changed, RunExecutionChanged)
    assert (changed.run_id, changed.round, changed.execution_arn, changed.status) == ("r-1", 3, EXECUTION, ExecutionStatus.ABORTED)
    assert changed.at == datetime.fromisoformat(body["time"]).astimezone(timezone.utc)


def test_an_execution_whose_input_is_left_out_cannot_be_tied_to_a_run() -> None:
    body = execution_status_change(EXECUTION, MACHINE, ExecutionStatus.RUNNING, None)
    with pytest.raises(ValueError, match="its input is not in the event"):
        parse_envelope(body)


def test_an_execution_started_by_another_event_is_refused() -> None:
    failed = ShardFailed(run_id="r-1", shard_id="000001", error="boom", task_id="t")
    body = execution_status_change(EXECUTION, MACHINE, ExecutionStatus.RUNNING, json.dumps(envelope_of(failed, "worker")))
    with pytest.raises(ValueError, match="not run-requested"):
        parse_envelope(body)
