"""Security gates on infra/template.yaml:

- checkov fails no check; each suppression sits on its resource with a reason, and names a
  check checkov really runs there. Checkov's severities come from an online service this
  machine cannot reach, so every failed check counts, whatever its severity.
- every cfn-lint suppression carries its reason (test_template_lint.py runs cfn-lint itself);
- least privilege, by walking every policy document in the template: no Allow grants `*` or a
  whole service (`s3:*`), `Resource: "*"` only for actions AWS cannot scope to a resource,
  and no managed policies (everything granted is written here, where this test reads it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.template_data import TEMPLATE_PATH, resources

# Actions with no resource-level permissions (AWS Service Authorization Reference): their
# only valid Resource is "*".
UNSCOPABLE_ACTIONS = {
    "ecr:GetAuthorizationToken",  # the registry login
    "batch:DescribeJobs",  # Step Functions' .sync polling of Batch jobs
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions' vended log delivery to CloudWatch Logs
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


# ---------------------------------------------------------------- checkov
@pytest.fixture(scope="module")
def checkov() -> dict[str, Any]:
    exe = Path(sys.executable).with_name("checkov")
    result = subprocess.run(
        [str(exe), "--file", str(TEMPLATE_PATH), "--framework", "cloudformation", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    return json.loads(result.stdout)


def test_checkov_fails_no_check(checkov: dict[str, Any]) -> None:
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checkov["results"]["failed_checks"]]
    assert failed == []
    assert checkov["summary"]["passed"] > 100  # it really scanned the template


def test_every_checkov_suppression_has_a_reason_and_a_check_to_suppress(checkov: dict[str, Any]) -> None:
    skipped = {(c["check_id"], c["resource"].split(".", 1)[1]) for c in checkov["results"]["skipped_checks"]}
    declared = [
        (skip["id"], name, skip.get("comment", ""))
        for name, resource in resources().items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert declared, "the template is expected to explain its checkov suppressions"
    for check_id, name, comment in declared:
        assert len(comment.split()) >= 5, f"{name}: {check_id} is suppressed without a reason"
        assert (check_id, name) in skipped, f"{name}: {check_id} suppresses a check checkov does not run there"


# ---------------------------------------------------------------- cfn-lint suppressions
def test_every_cfn_lint_suppression_says_why() -> None:
    lines = TEMPLATE_PATH.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "ignore_checks:":
            indent = len(line) - len(line.lstrip()) + 2
            block = []
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) < indent:
                    break
                block.append(following.strip())
            rules = [b for b in block if re.fullmatch(r"- [EWI]\d{4}", b)]
            reasons = [b for b in block if b.startswith("#")]
            assert rules and reasons, f"line {number + 1}: cfn-lint rules {rules} are ignored without a comment saying why"


# ---------------------------------------------------------------- least privilege
def statements() -> list[tuple[str, dict[str, Any]]]:
    """Every policy statement in the template, with where it is."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "Statement" in node and isinstance(node["Statement"], list):
                found.extend((where, s) for s in node["Statement"])
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    for name, resource in resources().items():
        walk(resource.get("Properties", {}), name)
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_walk_finds_the_policies() -> None:
    places = {where.split(".")[0] for where, _ in statements()}
    # roles, bucket and queue policies, endpoint policies
    assert {"StateMachineRole", "WorkerJobRole", "BucketTlsOnly", "TrackerQueuePolicy", "S3Endpoint"} <= places
    assert len(statements()) > 40


def test_no_allow_grants_every_action_or_a_whole_service() -> None:
    broad = [
        (where, action)
        for where, s in statements()
        if s["Effect"] == "Allow"
        for action in as_list(s.get("Action", []))
        if action == "*" or (isinstance(action, str) and action.endswith(":*"))
    ]
    assert broad == []
    assert all("NotAction" not in s and "NotResource" not in s for _, s in statements() if s["Effect"] == "Allow")


def test_resource_star_only_where_aws_allows_no_scoping() -> None:
    unscoped = [
        (where, sorted(set(as_list(s["Action"])) - UNSCOPABLE_ACTIONS))
        for where, s in statements()
        if s["Effect"] == "Allow" and "*" in as_list(s.get("Resource", [])) and set(as_list(s["Action"])) - UNSCOPABLE_ACTIONS
    ]
    assert unscoped == []


def test_resource_star_really_occurs_only_for_the_unscopable_actions() -> None:
    """The allowance is used, and only by these actions (so the list above cannot hide one)."""
    star_actions = {
        a for _, s in statements() if s["Effect"] == "Allow" and "*" in as_list(s.get("Resource", [])) for a in as_list(s["Action"])
    }
    assert star_actions and star_actions <= UNSCOPABLE_ACTIONS


def test_public_principals_only_deny_or_sit_in_endpoint_policies() -> None:
    for where, s in statements():
        if s.get("Principal") == "*" and s["Effect"] == "Allow":
            assert where.split(".")[0] in {"S3Endpoint", "DynamoDbEndpoint"}, where
            assert "*" not in as_list(s["Resource"])


def test_no_managed_policies() -> None:
    assert {n: r["Properties"]["ManagedPolicyArns"] for n, r in resources().items() if "ManagedPolicyArns" in r.get("Properties", {})} == {}
    assert not [n for n, r in resources().items() if r["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::AccessKey")]


def test_each_batch_job_has_its_own_role() -> None:
    roles = [r["Properties"]["ContainerProperties"]["JobRoleArn"]["Fn::GetAtt"][0] for r in resources().values() if r["Type"] == "AWS::Batch::JobDefinition"]
    assert len(roles) == len(set(roles)) == 3
