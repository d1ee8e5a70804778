"""The container engine (podman or docker, as scripts/container-engine picks it) and the service
images that `make images` builds, for the container tests.

Where there is no engine, or an image is not built, a test skips and says what to run; with
``SCENGRID_REQUIRE_IMAGES=1`` (CI, after `make images`) it fails instead."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("sharder", "worker", "collator", "tracker", "inference")
LAMBDA_USER = "993:990"  # Lambda runs an image as a non-root user of its own, not the image's USER


def local_tag(service: str) -> str:
    return f"scengrid-{service}:local"


def unavailable(reason: str) -> None:
    if os.environ.get("SCENGRID_REQUIRE_IMAGES") == "1":
        pytest.fail(f"{reason} (SCENGRID_REQUIRE_IMAGES=1)")
    pytest.skip(reason)


@cache
def engine() -> str | None:
    result = subprocess.run([str(ROOT / "scripts" / "container-engine"), "--print"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def require_image(service: str) -> str:
    """The service's local image, or a skip (a failure in CI) saying how to build it."""
    if engine() is None:
        unavailable("no container engine works here: run scripts/container-engine (as root), then `make images`")
    tag = local_tag(service)
    if subprocess.run([engine(), "image", "inspect", tag], capture_output=True).returncode != 0:
        unavailable(f"{tag} is not built: run `make images` (or scripts/build-image {service})")
    return tag


def image_config(image: str) -> dict:
    out = subprocess.run([engine(), "image", "inspect", image], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["Config"]


def run_args(
    image: str,
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    entrypoint: str | None = None,
    read_only: bool = True,
    name: str | None = None,
    detach: bool = False,
    remove: bool = True,
) -> list[str]:
    """``<engine> run`` as the tests run every container: on the host's network (the emulator
    and the Runtime API stand-in listen on its loopback) and, unless asked otherwise, with a
    read-only root and a writable /tmp, as on Lambda."""
    command = [engine(), "run", "--network", "host"]
    command += ["--rm"] if remove else []
    command += ["-d"] if detach else ["-i"]
    command += ["--read-only", "--tmpfs", "/tmp"] if read_only else []
    command += ["--name", name] if name else []
    command += ["--user", user] if user else []
    command += ["--entrypoint", entrypoint] if entrypoint else []
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    return [*command, image, *args]


def run(image: str, args: Sequence[str] = (), *, input: str | None = None, timeout: float = 300, **options) -> subprocess.CompletedProcess:  # noqa: A002
    return subprocess.run(run_args(image, args, **options), input=input, capture_output=True, text=True, timeout=timeout)


@contextmanager
def container(image: str, args: Sequence[str] = (), **options) -> Iterator[str]:
    """A detached container of ``image``, removed (with its logs kept for the failure message)
    at the end; yields its name."""
    name = f"scengrid-test-{uuid.uuid4().hex[:10]}"
    subprocess.run(run_args(image, args, name=name, detach=True, remove=False, **options), check=True, capture_output=True)
    try:
        yield name
    finally:
        now = ["-t", "0"] if engine() == "podman" else []  # docker's rm -f kills at once
        subprocess.run([engine(), "rm", "-f", *now, name], capture_output=True)


def logs(name: str) -> str:
    result = subprocess.run([engine(), "logs", name], capture_output=True, text=True)
    return (result.stdout + result.stderr)[-4000:]


def changed_paths(name: str) -> list[str]:
    """What a (stopped) container changed in its image's filesystem: ``<engine> diff``."""
    out = subprocess.run([engine(), "diff", name], capture_output=True, text=True, check=True).stdout
    return [line.split(maxsplit=1)[1] for line in out.splitlines() if line.strip()]
