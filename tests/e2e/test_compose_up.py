"""docker-compose.yml brought up for real, with podman-compose (the dev group pins 1.6.0, the
version docs/containers.md measured with podman 4.3.1), on a project name of its own and free
host ports: a run submitted to the ``api`` service, signed (SigV4) with the stack's key that
bootstrap wrote to the state volume, goes to COMPLETE; then ``down -v`` removes the containers
and the volumes, whatever happened.

The images are built here with podman, as the compose file names them (``scengrid-local:latest``,
services/worker/Dockerfile target ``local``), with the machine's CA bundle mounted
(podman-compose passes build arguments to podman but no build volumes), and the stack comes up
with ``--no-build``. The ``inference`` service is not started: its image needs a Lambda runtime
interface emulator, which cannot be downloaded here (docs/containers.md), and a run without a
credit overlay does not call it.

Timings (build, bring-up, run, teardown) are printed: ``pytest -s`` shows them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from configparser import ConfigParser
from pathlib import Path

import pytest
import requests
from botocore.credentials import Credentials

from scengrid_cli.client import ApiClient, ApiError, CredentialSource, SigV4RequestAuth
from scengrid_cli.local.emulator import free_port
from tests.http_wait import wait_until_answering

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
IMAGE = "scengrid-local:latest"
SERVICES = ["moto", "bootstrap", "api", "tracker", "orchestrator", "worker"]
HOST_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
REGION = "us-east-1"


def _podman_compose() -> str | None:
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.is_file() else shutil.which("podman-compose")


def _skip_reason() -> str | None:
    if shutil.which("podman") is None:
        return "needs podman (scripts/container-engine installs it)"
    if subprocess.run(["podman", "info"], capture_output=True).returncode != 0:
        return "podman is installed but `podman info` fails: run scripts/container-engine"
    if _podman_compose() is None:
        return "needs podman-compose (the dev group pins it: make venv)"
    base = subprocess.run(["podman", "image", "exists", "docker.io/library/python:3.11-slim-bookworm"])
    if base.returncode != 0:
        return "needs the base image python:3.11-slim-bookworm: make base-image"
    return None


SKIP = _skip_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


def _elapsed(started: float) -> float:
    return round(time.monotonic() - started, 1)


def build_image() -> float:
    """scengrid-local:latest as compose would build it, plus the host CA (scripts/build-image)."""
    started = time.monotonic()
    ca = ["-v", f"{HOST_BUNDLE}:{HOST_BUNDLE}:ro", "--build-arg", f"SSL_CERT_FILE={HOST_BUNDLE}"] if Path(HOST_BUNDLE).is_file() else []
    done = subprocess.run(
        ["podman", "build", "--pull=never", *ca, "-f", "services/worker/Dockerfile", "--target", "local", "-t", IMAGE, "."],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return _elapsed(started)


class Compose:
    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        command = [_podman_compose(), "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        done = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-4000:]}"
        return done

    def logs(self) -> str:
        out = []
        for service in SERVICES:
            done = self(*["logs", "--tail", "40", service], check=False, timeout=60)
            out.append(f"--- {service}\n{done.stdout[-3000:]}{done.stderr[-1000:]}")
        return "\n".join(out)

    def states(self) -> dict[str, str]:
        """service -> its container's status (Up 2 minutes ago, Exited (0) 3 seconds ago…)."""
        listed = subprocess.run(["podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={self.project}",
                                 "--format", '{{index .Labels "com.docker.compose.service"}} {{.Status}}'],
                                capture_output=True, text=True).stdout.split("\n")
        return dict(line.split(" ", 1) for line in listed if " " in line)

    def leftovers(self) -> tuple[list[str], list[str]]:
        label = f"label=io.podman.compose.project={self.project}"
        containers = subprocess.run(["podman", "ps", "-a", "-q", "--filter", label], capture_output=True, text=True).stdout.split()
        volumes = subprocess.run(["podman", "volume", "ls", "-q", "--filter", label], capture_output=True, text=True).stdout.split()
        return containers, volumes


@pytest.fixture(scope="module")
def stack() -> Iterator[dict]:
    timings = {"build_s": build_image()}
    api_port = free_port()
    env = {**os.environ, "SCENGRID_API_PORT": str(api_port), "SCENGRID_EMULATOR_PORT": str(free_port()),
           "SCENGRID_INFERENCE_PORT": str(free_port())}
    compose = Compose(f"scengrid-e2e-{uuid.uuid4().hex[:8]}", env)
    try:
        started = time.monotonic()
        # -d: podman-compose then waits for bootstrap to complete (docs/containers.md); the
        # parts also wait for the emulator and the state themselves
        compose("up", "-d", "--no-build", *SERVICES, timeout=600)
        try:
            wait_until_answering(f"http://127.0.0.1:{api_port}/runs", timeout=300)
        except OSError:
            pytest.fail(f"the api did not answer on port {api_port}:\n{compose.logs()}")
        timings["up_s"] = _elapsed(started)
        # the stack's key, as the compose file's header shows: out of the state volume through the api service
        credentials = compose("exec", "-T", "api", "cat", "/state/credentials").stdout
        yield {"compose": compose, "api_url": f"http://127.0.0.1:{api_port}", "credentials": credentials, "timings": timings}
    finally:
        started = time.monotonic()
        down = compose("down", "-v", "-t", "5", check=False, timeout=600)
        timings["down_s"] = _elapsed(started)
        containers, volumes = compose.leftovers()
        for container in containers:  # whatever down left behind
            subprocess.run(["podman", "rm", "-f", container], capture_output=True)
        for volume in volumes:
            subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)
        print(f"\ncompose timings: {json.dumps(timings)}")
        assert down.returncode == 0 and not containers and not volumes, (down.stderr[-2000:], containers, volumes)


def test_a_signed_run_goes_through_the_compose_stack(stack: dict) -> None:
    profiles = ConfigParser()
    profiles.read_string(stack["credentials"])
    key = profiles["scengrid-local"]
    credentials = Credentials(key["aws_access_key_id"], key["aws_secret_access_key"])
    api = ApiClient(stack["api_url"], SigV4RequestAuth(credentials, REGION),
                    CredentialSource("shared-credentials-file", "profile scengrid-local from the compose stack's state volume"))
    unsigned = urllib.request.Request(f"{stack['api_url']}/runs")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=10)
    assert refused.value.code == 403

    started = time.monotonic()
    run_id = api.submit({"scenarios": {"count": 2000, "seed": 5}, "shard_size": 500, "workers": 2})["run_id"]
    deadline = time.monotonic() + 600
    view: dict = {"status": "SUBMITTED"}
    slow = 0
    while view["status"] not in ("COMPLETE", "FAILED", "CANCELLED"):
        try:
            view = api.run(run_id)
        except ApiError as error:
            # 404 until the tracker service has recorded the run-requested event
            assert error.status == 404, error
        except requests.Timeout:  # the stack's containers share the machine's cores with the run's jobs
            slow += 1
            stack["timings"]["slow_status_answers"] = slow
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {view['status']} after 600 s:\n{stack['compose'].logs()}")
        time.sleep(1)
    stack["timings"]["run_s"] = _elapsed(started)
    assert view["status"] == "COMPLETE", f"{view}\n{stack['compose'].logs()}"
    assert view["progress"]["shards_done"] == 4
    assert view["var_99"] is not None
    states = stack["compose"].states()
    # the long-lived parts still up, bootstrap done (its second start, podman-compose's, changed nothing)
    assert all(states.get(name, "").startswith("Up") for name in ("moto", "api", "tracker", "orchestrator", "worker")), states
    assert states.get("bootstrap", "").startswith("Exited (0)"), states
