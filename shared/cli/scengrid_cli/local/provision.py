"""Provision the stack from infra/template.yaml into the emulator, then check that every
resource the code needs really exists (the emulator drops unsupported things silently)."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

from scengrid.aws import client
from scengrid_cli.local.cfn import load_template
from scengrid_cli.local.moto_gaps import (
    UNMODELLED_RESOURCE_TYPES,
    evaluate_cidr_functions,
    inline_state_machine_definition,
    mirror_state_machines,
    skipped_resources,
    use_batch_service_linked_role,
)
from scengrid.settings import Settings
from scengrid_cli.local.fair_share import weights_of_policy

INFRA_DIR = Path(__file__).resolve().parents[4] / "infra"
TEMPLATE = INFRA_DIR / "template.yaml"

_OUTPUT_TO_SETTING = {
    "BucketName": "bucket",
    "RunsTableName": "runs_table",
    "ShardsTableName": "shards_table",
    "IdempotencyTableName": "idempotency_table",
    "AdmissionTableName": "admission_table",
    "EventBusName": "event_bus",
    "WorkQueuePrefix": "work_queue_prefix",
    "TrackerQueueUrl": "tracker_queue_url",
    "WorkDeadLetterQueueUrl": "work_dead_letter_queue_url",
    "StateMachineArn": "state_machine_arn",
}


class ProvisioningError(RuntimeError):
    pass


def share_weights() -> dict[str, float]:
    """The fair-share weights of the template's job queue, which the local job runner applies."""
    return weights_of_policy(load_template(TEMPLATE))


def provision(stack_name: str, endpoint_url: str, region: str, set_execution: Callable[[bool], None],
              parameters: dict[str, str] | None = None) -> Settings:
    """Create the stack (with the template ``parameters`` besides EnvName) and return the
    settings that point the services at it."""
    if not TEMPLATE.is_file():
        raise ProvisioningError(f"the template is not at {TEMPLATE}; run scengrid from a checkout of the repo")
    template = evaluate_cidr_functions(inline_state_machine_definition(load_template(TEMPLATE), INFRA_DIR))
    template = use_batch_service_linked_role(template, client("iam"))
    cfn = client("cloudformation")
    with warnings.catch_warnings():
        # The emulator skips the resource types it does not model; check_skipped_resources
        # accepts only those the local runtime does not use.
        warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
        logging.getLogger("moto").setLevel(logging.ERROR)
        _create(cfn, stack_name, template, parameters or {})
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise ProvisioningError(f"stack {stack_name} ended {stack['StackStatus']}: {stack.get('StackStatusReason')}")
        check_skipped_resources(template, cfn, stack_name)  # moto creates some resources lazily, here
    mirror_state_machines(client("stepfunctions"), set_execution)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = sorted(set(_OUTPUT_TO_SETTING) - set(outputs))
    if missing:
        raise ProvisioningError(f"stack outputs missing: {', '.join(missing)}")
    values = {setting: outputs[key] for key, setting in _OUTPUT_TO_SETTING.items()}
    settings = Settings(endpoint_url=endpoint_url, region=region, **values)
    verify_resources(settings)
    return settings


def _create(cfn, stack_name: str, template: dict, parameters: dict[str, str]) -> None:  # noqa: ANN001
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {**parameters, "EnvName": stack_name}.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )


def check_skipped_resources(template: dict, cfn, stack_name: str) -> None:  # noqa: ANN001
    """Fail when the emulator silently skipped a resource of a type the local runtime may need."""
    created = {
        r["LogicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        if r["LogicalResourceId"]
    }
    unexpected = {k: v for k, v in skipped_resources(template, created).items() if v not in UNMODELLED_RESOURCE_TYPES}
    if unexpected:
        listed = ", ".join(f"{name} ({kind})" for name, kind in sorted(unexpected.items()))
        raise ProvisioningError(f"the emulator did not create: {listed}")


def verify_resources(settings: Settings) -> None:
    """Look up, by name, everything the services use; raise naming whatever is missing."""
    problems: list[str] = []

    def check(what: str, call) -> None:  # noqa: ANN001
        try:
            call()
        except Exception as exc:  # any lookup failure is a missing resource
            problems.append(f"{what}: {exc}")

    check("bucket", lambda: client("s3").head_bucket(Bucket=settings.bucket))
    check("runs table", lambda: client("dynamodb").describe_table(TableName=settings.runs_table))
    check("shards table", lambda: client("dynamodb").describe_table(TableName=settings.shards_table))
    check("admission table", lambda: client("dynamodb").describe_table(TableName=settings.admission_table))
    check("event bus", lambda: client("events").describe_event_bus(Name=settings.event_bus))
    check("tracker_queue_url", lambda: _require_redrive(settings.tracker_queue_url))
    check("work_dead_letter_queue_url", lambda: client("sqs").get_queue_attributes(QueueUrl=settings.work_dead_letter_queue_url))
    check("state machine", lambda: _require_definition(settings.state_machine_arn))
    rules = client("events").list_rules(EventBusName=settings.event_bus)["Rules"]
    if len(rules) < 2:
        problems.append(f"event rules: expected the tracker and run-requested rules, found {[r['Name'] for r in rules]}")
    check("execution status rule", lambda: _require_execution_status_rule(settings))
    queues = client("batch").describe_job_queues()["jobQueues"]
    if not queues:
        problems.append("batch job queue: none")
    if problems:
        raise ProvisioningError("the provisioned stack is incomplete:\n  " + "\n  ".join(problems))


def _require_redrive(queue_url: str) -> None:
    attrs = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    if "RedrivePolicy" not in attrs:
        raise ProvisioningError("no dead-letter queue")


def _require_execution_status_rule(settings: Settings) -> None:
    """The default bus routes the state machine's status changes to the tracker's queue."""
    events = client("events")
    queue = client("sqs").get_queue_attributes(QueueUrl=settings.tracker_queue_url, AttributeNames=["QueueArn"])
    for rule in events.list_rules(EventBusName="default")["Rules"]:
        pattern = json.loads(rule.get("EventPattern") or "{}")
        if settings.state_machine_arn in json.dumps(pattern.get("detail", {})):
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            if queue["Attributes"]["QueueArn"] in {t["Arn"] for t in targets}:
                return
    raise ProvisioningError("no rule on the default bus sends the state machine's status changes to the tracker queue")


def _require_definition(arn: str) -> None:
    definition = client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"]
    states = json.loads(definition)["States"]
    if "${" in definition or not states:
        raise ProvisioningError("definition substitutions were not applied")
