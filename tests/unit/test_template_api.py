"""The API's POST /runs, which has no code behind it: its request model agrees with RunSpec,
and its mapping templates, rendered with a Velocity engine and API Gateway's $input, $util
and $context, make a PutEvents request whose entry is a valid run-requested event (the
emulator's API Gateway cannot run an AWS integration, see MOTO_NOTES; the integration test
puts the rendered entry on the provisioned bus)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft4Validator
from pydantic import ValidationError

from scengrid.events import RunRequested, parse_envelope
from scengrid.spec import RunSpec
from tests.api_mapping import REQUEST_ID, put_events_request, render, response_template, runs_method
from tests.template_data import resources

SPECS = [
    {"scenarios": {"count": 1000}},
    {"scenarios": {"count": 250_000, "seed": 7}, "shard_size": 5000, "workers": 12},
    {"model": {"name": "linear", "params": {"desk": "rates / EUR", "note": "it's \"quoted\" \\ ünïcode\n"}},
     "scenarios": {"count": 10, "kind": "generated", "distribution": "normal"}, "shard_size": "auto", "version": 1},
    {"scenarios": {"count": 50_000, "distribution": "student_t", "df": 4.5,
                   "factors": {"factors": ["rates.usd.10y", "eq.spx"], "vols": [0.01, 0.2], "correlation": [[1, -0.3], [-0.3, 1]]}}},
    {"scenarios": {"kind": "file", "uri": "s3://risk-inputs/scenarios/2024q4.parquet", "count": 120_000}, "workers": 40},
    {"scenarios": {"kind": "historical", "uri": "s3://risk-inputs/history/daily.parquet", "count": 10_000, "bootstrap": True, "seed": 3}},
    {"scenarios": {"kind": "stress", "uri": "s3://risk-inputs/stress/regulatory.json", "count": 12}},
]


@pytest.mark.parametrize("spec", SPECS)
def test_post_runs_puts_a_valid_run_requested_event_on_the_bus(spec: dict[str, Any]) -> None:
    request = put_events_request(spec)
    [entry] = request["Entries"]
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == ("scengrid-bus", "scengrid.api", "run-requested")
    event = parse_envelope({"id": "e", "source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])})
    assert isinstance(event, RunRequested)
    assert event.run_id == REQUEST_ID and event.round == 1
    assert event.spec == RunSpec.model_validate(spec)


def test_post_runs_answers_202_with_the_run_and_its_location() -> None:
    accepted = {"FailedEntryCount": 0, "Entries": [{"EventId": "11710aed-b79e-4468-a20b-bb3c0c3b4860"}]}
    out, context = render(response_template("202"), json.dumps(accepted))
    assert json.loads(out) == {"run_id": REQUEST_ID, "round": 1, "status_url": f"/runs/{REQUEST_ID}"}
    assert context["responseOverride"]["header"]["Location"] == f"/runs/{REQUEST_ID}"
    assert "status" not in context["responseOverride"]


def test_post_runs_answers_500_when_the_bus_refused_the_entry() -> None:
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]}
    out, context = render(response_template("202"), json.dumps(refused))
    assert context["responseOverride"]["status"] == 500
    assert "ThrottlingException" in json.loads(out)["error"]


def test_integration_errors_are_502() -> None:
    responses = {r["StatusCode"]: r for r in runs_method()["Integration"]["IntegrationResponses"]}
    pattern = responses["502"]["SelectionPattern"]
    assert all(re.fullmatch(pattern, code) for code in ("400", "403", "500", "503"))
    assert not re.fullmatch(pattern, "200")
    assert json.loads(responses["502"]["ResponseTemplates"]["application/json"])["error"]


def test_post_runs_is_an_eventbridge_putevents_with_iam_auth_and_a_validated_body() -> None:
    method = runs_method()
    integration = method["Integration"]
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["RequestModels"] == {"application/json": {"Ref": "RunSpecModel"}}
    assert resources()["ApiValidator"]["Properties"]["ValidateRequestBody"] is True
    assert integration["Type"] == "AWS" and integration["PassthroughBehavior"] == "NEVER"
    assert integration["Uri"]["Fn::Sub"].endswith(":events:action/PutEvents")
    assert integration["RequestParameters"]["integration.request.header.X-Amz-Target"] == "'AWSEvents.PutEvents'"


# ---------------------------------------------------------------- the request model is the RunSpec
def run_spec_schema() -> Draft4Validator:
    schema = resources()["RunSpecModel"]["Properties"]["Schema"]
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


INVALID = [
    {},
    {"scenarios": {"count": 0}},
    {"scenarios": {"count": 100_000_001}},
    {"scenarios": {"count": 10, "seed": -1}},
    {"scenarios": {"count": 10, "kind": "parquet"}},
    {"scenarios": {"count": 10, "distribution": "t"}},
    {"scenarios": {"count": 10}, "shard_size": 0},
    {"scenarios": {"count": 10}, "shard_size": "big"},
    {"scenarios": {"count": 10}, "workers": 0},
    {"scenarios": {"count": 10}, "workers": 100_001},
    {"scenarios": {"count": 10}, "version": 2},
    {"scenarios": {"count": 10}, "model": {"name": "os.system"}},
    {"scenarios": {"count": 10}, "model": {"name": "Linear"}},
    {"scenarios": {"count": 10}, "model": {"params": {}}},
    {"scenarios": {"count": 10}, "import_path": "x.y"},
    {"scenarios": {"count": 10, "extra": 1}},
    {"scenarios": {"count": 10, "distribution": "student_t"}},
    {"scenarios": {"count": 10, "df": 5}},
    {"scenarios": {"kind": "file", "count": 10}},
    {"scenarios": {"kind": "file", "uri": "https://example.com/s.parquet", "count": 10}},
    {"scenarios": {"kind": "historical", "uri": "s3://risk-inputs/h.parquet", "bootstrap": True}},
    {"scenarios": {"kind": "stress", "uri": "s3://risk-inputs/s.json", "count": 2, "seed": 1}},
]


@pytest.mark.parametrize("spec", SPECS)
def test_the_request_model_accepts_what_runspec_accepts(spec: dict[str, Any]) -> None:
    RunSpec.model_validate(spec)
    assert list(run_spec_schema().iter_errors(spec)) == []


@pytest.mark.parametrize("spec", INVALID, ids=[json.dumps(s) for s in INVALID])
def test_the_request_model_refuses_what_runspec_refuses(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RunSpec.model_validate(spec)
    assert list(run_spec_schema().iter_errors(spec)) != []


def test_the_request_model_knows_every_runspec_field() -> None:
    schema = resources()["RunSpecModel"]["Properties"]["Schema"]
    assert set(schema["properties"]) == set(RunSpec.model_fields)
    assert set(schema["required"]) == {n for n, f in RunSpec.model_fields.items() if f.is_required()}


@pytest.mark.parametrize("scenarios", [
    {"kind": "file", "uri": "s3://risk-inputs/scenarios.parquet"},  # the local API reads the count from the file
    {"kind": "file", "uri": "scenarios/2024q4.parquet", "count": 10},  # a local path means nothing to AWS
])
def test_the_request_model_is_stricter_than_runspec_where_aws_needs_it(scenarios: dict[str, Any]) -> None:
    RunSpec.model_validate({"scenarios": scenarios})
    assert list(run_spec_schema().iter_errors({"scenarios": scenarios})) != []
