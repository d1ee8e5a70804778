"""What the deployment must hold (issue C), read from infra/template.yaml and the ASL: the
network and its sizing rule, Batch on Spot first with retry strategies that retry reclaims and
exit on application errors, the state machine's retries and failure path, the event wiring,
the functions, the API, the data stores, and the settings every service reads."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from scengrid_cli.local.batch_runner import Attempt, retry_decision
from scengrid_cli.local.moto_gaps import evaluate_cidr_functions
from scengrid.events import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE, RunFailed
from scengrid.settings import Settings
from scengrid.work import MAX_ARRAY_CHILDREN
from tests.template_data import TEMPLATE_PATH, asl, of_type, resources, template

USABLE_PER_SUBNET = lambda prefix: 2 ** (32 - prefix) - 5  # noqa: E731 - AWS keeps 5 addresses per subnet


def props(name: str) -> dict[str, Any]:
    return resources()[name]["Properties"]


def env_of_job(name: str) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in props(name)["ContainerProperties"]["Environment"]}


# ---------------------------------------------------------------- parameters and network
def test_parameters_for_environment_capacity_and_network() -> None:
    params = template()["Parameters"]
    assert {"EnvName", "MaxVcpus", "VpcCidr", "ImageTag"} <= set(params)
    assert re.fullmatch(params["VpcCidr"]["AllowedPattern"], params["VpcCidr"]["Default"])


def subnets(vpc_cidr: str) -> dict[str, tuple[ipaddress.IPv4Network, int]]:
    """Each subnet's CIDR (Fn::Cidr evaluated for this VPC) and the index of its AZ."""
    evaluated = evaluate_cidr_functions(template(), {"VpcCidr": vpc_cidr})["Resources"]
    out = {}
    for name, resource in evaluated.items():
        if resource["Type"] == "AWS::EC2::Subnet":
            index, block = resource["Properties"]["CidrBlock"]["Fn::Select"]
            az = resource["Properties"]["AvailabilityZone"]["Fn::Select"][0]
            out[name] = (ipaddress.ip_network(block[index]), az)
    return out


@pytest.mark.parametrize("vpc_cidr", ["10.42.0.0/16", "172.20.0.0/17", "10.9.64.0/18"])
def test_three_task_subnets_of_a_20_in_three_azs_inside_the_vpc(vpc_cidr: str) -> None:
    found = subnets(vpc_cidr)
    vpc = ipaddress.ip_network(vpc_cidr)
    tasks = {n: v for n, v in found.items() if not n.startswith("Public")}
    assert len(tasks) == 3 and {az for _, az in tasks.values()} == {0, 1, 2}
    assert all(net.prefixlen <= 20 for net, _ in tasks.values())
    nets = [net for net, _ in found.values()]
    assert all(net.subnet_of(vpc) for net in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert {props(n)["VpcId"]["Ref"] for n in found} == {"Vpc"}


def test_the_sizing_rule_sits_beside_the_vpc_and_the_defaults_keep_it() -> None:
    text = TEMPLATE_PATH.read_text()
    rule_at, vpc_at = text.index("# Sizing rule:"), text.index("  Vpc:\n")
    assert 0 < vpc_at - rule_at < 1200  # the comment block right above the VPC
    params = template()["Parameters"]
    capacity = 3 * USABLE_PER_SUBNET(20)
    assert capacity == 12_273 and "12,273" in text[rule_at:vpc_at]
    concurrent = 2 * params["MaxVcpus"]["Default"] / int(params["WorkerVcpus"]["Default"])
    assert concurrent <= capacity
    assert MAX_ARRAY_CHILDREN <= capacity  # one full array job fits


def test_tasks_run_in_the_private_subnets_without_public_addresses() -> None:
    for name in of_type("AWS::Batch::ComputeEnvironment"):
        resources_ = props(name)["ComputeResources"]
        assert sorted(s["Ref"] for s in resources_["Subnets"]) == ["SubnetA", "SubnetB", "SubnetC"]
    for name in of_type("AWS::Batch::JobDefinition"):
        assert props(name)["ContainerProperties"]["NetworkConfiguration"]["AssignPublicIp"] == "DISABLED"
    routes = {props(n)["RouteTableId"]["Ref"]: props(n) for n in of_type("AWS::EC2::Route")}
    for table in ("RouteTableA", "RouteTableB", "RouteTableC"):
        assert "NatGatewayId" in routes[table]  # out through NAT, not an internet gateway
    assert props("TaskSecurityGroup").get("SecurityGroupIngress") is None


@pytest.mark.parametrize("service", ["s3", "dynamodb"])
def test_gateway_endpoints_for_s3_and_dynamodb_on_the_task_route_tables(service: str) -> None:
    endpoints = [p["Properties"] for p in of_type("AWS::EC2::VPCEndpoint").values() if p["Properties"]["ServiceName"]["Fn::Sub"].endswith(f".{service}")]
    assert len(endpoints) == 1
    assert endpoints[0]["VpcEndpointType"] == "Gateway"
    assert sorted(r["Ref"] for r in endpoints[0]["RouteTableIds"]) == ["RouteTableA", "RouteTableB", "RouteTableC"]


# ---------------------------------------------------------------- Batch
def test_spot_first_then_on_demand() -> None:
    kinds = {n: props(n)["ComputeResources"]["Type"] for n in of_type("AWS::Batch::ComputeEnvironment")}
    assert sorted(kinds.values()) == ["FARGATE", "FARGATE_SPOT"]
    order = sorted(props("JobQueue")["ComputeEnvironmentOrder"], key=lambda o: o["Order"])
    assert [kinds[o["ComputeEnvironment"]["Ref"]] for o in order] == ["FARGATE_SPOT", "FARGATE"]
    assert all(props(n)["ComputeResources"]["MaxvCpus"] == {"Ref": "MaxVcpus"} for n in kinds)


JOBS = ["SharderJobDefinition", "WorkerJobDefinition", "CollatorJobDefinition"]
# What a failed attempt looks like on AWS, and what the retry strategy must decide.
ATTEMPTS = [
    (Attempt(137, "Host EC2 (instance i-0abc123) terminated."), "RETRY"),
    (Attempt(137, "Your Spot Task was interrupted."), "RETRY"),
    (Attempt(143), "RETRY"),  # SIGTERM obeyed: the worker finishes its shard, exits 143
    (Attempt(1), "EXIT"),  # the application failed
    (Attempt(2), "EXIT"),  # bad input
]
# A task that died: the sharder or the collator would fail the same way again; a worker's next
# attempt takes the next delivery, and a shard that kills every worker ends in the work queue's
# dead-letter queue after maxReceiveCount deliveries (the tracker marks it FAILED from there).
DIED = [Attempt(137), Attempt(139), Attempt(3)]  # out of memory or killed; a segfault; a model's os._exit(3)


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize(("attempt", "decision"), ATTEMPTS)
def test_retry_strategy_retries_reclaims_and_exits_on_application_errors(job: str, attempt: Attempt, decision: str) -> None:
    strategy = props(job)["RetryStrategy"]
    assert strategy["Attempts"] >= 3
    assert retry_decision(strategy, attempt) == decision


@pytest.mark.parametrize("attempt", DIED)
def test_a_worker_task_that_died_is_retried_and_a_sharder_or_collator_is_not(attempt: Attempt) -> None:
    assert retry_decision(props("WorkerJobDefinition")["RetryStrategy"], attempt) == "RETRY"
    for job in ("SharderJobDefinition", "CollatorJobDefinition"):
        assert retry_decision(props(job)["RetryStrategy"], attempt) == "EXIT"


@pytest.mark.parametrize("job", JOBS)
def test_retry_conditions_are_patterns_aws_accepts(job: str) -> None:
    rules = props(job)["RetryStrategy"]["EvaluateOnExit"]
    assert 1 <= len(rules) <= 5
    for rule in rules:
        assert rule["Action"] in ("RETRY", "EXIT")
        for key in ("OnStatusReason", "OnReason"):
            if key in rule:  # letters, digits, . : and spaces; at most one *, at the end
                assert re.fullmatch(r"[A-Za-z0-9.: \t]*\*?", rule[key]) and len(rule[key]) <= 512, rule
        if "OnExitCode" in rule:
            assert re.fullmatch(r"[0-9]*\*?", rule["OnExitCode"]), rule


@pytest.mark.parametrize("job", JOBS)
def test_job_definitions_size_their_tasks_and_log_to_the_stack(job: str) -> None:
    container = props(job)["ContainerProperties"]
    sizes = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
    assert set(sizes) == {"VCPU", "MEMORY"}
    assert props(job)["PlatformCapabilities"] == ["FARGATE"]
    assert props(job)["Timeout"]["AttemptDurationSeconds"] > 0
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "JobsLogGroup"}


def test_an_ecr_repository_per_image() -> None:
    repos = {props(n)["RepositoryName"]["Fn::Sub"].split("/")[-1]: props(n) for n in of_type("AWS::ECR::Repository")}
    assert set(repos) == {"sharder", "worker", "collator", "tracker", "inference"}
    for repo in repos.values():
        assert repo["ImageScanningConfiguration"]["ScanOnPush"] and repo["ImageTagMutability"] == "IMMUTABLE"


# ---------------------------------------------------------------- the state machine
BATCH_TASKS = ["Shard", "Collate", "RunWorkerArray", "RunWorker"]


def asl_states() -> dict[str, Any]:
    states = dict(asl()["States"])
    states.update(states["Evaluate"]["ItemProcessor"]["States"])
    return states


@pytest.mark.parametrize("state", BATCH_TASKS)
def test_every_batch_task_retries_throttling(state: str) -> None:
    task = asl_states()[state]
    assert task["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
    assert {"Batch.TooManyRequestsException", "Batch.AWSBatchException"} <= retried
    assert "States.ALL" not in retried and "States.TaskFailed" not in retried  # a failed job is not retried here


@pytest.mark.parametrize("state", ["Shard", "Evaluate", "Collate"])
def test_every_stage_catches_into_run_failed(state: str) -> None:
    assert asl()["States"][state]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ReportRunFailed"}]


def test_run_failed_goes_on_the_bus_then_the_execution_fails() -> None:
    report = asl()["States"]["ReportRunFailed"]
    [entry] = report["Parameters"]["Entries"]
    assert (entry["DetailType"], entry["EventBusName"]) == ("run-failed", "${EventBusName}")
    assert entry["Source"].startswith("scengrid.")
    assert asl()["States"][report["Next"]]["Type"] == "Fail"


def test_the_run_failed_the_state_machine_puts_has_the_events_fields() -> None:
    """The state machine is the only producer of run-failed: its detail is the event's contract
    (every required field, nothing the model forbids; the tracker names the shards itself)."""
    [entry] = asl()["States"]["ReportRunFailed"]["Parameters"]["Entries"]
    fields = {name.removesuffix(".$") for name in entry["Detail"]}
    required = {name for name, field in RunFailed.model_fields.items() if field.is_required()}
    assert required <= fields <= set(RunFailed.model_fields)
    assert fields == {"version", "run_id", "round", "reason"}


def test_the_map_runs_worker_groups_as_array_jobs_of_at_most_10000() -> None:
    evaluate = asl()["States"]["Evaluate"]
    assert evaluate["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert evaluate["ItemReader"]["Parameters"]["Key.$"] == "States.Format('runs/{}/worker-groups.json', $.detail.run_id)"
    array = asl_states()["RunWorkerArray"]["Parameters"]["ArrayProperties"]
    assert array == {"Size.$": "$.size"}  # each item is a WorkerGroup, whose size is at most 10,000


def test_definition_substitutions_match_the_placeholders() -> None:
    machine = props("RunStateMachine")
    placeholders = set(re.findall(r"\$\{(\w+)\}", (TEMPLATE_PATH.parent / machine["DefinitionS3Location"]).read_text()))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["TracingConfiguration"]["Enabled"] is True
    assert machine["LoggingConfiguration"]["Level"] in ("ERROR", "ALL")


# ---------------------------------------------------------------- events and the tracker
def test_run_requested_starts_the_state_machine() -> None:
    rule = props("RunRequestedRule")
    assert rule["EventPattern"]["detail-type"] == ["run-requested"]
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": "RunStateMachine"} and target["RoleArn"] == {"Fn::GetAtt": ["EventsStartRunRole", "Arn"]}


def test_every_scengrid_event_reaches_the_tracker_queue_which_has_a_dlq() -> None:
    rule = props("AllEventsRule")
    assert rule["EventPattern"] == {"source": [{"prefix": "scengrid."}]}
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": ["TrackerQueue", "Arn"]}]
    assert props("TrackerQueue")["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TrackerDeadLetterQueue", "Arn"]}
    [allow] = props("TrackerQueuePolicy")["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == {"Fn::GetAtt": ["TrackerQueue", "Arn"]}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {"Fn::GetAtt": ["AllEventsRule", "Arn"]},
        {"Fn::GetAtt": ["ExecutionStatusRule", "Arn"]},
    ]


def test_status_changes_of_the_run_executions_reach_the_tracker_queue() -> None:
    """Step Functions puts them on the default bus; the tracker records each round's execution
    ARN from them (EventBridge names the executions it starts), and cancel stops it by that."""
    rule = props("ExecutionStatusRule")
    assert "EventBusName" not in rule  # the account's default bus, where AWS puts its own events
    assert rule["EventPattern"] == {
        "source": [EXECUTION_STATUS_SOURCE],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {"stateMachineArn": [{"Ref": "RunStateMachine"}]},
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["TrackerQueue", "Arn"]} and "RoleArn" not in target
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    [undelivered] = props("EventsDeadLetterQueuePolicy")["PolicyDocument"]["Statement"]
    assert {"Fn::GetAtt": ["ExecutionStatusRule", "Arn"]} in undelivered["Condition"]["ArnEquals"]["aws:SourceArn"]


def test_tracker_lambda_reports_partial_batch_failures() -> None:
    function = props("TrackerFunction")
    assert function["ImageConfig"]["Command"] == ["services.tracker.handler.lambda_handler"]
    assert function["TracingConfig"]["Mode"] == "Active"
    mapping = props("TrackerEventSource")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["TrackerQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] <= 10
    # Lambda's SQS event source wants the queue's visibility timeout at 6x the function's timeout
    assert props("TrackerQueue")["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_inference_is_a_container_image_lambda_behind_post_predict() -> None:
    function = props("InferenceFunction")
    assert function["PackageType"] == "Image" and function["TracingConfig"]["Mode"] == "Active"
    method = props("PredictPostMethod")
    assert method["AuthorizationType"] == "AWS_IAM" and method["Integration"]["Type"] == "AWS_PROXY"
    assert "${InferenceFunction.Arn}" in method["Integration"]["Uri"]["Fn::Sub"]


def test_the_api_stage_traces_logs_and_throttles() -> None:
    stage = props("ApiStage")
    assert stage["TracingEnabled"] is True and stage["AccessLogSetting"]["DestinationArn"]
    [settings] = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["MetricsEnabled"]
    assert all(props(m)["AuthorizationType"] == "AWS_IAM" for m in of_type("AWS::ApiGateway::Method"))


# ---------------------------------------------------------------- data
@pytest.mark.parametrize("table", ["RunsTable", "ShardsTable"])
def test_tables_have_point_in_time_recovery(table: str) -> None:
    assert props(table)["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props(table)["SSESpecification"]["SSEEnabled"] is True
    assert resources()[table]["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize(("bucket", "policy"), [("Bucket", "BucketTlsOnly"), ("AccessLogBucket", "AccessLogBucketPolicy")])
def test_buckets_are_encrypted_private_tls_only_and_expire_data(bucket: str, policy: str) -> None:
    p = props(bucket)
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert set(p["PublicAccessBlockConfiguration"].values()) == {True} and len(p["PublicAccessBlockConfiguration"]) == 4
    assert any("ExpirationInDays" in r or "NoncurrentVersionExpiration" in r for r in p["LifecycleConfiguration"]["Rules"])
    deny = [s for s in props(policy)["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert props(policy)["Bucket"] == {"Ref": bucket}


def test_the_runs_bucket_logs_access_and_expires_runs() -> None:
    assert props("Bucket")["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    expire = [r for r in props("Bucket")["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "runs/"]
    assert expire and expire[0]["ExpirationInDays"] == {"Ref": "RunRetentionDays"}


# ---------------------------------------------------------------- what each service reads
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# The settings each entrypoint requires (``Settings.require`` in services/<name>/main.py), and
# the tables the code reads beyond them (the worker checks for cancellation, the sharder
# reads the shards of earlier rounds, the tracker writes both tables).
NEEDS = {
    "SharderJobDefinition": {"bucket", "event_bus", "work_queue_prefix", "work_dead_letter_queue_url", "shards_table"},
    "WorkerJobDefinition": {"bucket", "event_bus", "runs_table"},  # its run's queue comes with the Map item
    "CollatorJobDefinition": {"bucket", "event_bus", "runs_table", "shards_table"},
}


@pytest.mark.parametrize("job", JOBS)
def test_job_environment_gives_the_settings_the_service_needs(job: str) -> None:
    env = env_of_job(job)
    assert POWERTOOLS <= set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] == f"scengrid-{job.removesuffix('JobDefinition').lower()}"
    given = {k.removeprefix("SCENGRID_").lower() for k in env if k.startswith("SCENGRID_")}
    assert given <= set(Settings.model_fields)
    assert NEEDS[job] <= given


@pytest.mark.parametrize(("function", "service", "needs"), [
    ("TrackerFunction", "scengrid-tracker", {"runs_table", "shards_table", "work_queue_prefix"}),
    ("InferenceFunction", "scengrid-inference", {"bucket"}),
])
def test_function_environment_gives_powertools_and_settings(function: str, service: str, needs: set[str]) -> None:
    env = props(function)["Environment"]["Variables"]
    assert POWERTOOLS <= set(env) and env["POWERTOOLS_SERVICE_NAME"] == service
    given = {k.removeprefix("SCENGRID_").lower() for k in env if k.startswith("SCENGRID_")}
    assert needs <= given <= set(Settings.model_fields)


def test_outputs_the_local_runtime_maps_are_kept() -> None:
    outputs = set(template()["Outputs"])
    assert {"BucketName", "RunsTableName", "ShardsTableName", "EventBusName", "WorkQueuePrefix", "TrackerQueueUrl", "StateMachineArn"} <= outputs


def test_the_deploy_doc_says_why_each_resource_is_there() -> None:
    doc = (TEMPLATE_PATH.parents[1] / "docs" / "deploy.md").read_text()
    section = doc.split("## Every resource, and why it is there")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert named == set(resources())
    assert all(len(row.split("|")[3].split()) >= 3 for row in rows if row.split("|")[3].strip())


def test_libyaml_reads_the_template_as_the_pure_python_loader_does() -> None:
    """The stack reads the template with libyaml's parser, five times faster than PyYAML's
    own; both must give the same data, tags included."""
    import yaml

    from scengrid_cli.local.cfn import load_template

    fast = load_template(TEMPLATE_PATH)
    assert yaml.__with_libyaml__, "PyYAML without libyaml: the stack start reads the template in pure Python"
    assert fast == load_template(TEMPLATE_PATH, pure_python=True)
    assert fast["Resources"]["ApiFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}
