"""The docker-compose topology without Docker: each part of the local stack in its own
process (emulator, bootstrap, api, tracker, orchestrator, a standalone worker), talking only
through the emulator, as the compose services do; a run goes through it end to end, its
requests signed with the profile bootstrap wrote beside the state (as docker-compose.yml's
header shows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scengrid_cli.local.emulator import free_port
from tests.http_wait import wait_until_answering

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "scengrid_cli.cli"]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("compose")
    state = work / "state" / "stack.json"
    moto_port, api_port = free_port(), free_port()
    env = {**os.environ, "SCENGRID_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}"}
    started: list[subprocess.Popen] = []

    def spawn(*args: str, **extra: str) -> None:
        log = (work / f"{args[1]}.log").open("wb")
        started.append(subprocess.Popen([*CLI, *args], env={**env, **extra}, cwd=work, stdout=log, stderr=subprocess.STDOUT))

    try:
        spawn("local", "emulator", "--host", "127.0.0.1", "--port", str(moto_port), "--work-dir", str(work))
        deadline = time.monotonic() + 60
        while subprocess.run([*CLI, "local", "bootstrap", "--state", str(state)], env=env, capture_output=True).returncode:
            assert time.monotonic() < deadline, (work / "emulator.log").read_text()[-2000:]
            time.sleep(1)
        spawn("local", "tracker", "--state", str(state))
        spawn("local", "orchestrator", "--state", str(state))
        spawn("local", "api", "--state", str(state), "--host", "127.0.0.1", "--port", str(api_port))
        # a standalone worker keeps polling (as `docker compose up --scale worker=N` runs them)
        spawn("local", "exec", "--state", str(state), "--", sys.executable, "-m", "services.worker.main",
              SCENGRID_WORKER_IDLE_POLLS="1000000")
        wait_until_answering(f"http://127.0.0.1:{api_port}/runs", 60, lambda: (work / "api.log").read_text()[-2000:])
        # a user's shell on the host: the stack's profile from the state volume, no other AWS credentials
        user = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        user.update(SCENGRID_API_URL=f"http://127.0.0.1:{api_port}", SCENGRID_REGION="us-east-1", AWS_PROFILE="scengrid-local",
                    AWS_SHARED_CREDENTIALS_FILE=str(state.parent / "credentials"))
        yield {"cwd": work, "env": user, "stack_env": env, "state": state}
    finally:
        for process in started:
            process.terminate()
        hung = []
        for process in started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                hung.append(process.args[len(CLI) + 1])  # the part: its log is <part>.log
        logs = "".join(f"\n--- {name}.log\n" + (work / f"{name}.log").read_text()[-3000:] for name in hung)
        assert not hung, f"still running 60 s after SIGTERM: {hung}{logs}"


def test_a_run_goes_through_the_split_stack(topology: dict, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("scenarios: {count: 8000, seed: 3}\nshard_size: 2000\nworkers: 2\n")
    run = lambda *a: subprocess.run([*CLI, *a], env=topology["env"], cwd=topology["cwd"], capture_output=True, text=True, timeout=300)  # noqa: E731
    submitted = run("submit", str(spec), "--json")
    assert submitted.returncode == 0, submitted.stderr
    run_id = json.loads(submitted.stdout.splitlines()[-1])["run_id"]
    watched = run("status", run_id, "--watch", "--json")
    assert watched.returncode == 0, watched.stderr
    view = json.loads(watched.stdout.splitlines()[-1])
    assert view["status"] == "COMPLETE" and view["progress"]["shards_done"] == 4
    shards = json.loads(run("status", run_id, "--json").stdout.splitlines()[-1])
    assert shards["var_99"] is not None


def test_bootstrap_again_changes_nothing(topology: dict) -> None:
    """podman-compose starts the one-shot bootstrap again with each service that requires it."""
    state: Path = topology["state"]
    before = state.read_text(), (state.parent / "credentials").read_text()
    again = subprocess.run([*CLI, "local", "bootstrap", "--state", str(state)], env=topology["stack_env"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already provisioned" in again.stdout
    assert (state.read_text(), (state.parent / "credentials").read_text()) == before


def test_exec_keeps_the_worker_tuning_it_is_given(topology: dict) -> None:
    """The long-lived worker's SCENGRID_WORKER_IDLE_POLLS survives the Batch jobs' default of 1."""
    shown = subprocess.run([*CLI, "local", "exec", "--state", str(topology["state"]), "--", sys.executable, "-c",
                            "import os; print(os.environ['SCENGRID_WORKER_IDLE_POLLS'], os.environ['SCENGRID_BUCKET'])"],
                           env={**topology["stack_env"], "SCENGRID_WORKER_IDLE_POLLS": "1000000", "SCENGRID_BUCKET": "not-the-stacks"},
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    idle_polls, bucket = shown.stdout.split()[-2:]
    assert idle_polls == "1000000" and bucket != "not-the-stacks"
