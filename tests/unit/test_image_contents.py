"""Each service image installs only what its service runs: the packages its Dockerfile's locked
export installs (replayed for the image's platform, no engine needed) hold neither the
scengrid command nor the local runtime's emulator, nor the report's plotting stack outside
the collator, and the runtime interface client only in the Lambda images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dockerfile_reader import ROOT, image_contents

# The CLI's distribution, the emulator and what it brings, the terminal UI, the SQL shell.
NEVER = {"scengrid-cli", "moto", "flask", "werkzeug", "rich", "pyyaml", "duckdb", "requests"}
PLOTTING = {"matplotlib", "pillow", "fonttools", "contourpy", "kiwisolver"}
SERVICES = ["sharder", "worker", "collator", "tracker", "inference"]
LAMBDA = {"tracker", "inference"}  # their entrypoint is the runtime interface client


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contents")


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_only_what_its_service_runs(service: str, work_dir: Path) -> None:
    installed = set(image_contents(ROOT / "services" / service / "Dockerfile", work_dir))
    assert "scengrid" in installed, "the image must install the scengrid library"
    assert installed & NEVER == set(), f"{service} image installs {sorted(installed & NEVER)}"
    assert ("awslambdaric" in installed) == (service in LAMBDA), f"{service}: awslambdaric only in the Lambda images"
    if service == "collator":  # it draws the report's histogram, with Pillow alone
        assert installed & PLOTTING == {"pillow"}, f"collator image installs {sorted(installed & PLOTTING)}"
    else:
        assert installed & PLOTTING == set(), f"{service} image installs {sorted(installed & PLOTTING)}"


def test_the_library_wheel_holds_no_cli_or_local_runtime() -> None:
    """The CLI, the local runtime, planning and the trainer live in their own distribution."""
    library = ROOT / "shared" / "scengrid"
    for moved in ("cli.py", "client.py", "commands", "local", "planning", "schemas.py", "inference/train.py"):
        assert not (library / moved).exists(), f"shared/scengrid/{moved} belongs to shared/cli/scengrid_cli"
    assert (ROOT / "shared" / "cli" / "scengrid_cli" / "cli.py").is_file()
