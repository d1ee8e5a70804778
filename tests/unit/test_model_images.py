"""The images with a model package installed (``scengrid image build``, ``MODEL=PATH make
deploy``): which job definitions and functions run them, and how the local runner finds them."""

from __future__ import annotations

import json

from scengrid_cli.local.container_jobs import local_image
from services.worker.provenance import image_reference
from tests.template_data import of_type, template

MODEL_TAG = {"Fn::If": ["ModelImage", {"Ref": "ModelImageTag"}, {"Fn::If": ["ImagesPushed", {"Ref": "ImageTag"}, "not-pushed"]}]}


def test_the_model_image_tag_is_a_template_parameter_that_only_names_model_images() -> None:
    parameter = template()["Parameters"]["ModelImageTag"]
    assert parameter["Default"] == "" and parameter["AllowedPattern"].startswith("^(model-")
    assert template()["Conditions"]["ModelImage"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelImageTag"}, ""]}]}


def test_every_batch_job_and_the_tracker_functions_run_the_model_image_when_it_is_given() -> None:
    """The sharder (its calibration), the worker and the collator (the report's factors) load the
    model; so does the API (it checks a run's model and params), a function of the tracker's image."""
    definitions = of_type("AWS::Batch::JobDefinition")
    assert set(definitions) == {"SharderJobDefinition", "WorkerJobDefinition", "CollatorJobDefinition"}
    for name, definition in definitions.items():
        sub = definition["Properties"]["ContainerProperties"]["Image"]["Fn::Sub"]
        assert sub[1]["Tag"] == MODEL_TAG, name
    trackers = {n: f for n, f in of_type("AWS::Lambda::Function").items() if "${TrackerRepository.RepositoryUri}" in json.dumps(f["Properties"]["Code"])}
    assert len(trackers) == 3
    for name, function in trackers.items():
        sub = function["Properties"]["Code"]["ImageUri"]["Fn::Sub"]
        assert sub[1]["Tag"] == {"Fn::If": ["ModelImage", {"Ref": "ModelImageTag"}, {"Ref": "ImageTag"}]}, name


def test_locally_a_model_tag_of_the_stacks_repository_is_the_local_model_image() -> None:
    repositories = {"000000000000.dkr.ecr.us-east-1.amazonaws.com/scengrid/worker": "worker"}
    repo = next(iter(repositories))
    assert local_image(f"{repo}:model-acme-risk-1.2.0", repositories) == "scengrid-worker:model-acme-risk-1.2.0"
    assert local_image(f"{repo}:not-pushed", repositories) == "scengrid-worker:local"


def test_the_image_is_recorded_with_its_digest() -> None:
    digest = "sha256:" + "ab" * 32
    assert image_reference("123.dkr.ecr.eu-west-1.amazonaws.com/scengrid/worker:model-acme-1.0", digest).endswith(f":model-acme-1.0@{digest}")
    assert image_reference("repo/worker@" + digest, digest) == "repo/worker@" + digest
    assert image_reference("repo/worker:v1", "") == "repo/worker:v1"
