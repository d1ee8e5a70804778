"""docker-compose.yml is valid, builds from files that exist, and runs commands that exist."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scengrid_cli.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
VALIDATOR = shutil.which("docker-compose")


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.mark.skipif(VALIDATOR is None and os.environ.get("CI") != "true", reason="needs Debian's docker-compose (CI installs it)")
def test_compose_file_validates() -> None:
    done = subprocess.run([VALIDATOR, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_the_services_the_stack_needs_are_there() -> None:
    assert {"moto", "bootstrap", "api", "tracker", "orchestrator", "worker", "inference"} <= set(services())


@pytest.mark.parametrize("name", sorted(services()))
def test_each_build_context_dockerfile_and_target_exist(name: str) -> None:
    build = services()[name]["build"]
    context = ROOT / build["context"]
    dockerfile = context / build["dockerfile"]
    assert context.is_dir() and dockerfile.is_file()
    if "target" in build:
        assert re.search(rf"^FROM .+ AS {build['target']}$", dockerfile.read_text(), re.M | re.I)


@pytest.mark.parametrize("name", sorted(n for n, s in services().items() if "command" in s))
def test_each_command_exists(name: str) -> None:
    command = services()[name]["command"]
    assert command[0] == "scengrid"
    args = build_parser().parse_args(command[1:])
    assert callable(args.func)
    if "--" in command:
        program = command[command.index("--") + 1 :]
        assert program[:2] == ["python", "-m"]
        importlib.import_module(program[2])
