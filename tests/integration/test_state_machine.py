"""The run state machine as deployed (infra/statemachine/run.asl.json with the template's
substitutions, provisioned into the emulator), executed by moto's interpreter with mocked
Batch integrations in Step Functions Local's MockConfigFile format. Each execution is
started on ``<state machine ARN>#<TestCase>``; the worker groups come from S3 as the
sharder writes them; run-failed really goes on the bus and reaches the tracker, which names
the failed and missing shards from its own records."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from scengrid import layout, s3io, sizing
from scengrid.aws import client
from scengrid.events import RunRequested, ShardDone, ShardFailed, ShardWritten
from scengrid_cli.local.batch_runner import Attempt, retry_decision
from scengrid_cli.local.moto_gaps import mocked_calls, use_sfn_mock_config
from scengrid.models import load_model
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import Status, read_run
from scengrid.work import MAX_ARRAY_CHILDREN
from services.sharder.logic import plan_shards
from services.tracker.dal import RunStore
from services.tracker.logic import apply_event
from tests.eventbridge import bus_spy
from tests.template_data import resources

STATE_MACHINE = "scengrid-run"  # the template's "${EnvName}-run" with the local stack's EnvName
SPOT_RECLAIM = "Your Spot Task was interrupted."


def job(name: str, status: str = "SUCCEEDED", attempts: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """What a Batch submitJob.sync task returns: the job as DescribeJobs shows it."""
    return {
        "JobId": f"{name}-0000",
        "JobName": name,
        "JobArn": f"arn:aws:batch:us-east-1:123456789012:job/{name}-0000",
        "JobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/scengrid-shared-jobs",
        "Status": status,
        "Attempts": attempts if attempts is not None else [{"Container": {"ExitCode": 0}, "StatusReason": "Essential container in task exited"}],
        **extra,
    }


FAILED_WORKER = job("work", "FAILED", [{"Container": {"ExitCode": 1}, "StatusReason": "Essential container in task exited"}],
                    StatusReason="Essential container in task exited")

MOCK_CONFIG = {
    "StateMachines": {
        STATE_MACHINE: {
            "TestCases": {
                "HappyPath": {"Shard": "ShardSucceeds", "RunWorkerArray": "ArrayJobSucceeds", "RunWorker": "JobSucceeds", "Collate": "CollateSucceeds"},
                "SpotReclaimRetried": {"Shard": "ShardSucceeds", "RunWorkerArray": "ArrayJobSucceedsAfterSpotReclaim", "Collate": "CollateSucceeds"},
                "SubmitThrottled": {"Shard": "ShardThrottledThenSucceeds", "RunWorkerArray": "ArrayJobSucceeds", "Collate": "CollateSucceeds"},
                "WorkerApplicationError": {"Shard": "ShardSucceeds", "RunWorkerArray": "ArrayJobFails", "Collate": "CollateSucceeds"},
                "SharderApplicationError": {"Shard": "ShardFails", "RunWorkerArray": "ArrayJobSucceeds", "Collate": "CollateSucceeds"},
                "CollatorApplicationError": {"Shard": "ShardSucceeds", "RunWorkerArray": "ArrayJobSucceeds", "Collate": "CollateFails"},
            }
        }
    },
    "MockedResponses": {
        "ShardSucceeds": {"0": {"Return": job("shard")}},
        "JobSucceeds": {"0": {"Return": job("work")}},
        "ArrayJobSucceeds": {"0": {"Return": job("work", ArrayProperties={"Size": 2, "StatusSummary": {"SUCCEEDED": 2}})}},
        "CollateSucceeds": {"0": {"Return": job("collate")}},
        # Batch retried the reclaimed attempt by itself (the job definition's retry strategy):
        # the task sees a job that SUCCEEDED on its second attempt.
        "ArrayJobSucceedsAfterSpotReclaim": {"0": {"Return": job("work", attempts=[
            {"Container": {"ExitCode": 143}, "StatusReason": SPOT_RECLAIM},
            {"Container": {"ExitCode": 0}, "StatusReason": "Essential container in task exited"},
        ])}},
        "ShardThrottledThenSucceeds": {
            "0": {"Throw": {"Error": "Batch.TooManyRequestsException", "Cause": "Too Many Requests (Service: AWSBatch; Status Code: 429)"}},
            "1": {"Return": job("shard")},
        },
        "ArrayJobFails": {"0": {"Throw": {"Error": "States.TaskFailed", "Cause": json.dumps(FAILED_WORKER)}}},
        "ShardFails": {"0": {"Throw": {"Error": "States.TaskFailed", "Cause": json.dumps(job("shard", "FAILED", [
            {"Container": {"ExitCode": 2}, "StatusReason": "Essential container in task exited"}]))}}},
        "CollateFails": {"0": {"Throw": {"Error": "States.TaskFailed", "Cause": json.dumps(job("collate", "FAILED", [
            {"Container": {"ExitCode": 1}, "StatusReason": "Essential container in task exited"}]))}}},
    },
}


@pytest.fixture(scope="module")
def state_machine_arn(local_stack) -> str:  # noqa: ANN001
    use_sfn_mock_config(MOCK_CONFIG)
    arn = local_stack.settings.state_machine_arn
    assert arn.endswith(f":stateMachine:{STATE_MACHINE}")
    return arn


def start(
    arn: str, test_case: str, workers: int = 2, scenarios: int = 40_000, shard_size: int = 1_000,
    shards_end: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the run's worker groups as the sharder does, register the run with the tracker
    (and let ``shards_end`` report its shards, as the mocked jobs do not), then start the
    execution the run-requested rule would start, on the mocked test case."""
    run_id = f"sm-{test_case.lower()}-{uuid.uuid4().hex[:8]}"
    spec = RunSpec(scenarios=GeneratedScenarios(count=scenarios, seed=1), shard_size=shard_size, workers=workers)
    chosen = sizing.choose(spec, load_model(spec.model.name, spec.model.params), "aws")
    plan = plan_shards(run_id, spec, chosen, queue_url=f"https://sqs.us-east-1.amazonaws.com/123456789012/scengrid_run_{run_id}_r1")
    s3io.put_json(layout.worker_groups_key(run_id), [g.model_dump() for g in plan.groups])
    requested = RunRequested(run_id=run_id, spec=spec)
    apply_event(requested, RunStore())
    if shards_end is not None:
        shards_end(run_id)
    envelope = {"version": "0", "id": str(uuid.uuid4()), "detail-type": requested.detail_type, "source": "scengrid.api",
                "account": "123456789012", "region": "us-east-1", "resources": [], "detail": requested.model_dump(mode="json")}
    sfn = client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=f"{arn}#{test_case}", name=run_id, input=json.dumps(envelope))["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution} still running"
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    calls = [c for c in mocked_calls() if run_id in str(c.parameters.get("JobName", ""))]
    return {"run_id": run_id, "plan": plan, "execution": described, "history": events, "calls": calls}


def entered(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def wait_for_run_status(run_id: str, status: Status, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while (record := read_run(run_id)) is None or record.status is not status:
        assert time.monotonic() < deadline, f"run {run_id} is {record and record.status}, not {status}"
        time.sleep(0.2)
    return record


# ---------------------------------------------------------------- success paths
def test_happy_path_shards_evaluates_and_collates(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "HappyPath", workers=2)
    assert seen["execution"]["status"] == "SUCCEEDED"
    assert entered(seen["history"]) == ["Shard", "Evaluate", "Collate"]
    states = [c.state for c in seen["calls"]]
    assert states == ["Shard", "RunWorkerArray", "Collate"]
    shard, work, collate = (c.parameters for c in seen["calls"])
    assert shard["JobDefinition"].endswith(":job-definition/scengrid-sharder:1")
    assert work["JobDefinition"].endswith(":job-definition/scengrid-worker:1") and work["ArrayProperties"] == {"Size": 2}
    assert collate["JobDefinition"].endswith(":job-definition/scengrid-collator:1")
    assert {shard["JobQueue"], work["JobQueue"], collate["JobQueue"]} == {client("batch").describe_job_queues()["jobQueues"][0]["jobQueueArn"]}
    overrides = {e["Name"]: e["Value"] for e in shard["ContainerOverrides"]["Environment"]}
    assert overrides["SCENGRID_RUN_ID"] == seen["run_id"] and RunSpec.model_validate_json(overrides["SCENGRID_RUN_SPEC"]).workers == 2


def test_a_single_worker_runs_as_a_plain_job_not_an_array(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "HappyPath", workers=1)
    assert seen["execution"]["status"] == "SUCCEEDED"
    [work] = [c for c in seen["calls"] if c.state.startswith("RunWorker")]
    assert work.state == "RunWorker" and "ArrayProperties" not in work.parameters


def test_more_than_10000_shards_and_workers_split_into_several_array_jobs(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "HappyPath", workers=25_000, scenarios=4_000_000, shard_size=100)
    assert len(seen["plan"].shards) == 40_000
    assert seen["execution"]["status"] == "SUCCEEDED"
    arrays = [c.parameters for c in seen["calls"] if c.state == "RunWorkerArray"]
    sizes = sorted(a["ArrayProperties"]["Size"] for a in arrays)
    assert len(arrays) == 3 and sum(sizes) == 25_000 and max(sizes) <= MAX_ARRAY_CHILDREN
    assert sizes == sorted(g.size for g in seen["plan"].groups)
    names = {a["JobName"] for a in arrays}
    assert names == {f"scengrid-work-{seen['run_id']}-{g}" for g in range(3)}
    assert [c.state for c in seen["calls"]][-1] == "Collate"  # collated once, after every group


def test_a_spot_reclaim_is_retried_by_batch_and_the_run_goes_on(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "SpotReclaimRetried")
    assert seen["execution"]["status"] == "SUCCEEDED"
    assert entered(seen["history"]) == ["Shard", "Evaluate", "Collate"]
    # the reclaimed attempt in the mocked job is one the worker's job definition retries
    strategy = resources()["WorkerJobDefinition"]["Properties"]["RetryStrategy"]
    reclaimed = MOCK_CONFIG["MockedResponses"]["ArrayJobSucceedsAfterSpotReclaim"]["0"]["Return"]["Attempts"][0]
    assert retry_decision(strategy, Attempt(reclaimed["Container"]["ExitCode"], reclaimed["StatusReason"])) == "RETRY"


def test_a_throttled_submission_is_retried_by_the_state_machine(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "SubmitThrottled")
    assert seen["execution"]["status"] == "SUCCEEDED"
    failed = [e for e in seen["history"] if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["Batch.TooManyRequestsException"]
    assert [c.state for c in seen["calls"]] == ["Shard", "Shard", "RunWorkerArray", "Collate"]
    assert "ReportRunFailed" not in entered(seen["history"])


# ---------------------------------------------------------------- failure paths
def test_a_worker_application_error_fails_the_run_with_run_failed(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "WorkerApplicationError")
    execution = seen["execution"]
    assert execution["status"] == "FAILED" and execution["error"] == "scengrid.RunFailed"
    assert entered(seen["history"]) == ["Shard", "Evaluate", "ReportRunFailed", "RunFailed"]
    assert "Collate" not in [c.state for c in seen["calls"]]
    # the application error is not one the job definition retries
    strategy = resources()["WorkerJobDefinition"]["Properties"]["RetryStrategy"]
    assert retry_decision(strategy, Attempt(1, "")) == "EXIT"
    record = wait_for_run_status(seen["run_id"], Status.FAILED)  # run-failed went on the bus, the tracker took it
    assert "States.ExceedToleratedFailureThreshold" in (record.model_dump().get("reason") or "")


def test_a_sharder_application_error_reports_the_failure_and_runs_nothing_else(state_machine_arn: str) -> None:
    seen = start(state_machine_arn, "SharderApplicationError")
    assert seen["execution"]["status"] == "FAILED"
    assert entered(seen["history"]) == ["Shard", "ReportRunFailed", "RunFailed"]
    assert [c.state for c in seen["calls"]] == ["Shard"]
    put = [e for e in seen["history"] if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "events"]
    [entry] = json.loads(put[0]["taskScheduledEventDetails"]["parameters"])["Entries"]
    assert entry["DetailType"] == "run-failed" and entry["EventBusName"] == "scengrid-bus"
    assert "States.TaskFailed" in entry["Detail"]["reason"]
    record = wait_for_run_status(seen["run_id"], Status.FAILED)
    assert "States.TaskFailed" in (record.model_dump().get("reason") or "")


def test_a_collator_failure_fails_the_run_naming_the_failed_and_missing_shards(state_machine_arn: str) -> None:
    def shards_end(run_id: str) -> None:
        store = RunStore()
        for i in range(4):
            apply_event(ShardWritten(run_id=run_id, shard_id=f"{i:06d}", shards_total=4, start=i * 1000, count=1000), store)
        for shard in ("000000", "000001"):
            apply_event(ShardDone(run_id=run_id, shard_id=shard, output_key="k", rows=1000, duration_s=1, task_id="t"), store)
        apply_event(ShardFailed(run_id=run_id, shard_id="000002", error="ValueError: boom", task_id="t"), store)
        # 000003 never reports

    with bus_spy() as spy:
        seen = start(state_machine_arn, "CollatorApplicationError", scenarios=4_000, shards_end=shards_end)
        put = [e for e in spy() if e["detail"].get("run_id") == seen["run_id"] and e["detail-type"] == "run-failed"]
    assert seen["execution"]["status"] == "FAILED"
    assert entered(seen["history"]) == ["Shard", "Evaluate", "Collate", "ReportRunFailed", "RunFailed"]
    # one run-failed, from the state machine, with no shard list: the tracker names the shards
    [envelope] = put
    assert envelope["source"] == "scengrid.orchestrator" and set(envelope["detail"]) == {"version", "run_id", "round", "reason"}
    record = wait_for_run_status(seen["run_id"], Status.FAILED)
    assert record.failed_shards == ["000002", "000003"]
    named = "shard 000002: FAILED (ValueError: boom); shard 000003: PENDING. The run's execution failed: States.TaskFailed: "
    assert (record.reason or "").startswith(named)
