"""The inference function and its callers in the template: where the PD model is read from
(one key, the same the code publishes to), and least privilege around it: the function may
read that key only, and the workers may invoke that function only and read that key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from scengrid import layout
from tests.dockerfile_reader import read_stages
from tests.template_data import ROOT, resources, template

MODEL_ARN = {"Fn::Sub": f"${{Bucket.Arn}}/{layout.pd_model_key()}"}
MODEL_URI = {"Fn::Sub": f"s3://${{Bucket}}/{layout.pd_model_key()}"}
BAKED = "/opt/model/pd.onnx"


def props(name: str) -> dict[str, Any]:
    return resources()[name]["Properties"]


def statements(role: str) -> list[dict[str, Any]]:
    return [s for policy in props(role)["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def granting(role: str, prefix: str) -> list[dict[str, Any]]:
    actions = lambda s: s["Action"] if isinstance(s["Action"], list) else [s["Action"]]  # noqa: E731
    return [s for s in statements(role) if any(a.startswith(prefix) for a in actions(s))]


def test_the_function_reads_the_model_from_s3_or_from_its_image_by_a_parameter() -> None:
    assert template()["Parameters"]["PdModelSource"]["AllowedValues"] == ["s3", "image"]
    env = props("InferenceFunction")["Environment"]["Variables"]
    assert env["SCENGRID_MODEL_URI"] == {"Fn::If": ["PdModelInImage", BAKED, MODEL_URI]}
    assert float(env["SCENGRID_MODEL_CHECK_S"]) > 0
    dockerfile = ROOT / "services" / "inference" / "Dockerfile"
    final_env = " ".join(read_stages(dockerfile)[-1].all("ENV")).split()
    assert f"SCENGRID_MODEL_URI={BAKED}" in final_env and "--name pd.onnx" in dockerfile.read_text()


def test_the_function_may_read_the_model_key_and_nothing_else_in_s3() -> None:
    [read] = granting("InferenceFunctionRole", "s3:")
    assert (read["Action"], read["Resource"]) == ("s3:GetObject", MODEL_ARN)


def test_the_workers_invoke_that_function_only_and_read_the_model_key_only() -> None:
    [invoke] = granting("WorkerJobRole", "lambda:")
    assert invoke["Action"] == "lambda:InvokeFunction"
    arn = invoke["Resource"]["Fn::Sub"]
    assert re.fullmatch(r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:\$\{AWS::AccountId\}:function:\$\{EnvName\}-inference", arn)
    assert props("InferenceFunction")["FunctionName"] == {"Fn::Sub": "${EnvName}-inference"}
    model_reads = [s for s in granting("WorkerJobRole", "s3:GetObject") if s["Resource"] == MODEL_ARN]
    assert len(model_reads) == 1 and model_reads[0]["Action"] == "s3:GetObject"


def test_the_worker_job_names_the_function_and_the_model() -> None:
    env = {e["Name"]: e["Value"] for e in props("WorkerJobDefinition")["ContainerProperties"]["Environment"]}
    assert env["SCENGRID_INFERENCE_FUNCTION"] == {"Fn::Sub": "${EnvName}-inference"}
    assert env["SCENGRID_MODEL_URI"] == MODEL_URI


def test_the_docs_describe_the_two_ways_to_ship_the_model() -> None:
    doc = (Path(ROOT) / "docs" / "inference.md").read_text()
    assert "pattern 1: fetched from S3" in doc and "pattern 2: baked into the image" in doc and "SageMaker" in doc
    assert "docs/inference.md" in (ROOT / "README.md").read_text()
