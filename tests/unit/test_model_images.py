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


def test_on_aws_the_worker_reads_its_image_from_the_task_metadata_endpoint(monkeypatch) -> None:  # noqa: ANN001
    """A stand-in for ECS's task metadata endpoint v4 (the container's own URI answers Image and ImageID)."""
    import http.server
    import threading

    from scengrid.models import model_package
    from services.worker import provenance

    digest = "sha256:" + "cd" * 32
    answer = json.dumps({"Name": "default", "Image": "123.dkr.ecr.eu-west-1.amazonaws.com/risk/worker:model-acme-1.0-abc",
                         "ImageID": digest}).encode()

    class Endpoint(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("SCENGRID_IMAGE", raising=False)
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{server.server_port}/v4/abc")
        provenance.container_image.cache_clear()
        assert provenance.provenance("linear") == {
            "model_package": model_package("linear"), "image": f"123.dkr.ecr.eu-west-1.amazonaws.com/risk/worker:model-acme-1.0-abc@{digest}"}
        monkeypatch.setenv("SCENGRID_IMAGE", "scengrid-worker:model-acme-1.0@sha256:ef")  # the local runner's, first
        provenance.container_image.cache_clear()
        assert provenance.provenance("linear")["image"] == "scengrid-worker:model-acme-1.0@sha256:ef"
        monkeypatch.delenv("SCENGRID_IMAGE")
        monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4")
        provenance.container_image.cache_clear()
        assert "image" not in provenance.provenance("linear")  # a worker process, not a container
    finally:
        server.shutdown()
        provenance.container_image.cache_clear()
