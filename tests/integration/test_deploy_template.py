"""One template for both worlds. The local stack is infra/template.yaml provisioned into the
emulator (first-deploy parameters: no images yet, so no Lambda functions and no API); this
checks that every resource the services and the state machine look up by name is there, as the
template defines it. Then the whole template, as the second deploy sees it (images pushed, a
NAT gateway per AZ), goes into the same emulator under another environment name: everything is
created but the resource types moto does not model (moto_gaps 9), the functions and their
wiring are as AWS would get them, and API Gateway's methods are the OpenAPI document's."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest

from scengrid.aws import client
from scengrid_cli.local.cfn import load_template
from scengrid_cli.local.moto_gaps import (
    UNMODELLED_RESOURCE_TYPES,
    evaluate_cidr_functions,
    inline_state_machine_definition,
    skipped_resources,
    use_batch_service_linked_role,
)
from scengrid_cli.local.provision import INFRA_DIR, TEMPLATE
from services.tracker.openapi import SPEC_FILE

ENV = "scengrid"  # the local stack's EnvName
# moto warns for each resource of a type it does not model, each time it lists the stack
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


# ---------------------------------------------------------------- the local stack, by name
def test_every_setting_the_services_read_names_a_live_resource(local_stack) -> None:  # noqa: ANN001
    s = local_stack.settings
    assert s.bucket.startswith(f"{ENV}-runs-")
    client("s3").head_bucket(Bucket=s.bucket)
    keys = {
        name: [k["AttributeName"] for k in client("dynamodb").describe_table(TableName=name)["Table"]["KeySchema"]]
        for name in (s.runs_table, s.shards_table)
    }
    assert keys == {f"{ENV}-runs": ["run_id"], f"{ENV}-shards": ["run_id", "shard_id"]}
    assert client("events").describe_event_bus(Name=s.event_bus)["Name"] == f"{ENV}-bus"
    attrs = client("sqs").get_queue_attributes(QueueUrl=s.tracker_queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{ENV}-tracker-dlq") and int(redrive["maxReceiveCount"]) == 5
    assert s.work_dead_letter_queue_url.endswith(f"/{ENV}-work-dlq") and s.work_queue_prefix == f"{ENV}_run_"
    assert s.state_machine_arn.endswith(f":stateMachine:{ENV}-run")


def test_the_state_machine_is_the_asl_with_the_stacks_resources(local_stack) -> None:  # noqa: ANN001
    s = local_stack.settings
    deployed = client("stepfunctions").describe_state_machine(stateMachineArn=s.state_machine_arn)["definition"]
    queue = client("batch").describe_job_queues(jobQueues=[f"{ENV}-shared-jobs"])["jobQueues"][0]
    definitions = {
        d["jobDefinitionName"]: d["jobDefinitionArn"]
        for d in client("batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
        if d["jobDefinitionName"].startswith(f"{ENV}-")
    }
    expected = (INFRA_DIR / "statemachine" / "run.asl.json").read_text()
    for placeholder, value in {
        "JobQueueArn": queue["jobQueueArn"],
        "SharderJobDefinitionArn": definitions[f"{ENV}-sharder"],
        "WorkerJobDefinitionArn": definitions[f"{ENV}-worker"],
        "CollatorJobDefinitionArn": definitions[f"{ENV}-collator"],
        "BucketName": s.bucket,
        "EventBusName": s.event_bus,
    }.items():
        expected = expected.replace("${" + placeholder + "}", value)
    assert json.loads(deployed) == json.loads(expected)


def test_batch_is_spot_first_with_the_templates_job_definitions(local_stack) -> None:  # noqa: ANN001
    batch = client("batch")
    queue = batch.describe_job_queues(jobQueues=[f"{ENV}-shared-jobs"])["jobQueues"][0]
    order = sorted(queue["computeEnvironmentOrder"], key=lambda o: o["order"])
    environments = {e["computeEnvironmentArn"]: e for e in batch.describe_compute_environments()["computeEnvironments"]}
    assert [environments[o["computeEnvironment"]]["computeResources"]["type"] for o in order] == ["FARGATE_SPOT", "FARGATE"]
    resources = template()["Resources"]
    for service in ("sharder", "worker", "collator"):
        [found] = batch.describe_job_definitions(jobDefinitionName=f"{ENV}-{service}", status="ACTIVE")["jobDefinitions"]
        defined = resources[f"{service.capitalize()}JobDefinition"]["Properties"]
        assert found["containerProperties"]["command"] == defined["ContainerProperties"]["Command"]
        assert found["retryStrategy"]["attempts"] == defined["RetryStrategy"]["Attempts"]
        env = {e["name"]: e["value"] for e in found["containerProperties"]["environment"]}
        assert env["SCENGRID_BUCKET"] == local_stack.settings.bucket and env["SCENGRID_EVENT_BUS"] == f"{ENV}-bus"


def test_both_rules_route_events_where_the_template_says(local_stack) -> None:  # noqa: ANN001
    events = client("events")
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=f"{ENV}-bus")["Rules"]}
    assert json.loads(rules[f"{ENV}-run-requested"]["EventPattern"])["detail-type"] == ["run-requested"]
    targets = events.list_targets_by_rule(Rule=f"{ENV}-all-to-tracker", EventBusName=f"{ENV}-bus")["Targets"]
    assert [t["Arn"].rsplit(":", 1)[1] for t in targets] == [f"{ENV}-tracker"]


def test_images_repositories_exist(local_stack) -> None:  # noqa: ANN001
    repos = {r["repositoryName"] for r in client("ecr").describe_repositories()["repositories"]}
    assert {f"{ENV}/{s}" for s in ("sharder", "worker", "collator", "tracker", "inference")} <= repos


def test_the_emulator_skipped_only_types_the_local_runtime_does_not_use(local_stack) -> None:  # noqa: ANN001
    created = {
        r["LogicalResourceId"]
        for r in client("cloudformation").list_stack_resources(StackName=ENV)["StackResourceSummaries"]
        if r["LogicalResourceId"]
    }
    skipped = skipped_resources(template(), created)
    assert skipped and set(skipped.values()) <= UNMODELLED_RESOURCE_TYPES


# ---------------------------------------------------------------- the whole template, second deploy
FULL_ENV = "fulldeploy"
FULL_PARAMETERS = {"EnvName": FULL_ENV, "ImageTag": "abc123def456", "NatGatewayPerAz": "true", "VpcCidr": "10.60.0.0/17"}


@pytest.fixture(scope="module")
def full_stack(local_stack) -> dict[str, Any]:  # noqa: ANN001
    prepared = evaluate_cidr_functions(inline_state_machine_definition(template(), INFRA_DIR), FULL_PARAMETERS)
    prepared = use_batch_service_linked_role(prepared, client("iam"))
    cfn = client("cloudformation")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
        cfn.create_stack(
            StackName=FULL_ENV,
            TemplateBody=json.dumps(prepared),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in FULL_PARAMETERS.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = cfn.describe_stacks(StackName=FULL_ENV)["Stacks"][0]
        summaries = cfn.list_stack_resources(StackName=FULL_ENV)["StackResourceSummaries"]
    created = {r["LogicalResourceId"] for r in summaries if r["LogicalResourceId"]}
    return {"stack": stack, "created": created, "template": prepared}


def test_the_whole_template_deploys(full_stack: dict[str, Any]) -> None:
    assert full_stack["stack"]["StackStatus"] == "CREATE_COMPLETE"
    missing = {n: r["Type"] for n, r in full_stack["template"]["Resources"].items() if n not in full_stack["created"]}
    assert set(missing.values()) <= UNMODELLED_RESOURCE_TYPES, missing
    for conditional in ("TrackerFunction", "TrackerEventSource", "InferenceFunction", "ApiFunction", "PredictPostMethod", "NatGatewayB", "NatGatewayC"):
        assert conditional in full_stack["created"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in full_stack["stack"]["Outputs"]}
    assert outputs["TrackerFunctionName"] == f"{FULL_ENV}-tracker" and outputs["InferenceFunctionName"] == f"{FULL_ENV}-inference"
    assert re.fullmatch(rf"https://\w+\.execute-api\.us-east-1\.amazonaws\.com/v1", outputs["ApiUrl"])


def test_the_functions_run_their_images_and_are_wired(full_stack: dict[str, Any]) -> None:
    """moto's CloudFormation keeps the image URI but drops PackageType, ImageConfig,
    TracingConfig and LoggingConfig of a function (MOTO_NOTES); the template tests check those."""
    lam = client("lambda")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in full_stack["stack"]["Outputs"]}
    for name, repository in ((f"{FULL_ENV}-tracker", "TrackerRepositoryUri"), (f"{FULL_ENV}-inference", "InferenceRepositoryUri")):
        function = lam.get_function(FunctionName=name)
        assert function["Code"]["ImageUri"] == f"{outputs[repository]}:{FULL_PARAMETERS['ImageTag']}"
        assert function["Configuration"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == f"scengrid-{name.split('-')[-1]}"
    [mapping] = lam.list_event_source_mappings(FunctionName=f"{FULL_ENV}-tracker")["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(f":{FULL_ENV}-tracker")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_deployed_api_methods_are_the_openapi_documents_operations(full_stack: dict[str, Any]) -> None:
    """API Gateway as provisioned: one method per operation of infra/openapi.json (path and
    verb), each with IAM auth, and nothing else."""
    apigateway = client("apigateway")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in full_stack["stack"]["Outputs"]}
    api_id = outputs["RestApiId"]
    deployed: dict[tuple[str, str], str] = {}
    for resource in apigateway.get_resources(restApiId=api_id, limit=500)["items"]:
        for verb in resource.get("resourceMethods", {}):
            method = apigateway.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=verb)
            deployed[(resource["path"], verb)] = method["authorizationType"]
    spec = json.loads(SPEC_FILE.read_text())
    operations = {(path, verb.upper()) for path, ops in spec["paths"].items() for verb in ops}
    assert set(deployed) == operations
    assert set(deployed.values()) == {"AWS_IAM"}


def test_the_network_spans_three_azs_with_endpoints(full_stack: dict[str, Any]) -> None:
    ec2 = client("ec2")
    [vpc] = [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == FULL_PARAMETERS["VpcCidr"]]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    tasks = [s for s in subnets if s["CidrBlock"].endswith("/20")]
    assert len(tasks) == 3 and len({s["AvailabilityZone"] for s in tasks}) == 3
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["VpcEndpoints"]
    assert sorted(e["ServiceName"].rsplit(".", 1)[1] for e in endpoints) == ["dynamodb", "s3"]
    assert len(ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["NatGateways"]) == 3
