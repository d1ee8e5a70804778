"""Probes of plain, unpatched moto: each one observes a hole that scengrid_cli.local.moto_gaps
works round. Run as a script in a fresh process (so no patch is installed); writes JSON
{probe: observation} to the file named by its argument. tests/integration/test_moto_gaps.py asserts on the observations."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable

import boto3
from moto import mock_aws

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
PROBES: dict[str, Callable[[], object]] = {}


def probe(fn: Callable[[], object]) -> Callable[[], object]:
    PROBES[fn.__name__] = fn
    return fn


def _batch_queue_and_definition(batch, iam, command: list[str]) -> tuple[str, str]:  # noqa: ANN001
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    env = batch.create_compute_environment(
        computeEnvironmentName="probe-env", type="MANAGED", serviceRole=role,
        computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": [subnet], "securityGroupIds": [sg]},
    )["computeEnvironmentArn"]
    queue = batch.create_job_queue(jobQueueName="probe-queue", state="ENABLED", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName="probe-def", type="container", platformCapabilities=["FARGATE"],
        containerProperties={"image": "x", "command": command, "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]},
    )["jobDefinitionArn"]
    return queue, definition


def _wait_job(batch, job_id: str, seconds: float = 8.0) -> str:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    status = "?"
    while time.monotonic() < deadline:
        status = batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]
        if status in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.25)
    return status


@probe
def batch_submit_job_sync_casing() -> object:
    """The interpreter passes PascalCase Batch parameters through: the task fails on 'JobName'."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "batch": {"use_docker": False}}):
        batch, iam = boto3.client("batch", region_name=REGION), boto3.client("iam", region_name=REGION)
        queue, definition = _batch_queue_and_definition(batch, iam, ["true"])
        sfn = boto3.client("stepfunctions", region_name=REGION)
        asl = {"StartAt": "J", "States": {"J": {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync",
               "Parameters": {"JobName": "probe-job", "JobQueue": queue, "JobDefinition": definition}, "End": True}}}
        arn = sfn.create_state_machine(name="m", definition=json.dumps(asl), roleArn=ROLE)["stateMachineArn"]
        ex = sfn.start_execution(stateMachineArn=arn, name="e")["executionArn"]
        for _ in range(40):
            described = sfn.describe_execution(executionArn=ex)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.25)
        return {"status": described["status"], "error": described.get("error"), "cause": described.get("cause", "")[:300]}


@probe
def batch_job_without_docker() -> object:
    """With the default Batch backend and no Docker engine, a job that would exit 0 FAILS."""
    with mock_aws():
        batch, iam = boto3.client("batch", region_name=REGION), boto3.client("iam", region_name=REGION)
        queue, definition = _batch_queue_and_definition(batch, iam, ["true"])
        job = batch.submit_job(jobName="probe-job", jobQueue=queue, jobDefinition=definition)["jobId"]
        return {"status": _wait_job(batch, job)}


@probe
def array_parent_after_child_failure() -> object:
    """An array parent whose children all FAILED does not become FAILED."""
    with mock_aws():
        batch, iam = boto3.client("batch", region_name=REGION), boto3.client("iam", region_name=REGION)
        queue, definition = _batch_queue_and_definition(batch, iam, ["false"])
        job = batch.submit_job(jobName="probe-job", jobQueue=queue, jobDefinition=definition, arrayProperties={"size": 2})["jobId"]
        children = [_wait_job(batch, f"{job}:{i}") for i in range(2)]
        return {"children": children, "parent": batch.describe_jobs(jobs=[job])["jobs"][0]["status"]}


@probe
def batch_share_identifier() -> object:
    """SubmitJob's shareIdentifier is accepted and dropped: DescribeJobs shows none."""
    with mock_aws():
        batch, iam = boto3.client("batch", region_name=REGION), boto3.client("iam", region_name=REGION)
        queue, definition = _batch_queue_and_definition(batch, iam, ["true"])
        job = batch.submit_job(jobName="probe-job", jobQueue=queue, jobDefinition=definition, shareIdentifier="desk1",
                               schedulingPriorityOverride=5)["jobId"]
        described = batch.describe_jobs(jobs=[job])["jobs"][0]
        return {"share": described.get("shareIdentifier"), "priority": described.get("schedulingPriority")}


@probe
def sfn_batch_submit_parameters() -> object:
    """Step Functions' Batch integration keeps only the submitJob parameters it lists: no
    ShareIdentifier or SchedulingPriorityOverride."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch

    return sorted(state_task_service_batch._SUPPORTED_API_PARAM_BINDINGS["submitjob"])


@probe
def state_machine_definition_s3_location() -> object:
    """DefinitionS3Location and DefinitionSubstitutions are ignored: the definition is empty."""
    template = {"Resources": {"M": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "StateMachineName": "m", "RoleArn": ROLE, "DefinitionS3Location": "statemachine/run.asl.json",
        "DefinitionSubstitutions": {"X": "y"}}}}}
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(StackName="s", TemplateBody=json.dumps(template))
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
        return {"definition": sfn.describe_state_machine(stateMachineArn=arn)["definition"]}


@probe
def fn_cidr() -> object:
    """CloudFormation's Fn::Cidr is not implemented."""
    template = {"Resources": {"V": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
                "S": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "V"},
                      "CidrBlock": {"Fn::Select": [0, {"Fn::Cidr": ["10.1.0.0/16", 2, 12]}]}}}}}
    with mock_aws():
        try:
            boto3.client("cloudformation", region_name=REGION).create_stack(StackName="s", TemplateBody=json.dumps(template))
        except Exception as exc:
            return {"created": False, "error": type(exc).__name__}
        return {"created": True}


@probe
def rule_with_state_machine_target() -> object:
    """PutEvents matching a rule with a Step Functions target fails in the emulator."""
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="m", definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}), roleArn=ROLE)["stateMachineArn"]
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["x"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "sm", "Arn": arn, "RoleArn": ROLE}])
        try:
            events.put_events(Entries=[{"Source": "x", "DetailType": "d", "Detail": "{}"}])
        except Exception as exc:
            return {"put_events": "raised", "error": type(exc).__name__}
        return {"put_events": "ok", "executions": len(sfn.list_executions(stateMachineArn=arn)["executions"])}


@probe
def cloudformation_state_machine_with_execution_on() -> object:
    """With execution on, a state machine made by CloudFormation is not visible to the API."""
    template = {"Resources": {"M": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "StateMachineName": "m", "RoleArn": ROLE,
        "DefinitionString": json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})}}}}
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("cloudformation", region_name=REGION).create_stack(StackName="s", TemplateBody=json.dumps(template))
        return {"listed": len(boto3.client("stepfunctions", region_name=REGION).list_state_machines()["stateMachines"])}


@probe
def batch_compute_environment_without_service_role() -> object:
    """CloudFormation fails on a compute environment that leaves ServiceRole to AWS's default."""
    template = {"Resources": {
        "V": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "S": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "V"}, "CidrBlock": "10.0.0.0/20"}},
        "G": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "g", "VpcId": {"Ref": "V"}}},
        "E": {"Type": "AWS::Batch::ComputeEnvironment", "Properties": {"Type": "MANAGED", "ComputeResources": {
            "Type": "FARGATE_SPOT", "MaxvCpus": 4, "Subnets": [{"Ref": "S"}], "SecurityGroupIds": [{"Ref": "G"}]}}}}}
    with mock_aws():
        try:
            boto3.client("cloudformation", region_name=REGION).create_stack(StackName="s", TemplateBody=json.dumps(template))
        except Exception as exc:
            return {"created": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        return {"created": bool(boto3.client("batch", region_name=REGION).describe_compute_environments()["computeEnvironments"])}


@probe
def cloudformation_skipped_resource_types() -> object:
    """Resource types CloudFormation accepts but does not create (the stack still completes)."""
    api = {"Ref": "Api"}
    template = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {
            "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}}},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": {
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "*"}]}}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "a"}},
        "Model": {"Type": "AWS::ApiGateway::Model", "Properties": {"RestApiId": api, "ContentType": "application/json", "Schema": {"type": "object"}}},
        "Validator": {"Type": "AWS::ApiGateway::RequestValidator", "Properties": {"RestApiId": api, "ValidateRequestBody": True}},
        "Method": {"Type": "AWS::ApiGateway::Method", "Properties": {"RestApiId": api, "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                   "HttpMethod": "GET", "AuthorizationType": "NONE", "Integration": {"Type": "MOCK", "IntegrationHttpMethod": "GET", "Uri": ""}}},
        "Deployment": {"Type": "AWS::ApiGateway::Deployment", "DependsOn": "Method", "Properties": {"RestApiId": api}},
        "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": api, "DeploymentId": {"Ref": "Deployment"}, "StageName": "v1"}},
        "Account": {"Type": "AWS::ApiGateway::Account", "Properties": {"CloudWatchRoleArn": ROLE}},
        "Database": {"Type": "AWS::Glue::Database", "Properties": {"CatalogId": "123456789012", "DatabaseInput": {"Name": "d"}}},
        "Table": {"Type": "AWS::Glue::Table", "Properties": {"CatalogId": "123456789012", "DatabaseName": {"Ref": "Database"},
                  "TableInput": {"Name": "t", "TableType": "EXTERNAL_TABLE"}}},
        "SchedulingPolicy": {"Type": "AWS::Batch::SchedulingPolicy", "Properties": {"Name": "p", "FairsharePolicy": {
                             "ShareDecaySeconds": 600, "ComputeReservation": 25, "ShareDistribution": [{"ShareIdentifier": "a", "WeightFactor": 0.5}]}}},
    }}
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="s", TemplateBody=json.dumps(template))
        status = cfn.describe_stacks(StackName="s")["Stacks"][0]["StackStatus"]
        created = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName="s")["StackResourceSummaries"]}
        skipped = sorted({template["Resources"][k]["Type"] for k in set(template["Resources"]) - created})
        return {"status": status, "skipped": skipped}


@probe
def sfn_mock_config_test_case() -> object:
    """A MockConfigFile named by SFN_MOCK_CONFIG (as Step Functions Local reads it) is not
    loaded: starting an execution on '<arn>#<TestCase>' fails."""
    import os
    import tempfile

    config = {"StateMachines": {"m": {"TestCases": {"Happy": {"T": "ok"}}}},
              "MockedResponses": {"ok": {"0": {"Return": {"mocked": True}}}}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    os.environ["SFN_MOCK_CONFIG"] = f.name
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        asl = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets", "End": True}}}
        arn = sfn.create_state_machine(name="m", definition=json.dumps(asl), roleArn=ROLE)["stateMachineArn"]
        try:
            sfn.start_execution(stateMachineArn=arn + "#Happy", name="e")
        except Exception as exc:
            return {"started": False, "error": type(exc).__name__}
        return {"started": True}


DISTRIBUTED_MAP_WITH_A_FAILING_ITEM = {
    "StartAt": "M",
    "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "C", "States": {
                              "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "P"},
                              "F": {"Type": "Fail", "Error": "Boom", "Cause": "item 2"},
                              "P": {"Type": "Pass", "End": True}}},
        "End": True}},
}


@probe
def distributed_map_with_a_failed_item() -> object:
    """A Distributed Map whose item failed (tolerating no failure) still succeeds."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="m", definition=json.dumps(DISTRIBUTED_MAP_WITH_A_FAILING_ITEM), roleArn=ROLE)["stateMachineArn"]
        ex = sfn.start_execution(stateMachineArn=arn, name="e", input=json.dumps({"items": [1, 2, 3]}))["executionArn"]
        for _ in range(80):
            described = sfn.describe_execution(executionArn=ex)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
        return {"status": described["status"], "error": described.get("error")}


@probe
def execution_status_change_events() -> object:
    """A standard execution starts and ends, and nothing reaches a default-bus rule on source
    aws.states (the control: an event put by hand with that source does)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
        url = sqs.create_queue(QueueName="status")["QueueUrl"]
        queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="status", EventPattern=json.dumps({"source": ["aws.states"]}))
        events.put_targets(Rule="status", Targets=[{"Id": "q", "Arn": queue}])
        sfn = boto3.client("stepfunctions", region_name=REGION)
        asl = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        arn = sfn.create_state_machine(name="m", definition=json.dumps(asl), roleArn=ROLE)["stateMachineArn"]
        ex = sfn.start_execution(stateMachineArn=arn, name="e", input="{}")["executionArn"]
        for _ in range(40):
            described = sfn.describe_execution(executionArn=ex)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
        from_execution = len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []))
        events.put_events(Entries=[{"Source": "aws.states", "DetailType": "Step Functions Execution Status Change", "Detail": "{}"}])
        by_hand = len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []))
        return {"status": described["status"], "from_execution": from_execution, "by_hand": by_hand}


def _invoke_a_zip_function(config: dict | None) -> object:
    import io
    import zipfile

    with mock_aws(config=config) if config else mock_aws():
        role = boto3.client("iam", region_name=REGION).create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return {'answered': 42}\n")
        lam = boto3.client("lambda", region_name=REGION)
        lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": code.getvalue()})
        response = lam.invoke(FunctionName="f", Payload=json.dumps({"asked": 1}).encode())
        return {"function_error": response.get("FunctionError"), "payload": response["Payload"].read().decode()}


@probe
def lambda_invoke_without_docker() -> object:
    """No Docker engine: the invoke is a "Handled" function error; the handler never runs."""
    return _invoke_a_zip_function(None)


@probe
def lambda_invoke_with_docker_off() -> object:
    """``use_docker`` off: the payload comes back as it went in; the handler never runs."""
    return _invoke_a_zip_function({"lambda": {"use_docker": False}})


def main() -> None:
    results = {}
    for name, fn in PROBES.items():
        try:
            results[name] = fn()
        except Exception:
            results[name] = {"probe_error": traceback.format_exc(limit=3)}
    with open(sys.argv[1], "w") as out:  # moto prints to stdout itself: the results go to a file
        json.dump(results, out)


if __name__ == "__main__":
    main()
