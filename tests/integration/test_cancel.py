"""Cancel as on AWS: the rule starts a run's execution under a name EventBridge picks, so
nothing can derive its ARN from the run id. DELETE /runs/{id} stops exactly the execution the
tracker recorded from its status change (moto_gaps 17 puts those, as Step Functions does)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

from scengrid.aws import client
from scengrid.events import RunRequested
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid_cli.client import ApiClient, ApiError
from scengrid_cli.local.pollers import execution_arn
from tests.eventbridge import envelope_of

T = TypeVar("T")
# long enough to be in flight when cancelled: 100 shards, one worker
SPEC = RunSpec(scenarios=GeneratedScenarios(count=400_000, seed=5), shard_size=4_000, workers=1)


def wait_for(what: str, look: Callable[[], T], done: Callable[[T], bool], seconds: float = 60) -> T:
    deadline = time.monotonic() + seconds
    while not done(seen := look()):
        assert time.monotonic() < deadline, f"{what}: still {seen}"
        time.sleep(0.2)
    return seen


def run_or_none(api: ApiClient, run_id: str) -> dict | None:
    """The run's view, or None while the tracker has not recorded the run yet (404)."""
    try:
        return api.run(run_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None


def test_delete_stops_the_execution_recorded_for_the_run(local_stack) -> None:  # noqa: ANN001
    settings, sfn, api = local_stack.settings, client("stepfunctions"), local_stack.api_client()
    run_id = f"c-{uuid.uuid4().hex[:8]}"
    envelope = json.dumps(envelope_of(RunRequested(run_id=run_id, spec=SPEC), "api"))
    # What the two rules on run-requested do on AWS: the tracker's queue gets the event, and
    # the state machine starts with it as input, under a name of EventBridge's choosing.
    client("sqs").send_message(QueueUrl=settings.tracker_queue_url, MessageBody=envelope)
    arn = sfn.start_execution(stateMachineArn=settings.state_machine_arn, name=str(uuid.uuid4()), input=envelope)["executionArn"]

    view = wait_for("the execution recorded", lambda: run_or_none(api, run_id), lambda v: v is not None and v.get("execution_arn") == arn)
    assert view["execution_status"] == "RUNNING" and view["status"] in ("PENDING", "RUNNING")
    api.cancel(run_id)  # DELETE /runs/{id}: 202

    described = wait_for("the execution stopped", lambda: sfn.describe_execution(executionArn=arn), lambda d: d["status"] != "RUNNING")
    assert described["status"] == "ABORTED"
    view = wait_for("the run cancelled", lambda: api.run(run_id), lambda v: v["status"] == "CANCELLED" and v["execution_status"] == "ABORTED")
    assert view["execution_arn"] == arn
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):  # no execution is named after the run
        sfn.describe_execution(executionArn=execution_arn(settings.state_machine_arn, run_id))
    with pytest.raises(ApiError) as refused:
        api.cancel(run_id)
    assert refused.value.status == 409
