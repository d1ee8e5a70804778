"""Each service's Dockerfile: hadolint finds nothing; the final image has the right base and
runs the entrypoint the template runs; every COPY source exists in the build context (the
repository root); and the image's packages, installed the way the Dockerfile installs them
for the image's platform, are enough for the entrypoint to import (with nothing else on the
path; for an image on another Python than the tests', the same pinned packages installed for
this interpreter). No Docker engine is needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scengrid_cli.local.cfn import load_template
from tests.dockerfile_reader import (
    BATCH_BASE,
    LAMBDA_312_BASE,
    LAMBDA_BASE,
    PLATFORM,
    build_stage_of,
    copies,
    installed_site,
    read_stages,
    tool,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "infra" / "template.yaml")["Resources"]
HOST = ("x86_64-manylinux_2_36", f"{sys.version_info.major}.{sys.version_info.minor}")
HEAVY = ("numpy", "scipy", "pyarrow")


@dataclass(frozen=True)
class Service:
    name: str
    base: str
    entrypoint: str  # module (Batch, run with -m) or module.function (Lambda handler)
    template_resource: str
    heavy: tuple[str, ...] = ()  # the numeric libraries a Lambda image does need

    @property
    def dockerfile(self) -> Path:
        return ROOT / "services" / self.name / "Dockerfile"

    @property
    def is_lambda(self) -> bool:
        return self.base in (LAMBDA_BASE, LAMBDA_312_BASE)


SERVICES = [
    Service("sharder", BATCH_BASE, "services.sharder.main", "SharderJobDefinition"),
    Service("worker", BATCH_BASE, "services.worker.main", "WorkerJobDefinition"),
    Service("collator", BATCH_BASE, "services.collator.main", "CollatorJobDefinition"),
    Service("tracker", LAMBDA_BASE, "services.tracker.handler.lambda_handler", "TrackerFunction"),
    Service("inference", LAMBDA_312_BASE, "services.inference.handler.lambda_handler", "InferenceFunction", heavy=("numpy",)),
]
IDS = [s.name for s in SERVICES]


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_hadolint_finds_nothing(service: Service) -> None:
    result = subprocess.run([tool("hadolint"), str(service.dockerfile)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_final_image_has_the_base_and_runs_the_templates_entrypoint(service: Service) -> None:
    final = read_stages(service.dockerfile)[-1]
    assert final.base == service.base
    command = json.loads(final.all("CMD")[-1])
    props = TEMPLATE[service.template_resource]["Properties"]
    if service.is_lambda:
        assert command == [service.entrypoint] == props["ImageConfig"]["Command"]
        assert props["PackageType"] == "Image"
    else:
        assert command == ["python", "-m", service.entrypoint] == props["ContainerProperties"]["Command"]
        assert final.all("USER") and final.all("USER")[-1] not in ("root", "0")


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_every_copy_source_is_in_the_build_context(service: Service) -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for stage in read_stages(service.dockerfile):
        for sources, _ in copies(stage):
            for source in sources:
                assert (ROOT / source).exists(), f"{service.dockerfile}: COPY {source} does not exist"
                assert Path(source).parts[0] not in ignored, f"{source} is left out of the build context"


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_image_packages_install_for_its_platform_and_the_entrypoint_imports(service: Service, work_dir: Path) -> None:
    stages = read_stages(service.dockerfile)
    final = stages[-1]
    site = installed_site(build_stage_of(stages), PLATFORM[service.base], work_dir)
    if PLATFORM[service.base][1] != HOST[1]:  # installable there; imported here, with this Python's wheels
        site = installed_site(build_stage_of(stages), HOST, work_dir)
    app = work_dir / f"app-{service.name}"
    shutil.rmtree(app, ignore_errors=True)
    for sources, destination in copies(final):  # replay the final stage's COPY of sources
        target = app / Path(destination.replace("${LAMBDA_TASK_ROOT}", "").lstrip("/"))
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, target / src.name)
    module, function = (service.entrypoint.rsplit(".", 1) if service.is_lambda else (service.entrypoint, "main"))
    probe = (
        "import importlib, json, sys; "
        f"m = importlib.import_module({module!r}); "
        f"print(json.dumps({{'callable': callable(getattr(m, {function!r}, None)), "
        f"'heavy': [h for h in {HEAVY!r} if h in sys.modules]}}))"
    )
    # -S: no site-packages, so only the image's packages and copied sources are importable
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{site}{os.pathsep}{app}", "SCENGRID_LOG_FILE": ""}
    result = subprocess.run([sys.executable, "-S", "-c", probe], cwd=work_dir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["callable"]
    if service.is_lambda:  # they are left out of the Lambda images: see their Dockerfile
        assert seen["heavy"] == list(service.heavy)
        assert not any((site / h).exists() for h in HEAVY if h not in service.heavy)

