"""Batch jobs as containers (``scengrid demo --containers``, ``scengrid local up --containers``):
each attempt is ``podman run`` (or ``docker run``) of the image the job definition names, as
Fargate runs the task.

- The image: the job definition names the stack's ECR repository (``<uri>:<tag>``); locally
  that repository's image is ``scengrid-<service>:local`` (``make images`` builds them). An image
  from anywhere else is run as named.
- The environment: what AWS Batch sets (``AWS_BATCH_JOB_ID``, ``AWS_BATCH_JOB_ATTEMPT``,
  ``AWS_BATCH_JOB_ARRAY_INDEX``, ``AWS_BATCH_JQ_NAME``, ...), the job definition's and the
  container overrides' variables, the settings that point at the emulator and dummy AWS
  credentials. They are passed by name (``-e NAME``) from the engine client's environment, so
  no value is written on a command line.
- The task's size: the job's VCPU and MEMORY as ``--cpus`` and ``--memory`` (no swap, as on
  Fargate); CPUs are capped at the machine's.
- ``--network host`` (the emulator listens on the loopback), ``--user`` as the image says, a
  container name per attempt, the output into the job's log file.
- Stopping: ``stop(grace_s)`` is ``<engine> stop -t GRACE`` (SIGTERM to the task's PID 1, then
  SIGKILL), which is how a Spot reclaim and TerminateJob reach a task; signals go through
  ``<engine> kill`` (both again until the container exists, if they come while it starts).
  The exit status is the container's, which the runner judges by the job definition's retry
  strategy."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import IO

from scengrid.aws import client
from scengrid.errors import ScengridError
from scengrid_cli.local.moto_gaps import LocalJob

LOCAL_TAG = "scengrid-{service}:local"
MODEL_TAG_PREFIX = "model-"  # the tags of images with a model package installed (scengrid image build)
BUILD_HINT = "build the images with `make images` (or one with `scripts/build-image SERVICE`)"
# Where a task's PD model downloads go: the container's own /tmp, not the stack's folder on the host.
CONTAINER_SETTINGS = {"SCENGRID_MODEL_CACHE_DIR": "/tmp/scengrid-models"}


class ContainerEngineMissing(ScengridError):
    pass


class ContainerImageMissing(ScengridError):
    pass


@lru_cache(maxsize=1)
def container_engine() -> str:
    """podman if it works, else docker if its daemon answers (``CONTAINER_ENGINE`` picks one),
    as scripts/container-engine chooses."""
    wanted = os.environ.get("CONTAINER_ENGINE")
    checks = {
        "podman": ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
        "docker": ["docker", "version", "--format", "{{.Server.Version}}"],
    }
    for engine, check in checks.items():
        if wanted and engine != wanted or shutil.which(engine) is None:
            continue
        if subprocess.run(check, capture_output=True, timeout=60, check=False).returncode == 0:
            return engine
    raise ContainerEngineMissing(
        f"no container engine works here ({wanted or 'podman or docker'}): run scripts/container-engine "
        "(it installs and sets up podman), or leave out --containers to run jobs as local processes"
    )


def image_exists(engine: str, image: str) -> bool:
    return subprocess.run([engine, "image", "inspect", image], capture_output=True, check=False).returncode == 0


def stack_repositories() -> dict[str, str]:
    """The stack's ECR repositories in the emulator: repository URI -> its service."""
    repositories = client("ecr").describe_repositories()["repositories"]
    return {r["repositoryUri"]: r["repositoryName"].rsplit("/", 1)[-1] for r in repositories}


def local_image(image: str, repositories: dict[str, str]) -> str:
    """The local tag of a job definition's image: for one of the stack's repositories,
    ``scengrid-<service>:local``, or ``scengrid-<service>:model-…`` for a model image's tag
    (the template's ``ModelImageTag``; ``scengrid image build`` tags the images so); else the
    image as named."""
    name, tag_sep, tag = image.rpartition(":")
    repository = name if tag_sep and "/" not in image[len(name) :] else image
    service = repositories.get(repository.split("@", 1)[0])
    if not service:
        return image
    if repository != image and tag.startswith(MODEL_TAG_PREFIX):
        return f"scengrid-{service}:{tag}"
    return LOCAL_TAG.format(service=service)


def image_digest(engine: str, image: str) -> str:
    """``image@sha256:…`` (the digest of its manifest in the engine's store), or the image as named."""
    found = subprocess.run([engine, "image", "inspect", "--format", "{{.Digest}}", image], capture_output=True, text=True, check=False)
    digest = found.stdout.strip() if found.returncode == 0 else ""
    return f"{image}@{digest}" if digest.startswith("sha256:") else image


def job_definition_images() -> list[str]:
    """The images of the stack's Batch job definitions, as they name them."""
    definitions = client("batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    return sorted({d["containerProperties"]["image"] for d in definitions if d.get("containerProperties")})


def _container_name(job: LocalJob, attempt: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"scengrid-{job.job_id}-a{attempt}")


class ContainerProcess:
    """A running ``<engine> run`` of one attempt, driven like a process."""

    def __init__(self, engine: str, name: str, proc: subprocess.Popen) -> None:
        self.engine = engine
        self.name = name
        self.pid = proc.pid
        self._proc = proc
        self._stopping = False

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._proc.wait(timeout)

    def _until_it_takes(self, command: list[str]) -> None:
        """Run an engine command on the container, again while it fails and ``run`` is still
        going: a signal in the first moments of an attempt comes before the container exists.
        In the background: a caller never waits for it."""

        def attempt() -> None:
            while subprocess.run(command, capture_output=True, check=False).returncode != 0 and self.poll() is None:
                time.sleep(0.1)

        threading.Thread(target=attempt, name=f"{command[1]}-{self.name}", daemon=True).start()

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self._until_it_takes([self.engine, "kill", "--signal", signal.Signals(sig).name, self.name])

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def stop(self, grace_s: float) -> None:
        """``<engine> stop -t GRACE``: SIGTERM to PID 1, SIGKILL after ``grace_s``. Returns at once."""
        if self._stopping or self.poll() is not None:
            return
        self._stopping = True
        self._until_it_takes([self.engine, "stop", "-t", str(max(0, round(grace_s))), self.name])


class ContainerLauncher:
    """A ``Launcher`` for LocalBatchRunner: each attempt as a container of the job's image."""

    def __init__(self, engine: str, repositories: dict[str, str], volumes: Iterable[str] = ()) -> None:
        self.engine = engine
        self.repositories = repositories
        self.volumes = list(volumes)  # host:container[:options], for every job
        self._users: dict[str, str] = {}
        self._digests: dict[str, str] = {}
        self._running: dict[str, ContainerProcess] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_stack(cls, volumes: Iterable[str] = ()) -> ContainerLauncher:
        """For the provisioned stack: its repositories mapped to local tags, and every job
        definition's image checked to exist, so that a missing one fails now, by name."""
        launcher = cls(container_engine(), stack_repositories(), volumes)
        missing = [image for image in map(launcher.image_of, job_definition_images()) if not image_exists(launcher.engine, image)]
        if missing:
            raise ContainerImageMissing(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing: {BUILD_HINT}")
        return launcher

    def image_of(self, job_image: str) -> str:
        return local_image(job_image, self.repositories)

    def _user(self, image: str) -> str:
        """The image's USER (``--user`` as the image says); raises if the image is missing."""
        if image not in self._users:
            found = subprocess.run(
                [self.engine, "image", "inspect", "--format", "{{.Config.User}}", image], capture_output=True, text=True, check=False
            )
            if found.returncode != 0:
                raise ContainerImageMissing(f"{image} is missing: {BUILD_HINT}")
            self._users[image] = found.stdout.strip()
        return self._users[image]

    def command(self, job: LocalJob, attempt: int, env: dict[str, str]) -> list[str]:
        """The ``<engine> run`` of one attempt."""
        if not job.command:
            raise ValueError("the job definition has no command")
        image = self.image_of(job.image)
        user = self._user(image)
        run = [self.engine, "run", "--rm", "--name", _container_name(job, attempt), "--network", "host", "--pull=never"]
        run += ["--label", f"scengrid.job-id={job.job_id}", "--label", f"scengrid.attempt={attempt}"]
        if job.vcpus:
            run += ["--cpus", f"{min(job.vcpus, float(os.cpu_count() or 1)):g}"]
        if job.memory_mib:
            run += ["--memory", f"{job.memory_mib}m", "--memory-swap", f"{job.memory_mib}m"]
        if user:
            run += ["--user", user]
        for volume in self.volumes:
            run += ["--volume", volume]
        for name in sorted(env):
            run += ["--env", name]  # the value comes from the engine client's environment
        return [*run, image, *job.command]

    def start(self, job: LocalJob, attempt: int, env: dict[str, str], out: IO[bytes], log: Path) -> ContainerProcess:
        image = self.image_of(job.image)
        if image not in self._digests:
            self._digests[image] = image_digest(self.engine, image)
        # the image the job runs, with its digest, as a task's metadata endpoint tells it on AWS
        env = {**env, **CONTAINER_SETTINGS, "SCENGRID_IMAGE": self._digests[image]}
        command = self.command(job, attempt, env)
        out.write(f"--- {' '.join(command)}\n".encode())
        out.flush()
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started = ContainerProcess(self.engine, _container_name(job, attempt), proc)
        with self._lock:
            self._running = {n: p for n, p in self._running.items() if p.poll() is None}
            self._running[started.name] = started
        return started

    def close(self) -> None:
        """Remove the containers still running (the stack is stopping)."""
        with self._lock:
            names = [n for n, p in self._running.items() if p.poll() is None]
            self._running.clear()
        if names:
            subprocess.run([self.engine, "rm", "--force", *names], capture_output=True, check=False)
