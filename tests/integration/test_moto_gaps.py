"""Each workaround in scengrid_cli.local.moto_gaps exists because of a hole in moto. The first
test of each pair shows the hole in plain moto (run in a fresh process, with no patch); when
moto closes it, that test fails and the workaround can go. The second shows the workaround."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scengrid.aws import client, lambda_invoker
from scengrid_cli.local.moto_gaps import (
    UNMODELLED_RESOURCE_TYPES,
    evaluate_cidr_functions,
    inline_state_machine_definition,
    skipped_resources,
    use_batch_service_linked_role,
)

PROBES = Path(__file__).with_name("moto_probes.py")
ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture(scope="module")
def plain_moto(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("probes") / "observed.json"
    subprocess.run([sys.executable, str(PROBES), str(out)], check=True, capture_output=True, timeout=300)
    observed = json.loads(out.read_text())
    errors = {k: v["probe_error"] for k, v in observed.items() if isinstance(v, dict) and "probe_error" in v}
    assert not errors, errors
    return observed


def test_hole_batch_parameters_reach_botocore_in_pascal_case(plain_moto: dict) -> None:
    seen = plain_moto["batch_submit_job_sync_casing"]
    assert seen["status"] == "FAILED" and seen["error"] == "States.Runtime" and "'JobName'" in seen["cause"]


def test_hole_batch_jobs_fail_without_docker(plain_moto: dict) -> None:
    assert plain_moto["batch_job_without_docker"]["status"] == "FAILED"


def test_hole_array_parent_never_fails(plain_moto: dict) -> None:
    seen = plain_moto["array_parent_after_child_failure"]
    assert seen["children"] == ["FAILED", "FAILED"] and seen["parent"] not in ("FAILED", "SUCCEEDED")


def test_hole_batch_share_identifier_is_dropped(plain_moto: dict) -> None:
    assert plain_moto["batch_share_identifier"] == {"share": None, "priority": None}


def test_hole_step_functions_drops_the_share_of_a_batch_task(plain_moto: dict) -> None:
    kept = plain_moto["sfn_batch_submit_parameters"]
    assert "JobQueue" in kept and "ShareIdentifier" not in kept and "SchedulingPriorityOverride" not in kept


def test_a_runs_jobs_run_under_its_share(local_stack, tmp_path) -> None:  # noqa: ANN001
    """Through the state machine: the sharder, every worker and the collator were submitted
    under the run's share, as the ASL names it."""
    from scengrid.spec import GeneratedScenarios, RunSpec
    from scengrid.work import share_identifier
    from scengrid_cli.local.demo import run_on_stack

    outcome = run_on_stack(local_stack, RunSpec(scenarios=GeneratedScenarios(count=4_000, seed=3), shard_size=1_000, workers=2), tmp_path, timeout_s=120)
    batch = client("batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    ids = [j["jobId"] for status in ("SUCCEEDED",) for page in batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status)
           for j in page["jobSummaryList"] if outcome.run_id in j["jobName"]]
    jobs = batch.describe_jobs(jobs=ids)["jobs"]
    assert sorted({j["jobName"].split("-")[1] for j in jobs}) == ["collate", "shard", "work"]
    assert {j.get("shareIdentifier") for j in jobs} == {share_identifier(outcome.run_id, None)}


def test_jobs_keep_the_share_they_were_submitted_under(local_stack) -> None:  # noqa: ANN001
    """The job and its array children: DescribeJobs shows the share, and the local runner ran
    the children under it (they held slots of that share, by the sharing rule)."""
    batch = client("batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName="share-probe", type="container", platformCapabilities=["FARGATE"],
        containerProperties={"image": "local", "command": ["python", "-c", "import time; time.sleep(1)"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]},
    )["jobDefinitionArn"]
    parent = batch.submit_job(jobName="share-probe", jobQueue=queue, jobDefinition=definition, shareIdentifier="desk1",
                              arrayProperties={"size": 2})["jobId"]
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and batch.describe_jobs(jobs=[parent])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
        seen |= set(local_stack.runner.sharing.running())
        time.sleep(0.1)
    jobs = batch.describe_jobs(jobs=[parent, f"{parent}:0", f"{parent}:1"])["jobs"]
    assert [j.get("shareIdentifier") for j in jobs] == ["desk1"] * 3 and jobs[0]["status"] == "SUCCEEDED"
    assert seen == {"desk1"}


def test_hole_definition_s3_location_is_dropped(plain_moto: dict) -> None:
    assert plain_moto["state_machine_definition_s3_location"]["definition"] == ""


def test_hole_fn_cidr_is_missing(plain_moto: dict) -> None:
    assert plain_moto["fn_cidr"]["created"] is False


def test_hole_rule_with_state_machine_target_breaks_put_events(plain_moto: dict) -> None:
    assert plain_moto["rule_with_state_machine_target"]["put_events"] == "raised"


def test_hole_cloudformation_state_machines_are_invisible_with_execution_on(plain_moto: dict) -> None:
    assert plain_moto["cloudformation_state_machine_with_execution_on"]["listed"] == 0


def test_hole_batch_compute_environment_needs_a_service_role(plain_moto: dict) -> None:
    seen = plain_moto["batch_compute_environment_without_service_role"]
    assert seen["created"] is False and "ServiceRole" in seen["error"]


def test_hole_cloudformation_skips_exactly_the_unmodelled_types(plain_moto: dict) -> None:
    seen = plain_moto["cloudformation_skipped_resource_types"]
    assert seen["status"] == "CREATE_COMPLETE"
    assert set(seen["skipped"]) == UNMODELLED_RESOURCE_TYPES


def test_hole_sfn_mock_config_is_not_loaded(plain_moto: dict) -> None:
    assert plain_moto["sfn_mock_config_test_case"]["started"] is False


def test_hole_distributed_map_ignores_failed_items(plain_moto: dict) -> None:
    assert plain_moto["distributed_map_with_a_failed_item"]["status"] == "SUCCEEDED"


# ---------------------------------------------------------------- the workarounds
def test_cidr_functions_are_evaluated_from_parameter_defaults() -> None:
    template = {
        "Parameters": {"Cidr": {"Type": "String", "Default": "10.42.0.0/16"}},
        "Resources": {"S": {"Properties": {"CidrBlock": {"Fn::Select": [1, {"Fn::Cidr": [{"Ref": "Cidr"}, 3, 12]}]}}}},
    }
    out = evaluate_cidr_functions(template)
    assert out["Resources"]["S"]["Properties"]["CidrBlock"]["Fn::Select"][1] == ["10.42.0.0/20", "10.42.16.0/20", "10.42.32.0/20"]
    assert "Fn::Cidr" in json.dumps(template)  # the input is left alone


def test_definition_is_inlined_with_its_substitutions(tmp_path: Path) -> None:
    (tmp_path / "m.asl.json").write_text('{"StartAt": "${First}", "States": {}}')
    template = {"Resources": {"M": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "DefinitionS3Location": "m.asl.json", "DefinitionSubstitutions": {"First": {"Ref": "X"}}}}}}
    props = inline_state_machine_definition(template, tmp_path)["Resources"]["M"]["Properties"]
    assert props == {"DefinitionString": {"Fn::Sub": ['{"StartAt": "${First}", "States": {}}', {"First": {"Ref": "X"}}]}}


def test_state_machine_rules_target_the_local_launch_queue(local_stack) -> None:  # noqa: ANN001
    events = client("events")
    bus = local_stack.settings.event_bus
    arns = [
        t["Arn"]
        for r in events.list_rules(EventBusName=bus)["Rules"]
        for t in events.list_targets_by_rule(Rule=r["Name"], EventBusName=bus)["Targets"]
    ]
    assert not [a for a in arns if ":states:" in a]
    assert any(a.endswith("-local-launch") for a in arns)


def test_batch_jobs_run_their_command_with_the_batch_environment(local_stack) -> None:  # noqa: ANN001
    """Each array child exits with its AWS_BATCH_JOB_ARRAY_INDEX: 0 succeeds, 1 fails, so the
    parent fails; a failing child's real exit code is reported."""
    batch = client("batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName="exit-with-index",
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "local",
            "command": ["python", "-c", "import os, sys; sys.exit(int(os.environ['AWS_BATCH_JOB_ARRAY_INDEX']))"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )["jobDefinitionArn"]
    parent = batch.submit_job(jobName="exit-with-index", jobQueue=queue, jobDefinition=definition, arrayProperties={"size": 2})["jobId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = batch.describe_jobs(jobs=[parent])["jobs"][0]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.2)
    children = batch.describe_jobs(jobs=[f"{parent}:0", f"{parent}:1"])["jobs"]
    assert [c["status"] for c in children] == ["SUCCEEDED", "FAILED"]
    assert children[1]["container"]["exitCode"] == 1
    assert job["status"] == "FAILED"


def test_compute_environments_get_batchs_service_linked_role(local_stack) -> None:  # noqa: ANN001
    template = {"Resources": {
        "Spot": {"Type": "AWS::Batch::ComputeEnvironment", "Properties": {"Type": "MANAGED"}},
        "Own": {"Type": "AWS::Batch::ComputeEnvironment", "Properties": {"Type": "MANAGED", "ServiceRole": "arn:own"}},
    }}
    first = use_batch_service_linked_role(template, client("iam"))
    again = use_batch_service_linked_role(template, client("iam"))  # the role is reused, not created twice
    role = first["Resources"]["Spot"]["Properties"]["ServiceRole"]
    assert ":role/aws-service-role/batch.amazonaws.com/" in role
    assert again["Resources"]["Spot"]["Properties"]["ServiceRole"] == role
    assert first["Resources"]["Own"]["Properties"]["ServiceRole"] == "arn:own"
    assert "ServiceRole" not in template["Resources"]["Spot"]["Properties"]  # the input is left alone


def test_skipped_resources_leave_out_conditional_ones() -> None:
    template = {"Resources": {
        "Made": {"Type": "AWS::SQS::Queue"},
        "Dropped": {"Type": "AWS::SQS::QueuePolicy"},
        "Off": {"Type": "AWS::Lambda::Function", "Condition": "ImagesPushed"},
    }}
    assert skipped_resources(template, {"Made"}) == {"Dropped": "AWS::SQS::QueuePolicy"}


@pytest.mark.parametrize(("tolerated", "status"), [(None, "FAILED"), (1, "SUCCEEDED")])
def test_a_distributed_map_fails_past_its_failure_threshold(local_stack, tolerated, status) -> None:  # noqa: ANN001
    from tests.integration.moto_probes import DISTRIBUTED_MAP_WITH_A_FAILING_ITEM

    definition = json.loads(json.dumps(DISTRIBUTED_MAP_WITH_A_FAILING_ITEM))
    if tolerated is not None:
        definition["States"]["M"]["ToleratedFailureCount"] = tolerated
    sfn = client("stepfunctions")
    name = f"threshold-{tolerated}-{time.time_ns()}"
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, name="e", input=json.dumps({"items": [1, 2, 3]}))["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=ex))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["status"] == status
    if status == "FAILED":
        assert described["error"] == "States.ExceedToleratedFailureThreshold"


def test_hole_lambda_invoke_runs_no_handler(plain_moto: dict) -> None:
    without, off = plain_moto["lambda_invoke_without_docker"], plain_moto["lambda_invoke_with_docker_off"]
    assert without["function_error"] == "Handled" and "docker" in without["payload"].lower()
    assert off["function_error"] is None and json.loads(off["payload"]) == {"asked": 1}
    assert "answered" not in without["payload"] + off["payload"]


def test_lambda_invoke_reaches_the_real_handler_locally(local_stack) -> None:  # noqa: ANN001
    response = lambda_invoker().invoke(FunctionName=local_stack.settings.inference_function, Payload=b'{"rows": [[0, 0, 0, 4]]}')
    body = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "InvalidInput" and body["errorMessage"].startswith("rows[0]: 4 features given")


def test_hole_sync_tasks_look_at_their_job_every_half_second() -> None:
    import inspect

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback as sync

    assert sync._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.5
    assert "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)" in inspect.getsource(sync.StateTaskServiceCallback._eval_sync)


def test_a_stopping_job_wakes_the_sync_tasks(local_stack) -> None:  # noqa: ANN001
    import threading

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback as sync

    from scengrid_cli.local.moto_gaps import SleepUntilAJobStops, _notify_job_stopped

    assert isinstance(sync.time, SleepUntilAJobStops) and sync.time.monotonic is time.monotonic
    sleeper = threading.Thread(target=sync.time.sleep, args=(60,), daemon=True)
    sleeper.start()
    deadline = time.monotonic() + 10
    while sleeper.is_alive() and time.monotonic() < deadline:  # a job stops (again, until the sleeper listens)
        _notify_job_stopped()
        sleeper.join(0.05)
    assert not sleeper.is_alive()


def test_hole_every_task_state_builds_its_own_client() -> None:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    assert boto_client_for(region="us-east-1", service="batch") is not boto_client_for(region="us-east-1", service="batch")


def moto_source(module: str) -> str:
    """A moto module's source as shipped (the live module may be patched in this process)."""
    import importlib.util

    return Path(importlib.util.find_spec(module).origin).read_text()


def test_hole_the_server_finds_each_requests_backend_from_disk() -> None:
    assert "for backend in sorted(os.listdir(path)):" in moto_source("moto.backends")
    assert "if host in backends.list_of_moto_modules():" in moto_source("moto.moto_server.werkzeug_app")


def test_hole_eventbridge_compiles_every_input_path_for_every_event() -> None:
    source = moto_source("moto.events.utils")
    assert "from jsonpath_ng.ext import parse" in source and "input_expr = parse(input_paths_map[input_path])" in source


def test_routes_and_event_paths_are_kept(local_stack) -> None:  # noqa: ANN001
    import jsonpath_ng.ext
    from moto import backends

    assert isinstance(backends.list_of_moto_modules(), tuple) and "s3" in backends.list_of_moto_modules()
    assert jsonpath_ng.ext.parse("$.detail") is jsonpath_ng.ext.parse("$.detail")
    assert client("s3").head_bucket(Bucket=local_stack.settings.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_hole_executions_put_no_status_change_events(plain_moto: dict) -> None:
    seen = plain_moto["execution_status_change_events"]
    assert seen["status"] == "SUCCEEDED" and seen["by_hand"] == 1
    assert seen["from_execution"] == 0


def status_changes(queue_url: str, count: int) -> list[dict]:
    """The envelopes of ``count`` status changes, in the order the queue returns them."""
    sqs = client("sqs")
    found: list[dict] = []
    deadline = time.monotonic() + 30
    while len(found) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


@pytest.mark.parametrize(
    ("asl", "end"),
    [
        ({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}, "SUCCEEDED"),
        ({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}, "ABORTED"),
    ],
)
def test_executions_put_aws_status_changes_on_the_default_bus(local_stack, asl: dict, end: str) -> None:  # noqa: ANN001
    from scengrid.events import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE

    sfn, sqs, events = client("stepfunctions"), client("sqs"), client("events")
    machine = sfn.create_state_machine(name=f"status-{end}-{time.time_ns()}", definition=json.dumps(asl), roleArn=ROLE)["stateMachineArn"]
    url = sqs.create_queue(QueueName=f"status-{end}-{time.time_ns()}")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [EXECUTION_STATUS_SOURCE], "detail-type": [EXECUTION_STATUS_CHANGE], "detail": {"stateMachineArn": [machine]}}
    rule = f"status-{end}-{time.time_ns()}"
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))  # the default bus, as on AWS
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue}])
    name = str(uuid.uuid4())
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input='{"run": "r"}')["executionArn"]
    if end == "ABORTED":
        sfn.stop_execution(executionArn=execution, cause="test")
    running, ended = status_changes(url, 2)
    events.remove_targets(Rule=rule, Ids=["q"])
    events.delete_rule(Name=rule)

    assert [running["detail"]["status"], ended["detail"]["status"]] == ["RUNNING", end]
    for envelope in (running, ended):
        assert envelope["source"] == EXECUTION_STATUS_SOURCE and envelope["detail-type"] == EXECUTION_STATUS_CHANGE
        assert envelope["resources"] == [execution]
        detail = envelope["detail"]
        assert (detail["executionArn"], detail["stateMachineArn"], detail["name"]) == (execution, machine, name)
        assert detail["input"] == '{"run": "r"}' and isinstance(detail["startDate"], int)
    assert running["detail"]["stopDate"] is None and running["detail"]["output"] is None
    assert ended["detail"]["stopDate"] >= ended["detail"]["startDate"]
    assert ended["detail"]["output"] == ('{"ok":1}' if end == "SUCCEEDED" else None)


def test_hole_dynamodb_writes_take_no_lock() -> None:
    source = moto_source("moto.dynamodb.models")
    assert "Lock(" not in source and "def transact_write_items" in source
    assert "original_table_state[table_name] = copy.deepcopy(" in source  # each table a transaction touches, copied whole


def test_the_emulators_dynamodb_writes_one_request_at_a_time(local_stack) -> None:  # noqa: ANN001
    """16 concurrent conditional increments of one counter, bounded at 5: exactly 5 succeed,
    trial after trial, and the counter says 5."""
    from concurrent.futures import ThreadPoolExecutor

    dynamodb = client("dynamodb")
    table = f"serial-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])

    def take(trial: int) -> bool:
        try:
            dynamodb.transact_write_items(TransactItems=[{"Update": {
                "TableName": table, "Key": {"pk": {"S": f"t{trial}"}}, "UpdateExpression": "ADD n :one",
                "ConditionExpression": "attribute_not_exists(n) OR n < :max",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": "5"}},
            }}])
            return True
        except dynamodb.exceptions.TransactionCanceledException:
            return False

    try:
        with ThreadPoolExecutor(16) as pool:
            for trial in range(5):
                taken = sum(pool.map(lambda _: take(trial), range(16)))
                item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"t{trial}"}}, ConsistentRead=True)["Item"]
                assert (taken, item["n"]["N"]) == (5, "5"), trial
    finally:
        dynamodb.delete_table(TableName=table)


def test_a_cancelled_transaction_leaves_every_item_as_it_was(local_stack) -> None:  # noqa: ANN001
    """Items it put, replaced or updated before the failing condition are put back; the table's
    other items, written meanwhile by no one, are untouched."""
    dynamodb = client("dynamodb")
    table = f"rollback-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    try:
        for pk, n in (("replaced", "1"), ("updated", "1"), ("guard", "9"), ("bystander", "4")):
            dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "n": {"N": n}})
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "n": {"N": "1"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "replaced"}, "n": {"N": "2"}}}},
                {"Update": {"TableName": table, "Key": {"pk": {"S": "updated"}}, "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Update": {"TableName": table, "Key": {"pk": {"S": "guard"}}, "UpdateExpression": "ADD n :one",
                            "ConditionExpression": "n < :max", "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": "5"}}}},
            ])
        items = {i["pk"]["S"]: i["n"]["N"] for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]}
        assert items == {"replaced": "1", "updated": "1", "guard": "9", "bystander": "4"}
    finally:
        dynamodb.delete_table(TableName=table)
