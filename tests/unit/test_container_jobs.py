"""Batch jobs as containers: the image a job definition names maps to its local tag, the
``run`` command carries what Fargate would give the task, a reclaim is ``stop -t GRACE``, and
the runner drives a container launcher exactly as it drives processes."""

from __future__ import annotations

import io
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scengrid_cli.local import container_jobs
from scengrid_cli.local.batch_runner import LocalBatchRunner, reclaim
from scengrid_cli.local.container_jobs import ContainerLauncher, ContainerProcess, local_image
from scengrid_cli.local.moto_gaps import LocalJob

REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scengrid/worker"
REPOSITORIES = {REPO: "worker", "123456789012.dkr.ecr.us-east-1.amazonaws.com/scengrid/collator": "collator"}


def job(**changes: Any) -> LocalJob:
    fields: dict[str, Any] = {
        "job_id": "5f0c:3",
        "name": "scengrid-work-r-0",
        "command": ["python", "-m", "services.worker.main"],
        "environment": {"AWS_BATCH_JOB_ID": "5f0c:3", "AWS_BATCH_JOB_ARRAY_INDEX": "3", "SCENGRID_RUN_ID": "r"},
        "should_stop": lambda: False,
        "on_start": lambda: None,
        "retry_strategy": {},
        "image": f"{REPO}:not-pushed",
        "vcpus": 2.0,
        "memory_mib": 4096,
    }
    fields.update(changes)
    return LocalJob(**fields)


@pytest.mark.parametrize(
    ("image", "local"),
    [
        (f"{REPO}:not-pushed", "scengrid-worker:local"),
        (f"{REPO}:v42", "scengrid-worker:local"),
        (f"{REPO}:model-acme-risk-1.2.0", "scengrid-worker:model-acme-risk-1.2.0"),
        (REPO, "scengrid-worker:local"),
        (f"{REPO}@sha256:abc", "scengrid-worker:local"),
        ("public.ecr.aws/docker/library/busybox:1.36", "public.ecr.aws/docker/library/busybox:1.36"),
        ("localhost:5000/tools", "localhost:5000/tools"),
    ],
)
def test_the_stacks_repositories_map_to_local_tags_and_other_images_stay(image: str, local: str) -> None:
    assert local_image(image, REPOSITORIES) == local


def test_the_run_command_gives_the_task_what_fargate_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_jobs.os, "cpu_count", lambda: 8)
    launcher = ContainerLauncher("podman", REPOSITORIES, volumes=["/tmp/chaos:/tmp/chaos:rw"])
    launcher._users["scengrid-worker:local"] = "65532"
    env = {"AWS_BATCH_JOB_ATTEMPT": "2", "AWS_SECRET_ACCESS_KEY": "scengrid-local", "SCENGRID_ENDPOINT_URL": "http://127.0.0.1:5000"}
    command = launcher.command(job(), 2, env)
    assert command[:2] == ["podman", "run"] and command[-4:] == ["scengrid-worker:local", "python", "-m", "services.worker.main"]
    options = " ".join(command)
    for expected in (
        "--rm", "--name scengrid-5f0c-3-a2", "--network host", "--pull=never", "--cpus 2", "--memory 4096m",
        "--memory-swap 4096m", "--user 65532", "--volume /tmp/chaos:/tmp/chaos:rw",
        "--env AWS_BATCH_JOB_ATTEMPT", "--env AWS_SECRET_ACCESS_KEY", "--env SCENGRID_ENDPOINT_URL",
    ):
        assert expected in options
    assert "scengrid-local" not in options and "127.0.0.1" not in options  # values stay off the command line


def test_cpus_are_capped_at_the_machines_and_an_unsized_job_gets_no_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_jobs.os, "cpu_count", lambda: 2)
    launcher = ContainerLauncher("docker", REPOSITORIES)
    launcher._users["scengrid-worker:local"] = ""  # the image names no USER: none is passed
    assert "--cpus 2" in " ".join(launcher.command(job(vcpus=16.0), 1, {}))
    unsized = " ".join(launcher.command(job(vcpus=None, memory_mib=None), 1, {}))
    assert "--cpus" not in unsized and "--memory" not in unsized and "--user" not in unsized


def test_a_missing_image_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def inspect(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(args, 125, "", "image not known")

    monkeypatch.setattr(container_jobs.subprocess, "run", inspect)
    with pytest.raises(container_jobs.ContainerImageMissing, match=r"scengrid-worker:local is missing: .*make images"):
        ContainerLauncher("podman", REPOSITORIES).command(job(), 1, {})


def test_the_stack_names_every_missing_job_image_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_jobs, "container_engine", lambda: "podman")
    monkeypatch.setattr(container_jobs, "stack_repositories", lambda: REPOSITORIES)
    monkeypatch.setattr(container_jobs, "job_definition_images", lambda: [f"{REPO}:not-pushed", f"{REPO[:-6]}collator:not-pushed"])
    monkeypatch.setattr(container_jobs, "image_exists", lambda engine, image: image == "scengrid-worker:local")
    with pytest.raises(container_jobs.ContainerImageMissing, match=r"^scengrid-collator:local is missing: build the images with `make images`"):
        ContainerLauncher.for_stack()
    monkeypatch.setattr(container_jobs, "image_exists", lambda engine, image: True)
    assert ContainerLauncher.for_stack(["/a:/a:ro"]).volumes == ["/a:/a:ro"]


class Recorder:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        with self.lock:
            self.commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")


def test_a_reclaim_is_engine_stop_with_the_grace_and_signals_go_through_engine_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(container_jobs.subprocess, "run", recorder)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        container = ContainerProcess("podman", "scengrid-j-a1", sleeper)
        reclaim(container, 7.0)
        reclaim(container, 7.0)  # once: a second stop would only wait again
        container.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while len(recorder.commands) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(recorder.commands) == [["podman", "kill", "--signal", "SIGKILL", "scengrid-j-a1"], ["podman", "stop", "-t", "7", "scengrid-j-a1"]]


def test_a_signal_that_comes_before_the_container_exists_is_sent_again_until_it_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([125, 125, 0])  # "no such container" while it is being created, then delivered
    calls: list[list[str]] = []

    def engine(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        calls.append(command)
        return subprocess.CompletedProcess(command, next(answers), "", "")

    monkeypatch.setattr(container_jobs.subprocess, "run", engine)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        ContainerProcess("podman", "scengrid-j-a1", sleeper).send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert calls == [["podman", "kill", "--signal", "SIGKILL", "scengrid-j-a1"]] * 3


def test_a_process_reclaim_is_sigterm_then_sigkill_after_the_grace() -> None:
    obeys = subprocess.Popen(["python3", "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)); print(flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    ignores = subprocess.Popen(["python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    for proc in (obeys, ignores):
        assert proc.stdout is not None
        proc.stdout.readline()  # its handler is in place
        reclaim(proc, 0.5)
    assert obeys.wait(5) == 143
    assert ignores.wait(5) == -signal.SIGKILL


class FakeLauncher:
    """Exits each attempt with the next code; records the environment it was given."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.envs: list[dict[str, str]] = []

    def start(self, job: LocalJob, attempt: int, env: dict[str, str], out: io.BufferedWriter, log: Path) -> subprocess.Popen:
        self.envs.append(env)
        return subprocess.Popen(["python3", "-c", f"raise SystemExit({self.codes[attempt - 1]})"])

    def close(self) -> None:
        pass


def test_the_runner_drives_a_launcher_with_batchs_environment_and_retry_strategy(tmp_path: Path) -> None:
    strategy = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}, {"onReason": "*", "action": "RETRY"}]}
    launcher = FakeLauncher([137, 143, 0])
    runner = LocalBatchRunner(1, {"SCENGRID_BUCKET": "b"}, tmp_path, launcher=launcher)
    assert runner(job(retry_strategy=strategy)) == 0
    assert [e["AWS_BATCH_JOB_ATTEMPT"] for e in launcher.envs] == ["1", "2", "3"]
    assert all(e["SCENGRID_BUCKET"] == "b" and e["AWS_BATCH_JOB_ARRAY_INDEX"] == "3" for e in launcher.envs)
    assert [a.exit_code for a in runner.outcomes[0].attempts] == [137, 143, 0]
    log = runner.outcomes[0].log.read_text()
    assert log.count("--- attempt ") == 3

    failing = FakeLauncher([1, 0])
    assert LocalBatchRunner(1, {}, tmp_path, launcher=failing)(job(job_id="x", retry_strategy=strategy)) == 1
    assert len(failing.envs) == 1  # EXIT on the application's own error
