"""One front door. The template's API Gateway methods are exactly the operations of the OpenAPI
document generated from the API's resolver (infra/openapi.json), each with IAM (SigV4) auth and
a Lambda proxy to the function that serves it: the API function (the tracker image, running
services/tracker/api.py) for every run route, the inference function for POST /predict. The
document itself is valid OpenAPI and says how to authenticate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from scengrid.settings import Settings
from services.tracker.openapi import SPEC_FILE, openapi_text
from tests.template_data import of_type, resources, template

PREDICT = ("/predict", "POST")


def spec() -> dict[str, Any]:
    return json.loads(SPEC_FILE.read_text())


def spec_operations() -> set[tuple[str, str]]:
    return {(path, verb.upper()) for path, operations in spec()["paths"].items() for verb in operations}


def resource_path(name: str) -> str:
    """The full path of an AWS::ApiGateway::Resource, walking its parents to the API's root."""
    props = resources()[name]["Properties"]
    parent = props["ParentId"]
    prefix = "" if parent == {"Fn::GetAtt": ["Api", "RootResourceId"]} else resource_path(parent["Ref"])
    return f"{prefix}/{props['PathPart']}"


def template_methods() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (resource_path(m["Properties"]["ResourceId"]["Ref"]), m["Properties"]["HttpMethod"]): m
        for m in of_type("AWS::ApiGateway::Method").values()
    }


def test_the_spec_is_the_resolvers_and_is_current() -> None:
    assert SPEC_FILE.read_text() == openapi_text(), "infra/openapi.json is stale: run `make schemas`"


def test_the_spec_is_valid_openapi() -> None:
    validate(spec())  # raises on an invalid document


def test_every_operation_is_signed_with_sigv4() -> None:
    document = spec()
    [scheme] = document["components"]["securitySchemes"].values()
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert document["security"] == [{name: []} for name in document["components"]["securitySchemes"]]
    for path, operations in document["paths"].items():
        for verb, operation in operations.items():
            assert "security" not in operation, f"{verb} {path} overrides the API's auth"
            assert "403" in operation["responses"], f"{verb} {path} does not document API Gateway's refusal"


def test_the_templates_methods_are_the_specs_operations() -> None:
    assert set(template_methods()) == spec_operations()


@pytest.mark.parametrize("operation", sorted(spec_operations()), ids=lambda o: f"{o[1]} {o[0]}")
def test_each_method_is_iam_authorised_and_proxied_to_its_function(operation: tuple[str, str]) -> None:
    props = template_methods()[operation]["Properties"]
    assert props["AuthorizationType"] == "AWS_IAM"
    integration = props["Integration"]
    assert (integration["Type"], integration["IntegrationHttpMethod"]) == ("AWS_PROXY", "POST")
    function = "InferenceFunction" if operation == PREDICT else "ApiFunction"
    assert f"${{{function}.Arn}}" in integration["Uri"]["Fn::Sub"]


def test_the_api_function_runs_the_resolver_from_the_tracker_image() -> None:
    props = resources()["ApiFunction"]["Properties"]
    assert props["PackageType"] == "Image"
    image = props["Code"]["ImageUri"]["Fn::Sub"]
    text, tag = image if isinstance(image, list) else (image, {})
    assert text.startswith("${TrackerRepository.RepositoryUri}:")
    assert tag in ({}, {"Tag": {"Fn::If": ["ModelImage", {"Ref": "ModelImageTag"}, {"Ref": "ImageTag"}]}})  # a model image's tag, else the release's
    [handler] = props["ImageConfig"]["Command"]
    assert handler == "services.tracker.api.lambda_handler"
    assert props["Timeout"] <= 29, "API Gateway gives an integration 29 s"
    env = props["Environment"]["Variables"]
    for setting in ("BUCKET", "RUNS_TABLE", "SHARDS_TABLE", "IDEMPOTENCY_TABLE", "ADMISSION_TABLE", "EVENT_BUS"):
        assert f"SCENGRID_{setting}" in env


def test_the_admission_limits_are_parameters_of_the_api_function_with_the_settings_defaults() -> None:
    """POST /runs answers 429 beyond MaxActiveRuns runs or MaxScenariosInFlight scenarios in
    flight; the tracker gives a run's admission back when the run ends."""
    parameters = template()["Parameters"]
    env = resources()["ApiFunction"]["Properties"]["Environment"]["Variables"]
    for parameter, setting in (("MaxActiveRuns", "max_active_runs"), ("MaxScenariosInFlight", "max_scenarios_in_flight")):
        assert env[f"SCENGRID_{setting.upper()}"] == {"Ref": parameter}
        assert parameters[parameter]["Default"] == Settings.model_fields[setting].default
        assert parameters[parameter]["MinValue"] == 1
    tracker = resources()["TrackerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SCENGRID_ADMISSION_TABLE"] == tracker["SCENGRID_ADMISSION_TABLE"] == {"Ref": "AdmissionTable"}
    assert resources()["AdmissionTable"]["Properties"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    grants = {
        role: {a for s in policy_statements(role) if s.get("Resource") == {"Fn::GetAtt": ["AdmissionTable", "Arn"]} for a in s["Action"]}
        for role in ("ApiFunctionRole", "TrackerFunctionRole")
    }
    assert grants["ApiFunctionRole"] == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"}
    assert grants["TrackerFunctionRole"] == {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}


def policy_statements(role: str) -> list[dict[str, Any]]:
    return [s for policy in resources()[role]["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_api_gateway_may_invoke_each_function_for_its_own_routes_only() -> None:
    permissions = {p["Properties"]["FunctionName"]["Ref"]: p["Properties"] for p in of_type("AWS::Lambda::Permission").values()}
    assert permissions["ApiFunction"]["SourceArn"]["Fn::Sub"].endswith("${Api}/*/*/runs*")
    assert permissions["InferenceFunction"]["SourceArn"]["Fn::Sub"].endswith("${Api}/*/POST/predict")
    assert {p["Principal"] for p in permissions.values()} == {"apigateway.amazonaws.com"}


def test_the_first_deployment_waits_for_every_method() -> None:
    """A deployment made before a method exists would serve the API without it."""
    methods = {name for name in of_type("AWS::ApiGateway::Method")}
    assert set(resources()["ApiDeployment"]["DependsOn"]) == methods
