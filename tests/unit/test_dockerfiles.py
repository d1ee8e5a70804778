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

from scengrid.local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "infra" / "template.yaml")["Resources"]
BATCH_BASE = "python:3.11-slim-bookworm"
LAMBDA_BASE = "public.ecr.aws/lambda/python:3.11"
LAMBDA_312_BASE = "public.ecr.aws/lambda/python:3.12"
# The platform tag and Python each base image has: Debian bookworm has glibc 2.36; the Lambda
# python3.11 image is Amazon Linux 2 (glibc 2.26, and 2_17 is the closest tag uv knows below
# it); the python3.12 one is Amazon Linux 2023 (glibc 2.34).
PLATFORM = {
    BATCH_BASE: ("x86_64-manylinux_2_36", "3.11"),
    LAMBDA_BASE: ("x86_64-manylinux_2_17", "3.11"),
    LAMBDA_312_BASE: ("x86_64-manylinux_2_34", "3.12"),
}
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


# ---------------------------------------------------------------- a small Dockerfile reader
@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def read_stages(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD of the build context (not ``--from``)."""
    out = []
    for args in stage.all("COPY") + stage.all("ADD"):
        if args.startswith("--from"):
            continue
        parts = args.split()
        out.append((parts[:-1], parts[-1]))
    return out


def build_stage_of(stages: list[Stage]) -> Stage:
    """The stage whose installed packages the final image copies."""
    final = stages[-1]
    names = {s.name: s for s in stages if s.name}
    sources = [a.split()[0].split("=", 1)[1] for a in final.all("COPY") if a.startswith("--from=")]
    return next(names[s] for s in sources if s in names and names[s].all("RUN"))


# ---------------------------------------------------------------- tools
def tool(name: str) -> str:
    for candidate in (Path(sys.executable).parent / name, ROOT / ".tools" / "bin" / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed (make venv)"
    return found


_sites: dict[tuple, Path] = {}


def installed_site(build: Stage, platform: tuple[str, str], tmp: Path) -> Path:
    """The packages of an image: the build stage's RUN replayed command by command in a copy
    of its build context, with every install and resolution aimed at the image's platform
    and Python, and into a target folder (the image's venv or /opt/site)."""
    key = (build.base, platform, tuple(build.all("RUN")))
    if key in _sites:
        return _sites[key]
    context, site = tmp / f"context-{len(_sites)}", tmp / f"site-{len(_sites)}"
    for sources, destination in copies(build):
        for source in sources:
            src, dst = ROOT / source, context / destination
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dst / src.name)
    uv = tool("uv")
    for command in " && ".join(build.all("RUN")).split(" && "):
        words = command.split()
        if words[:2] == ["uv", "venv"]:
            continue  # the image's virtualenv: here the packages go to a target folder
        command = command.replace("--python /opt/venv/bin/python", "--target /opt/site").replace("/opt/site", str(site))
        if words[:3] in (["uv", "pip", "install"], ["uv", "pip", "compile"]):
            command += f" --python-platform {platform[0]} --python-version {platform[1]}"
        if words[0] == "uv":
            command = f"{uv} {command[3:]}"
        subprocess.run(command, shell=True, cwd=context, check=True, capture_output=True)  # noqa: S602 - the Dockerfile's own RUN
    _sites[key] = site
    return site


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

