"""Each service's Dockerfile: hadolint finds nothing; every stage starts from the one base image
(no other registry image, no ``COPY --from`` an image); uv comes from PyPI at the Makefile's
version; a stage that runs uv declares the build argument that lets it trust the host's CA
(scripts/build-image); the final image runs as a non-root user the entrypoint the template runs
(Batch: the job definition's command; Lambda: awslambdaric with the handler of each function
the template serves from that image); every COPY source exists in the build context (the
repository root); and the image's packages, installed the way the Dockerfile installs them for
the image's platform, are enough for each entrypoint to import, with nothing else on the path.
No container engine is needed (tests/containers/ runs the built images)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scengrid_cli.local.cfn import load_template
from tests.dockerfile_reader import (
    BASE,
    PLATFORM,
    Stage,
    build_stage_of,
    copies,
    external_base,
    installed_site,
    lineage,
    read_stages,
    tool,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "infra" / "template.yaml")["Resources"]
HOST = ("x86_64-manylinux_2_36", f"{sys.version_info.major}.{sys.version_info.minor}")
MAKEFILE_UV = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
LAMBDA_ENTRYPOINT = ["/opt/venv/bin/python", "-m", "awslambdaric"]
# Large libraries of the library's locked install that an image may leave out.
OPTIONAL = ("scipy", "pyarrow")


@dataclass(frozen=True)
class Service:
    name: str
    entrypoint: str  # module (Batch, run with -m) or module.function (the image's default Lambda handler)
    template_resource: str  # the job definition, or the function whose handler is the image's CMD
    is_lambda: bool = False
    left_out: tuple[str, ...] = ()  # of OPTIONAL, what the image does not install

    @property
    def dockerfile(self) -> Path:
        return ROOT / "services" / self.name / "Dockerfile"

    def handlers(self) -> list[str]:
        """Each handler the template's functions run from this service's image (ImageConfig.Command)."""
        repository = f"${{{self.name.capitalize()}Repository.RepositoryUri}}"
        found = []
        for resource in TEMPLATE.values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::Function" and props.get("PackageType") == "Image":
                if json.dumps(props["Code"]["ImageUri"]).count(repository):
                    found += props["ImageConfig"]["Command"]
        return sorted(found)


SERVICES = [
    Service("sharder", "services.sharder.main", "SharderJobDefinition"),
    Service("worker", "services.worker.main", "WorkerJobDefinition"),
    Service("collator", "services.collator.main", "CollatorJobDefinition"),
    Service("tracker", "services.tracker.handler.lambda_handler", "TrackerFunction", is_lambda=True),
    Service("inference", "services.inference.handler.lambda_handler", "InferenceFunction", is_lambda=True,
            left_out=OPTIONAL),
]
IDS = [s.name for s in SERVICES]


def runs_uv(stage: Stage) -> bool:
    return any(re.search(r"(^|&&)\s*uv\s", run) for run in stage.all("RUN"))


def downloads_with_uv(stage: Stage) -> bool:
    """It resolves or installs from PyPI (an export of the lock needs no network)."""
    return any(re.search(r"(^|&&)\s*uv pip (install|compile)\s", run) for run in stage.all("RUN"))


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_hadolint_finds_nothing(service: Service) -> None:
    result = subprocess.run([tool("hadolint"), str(service.dockerfile)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_every_stage_starts_from_the_one_base_and_copies_only_from_stages(service: Service) -> None:
    """The base is the only image a build needs (scripts/base-image provides it where registries
    cannot be reached): no other FROM, and no COPY --from an image such as ghcr.io/astral-sh/uv."""
    stages = read_stages(service.dockerfile)
    names = {s.name for s in stages if s.name}
    for stage in stages:
        assert external_base(stages, stage) == BASE, f"{stage.name or 'final'} starts from {stage.base}"
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                assert args.split()[0].split("=", 1)[1] in names, f"COPY {args}: copy from a stage, not an image"


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_uv_comes_from_pypi_at_the_makefiles_version(service: Service) -> None:
    assert MAKEFILE_UV, "the Makefile sets UV_VERSION"
    stages = read_stages(service.dockerfile)
    for stage in stages:
        if "UV_VERSION" in stage.args():
            assert stage.args()["UV_VERSION"] == MAKEFILE_UV.group(1), f"{service.dockerfile}: ARG UV_VERSION"
        if runs_uv(stage):
            installs = [run for s in lineage(stages, stage) for run in s.all("RUN") if "pip install" in run]
            assert any('"uv==${UV_VERSION}"' in run for run in installs), f"{stage.name}: uv is not pip-installed"
        if downloads_with_uv(stage):  # uv trusts only its own roots unless told: scripts/build-image passes the host's bundle
            assert "SSL_CERT_FILE" in stage.args() and stage.args()["SSL_CERT_FILE"] is None, stage.name


def test_make_images_builds_every_service_image_with_the_makefiles_uv() -> None:
    recipe = subprocess.run(["make", "-n", "images"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    built = re.search(r"for service in ([^;]*);", recipe)
    assert built and sorted(built.group(1).split()) == sorted(p.parent.name for p in (ROOT / "services").glob("*/Dockerfile"))
    assert f"--build-arg UV_VERSION={MAKEFILE_UV.group(1)}" in recipe
    assert "scripts/base-image" in recipe and "scripts/container-engine" in recipe


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_final_image_runs_the_templates_entrypoint_as_a_non_root_user(service: Service) -> None:
    final = read_stages(service.dockerfile)[-1]
    assert final.base == BASE
    command = json.loads(final.all("CMD")[-1])
    props = TEMPLATE[service.template_resource]["Properties"]
    if service.is_lambda:
        assert json.loads(final.all("ENTRYPOINT")[-1]) == LAMBDA_ENTRYPOINT  # AWS's alternative base image route
        assert command == [service.entrypoint] == props["ImageConfig"]["Command"]
        assert props["PackageType"] == "Image"
        assert service.entrypoint in service.handlers()
    else:
        assert not final.all("ENTRYPOINT")
        assert command == ["python", "-m", service.entrypoint] == props["ContainerProperties"]["Command"]
    assert final.all("USER") and final.all("USER")[-1] not in ("root", "0")
    for copy in final.all("COPY"):  # the library goes into the venv's site-packages: the base's Python
        assert set(re.findall(r"python(3\.\d+)", copy)) <= {PLATFORM[BASE][1]}, copy


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_nothing_is_compiled_at_run_time(service: Service) -> None:
    """Lambda's filesystem is read-only but /tmp, and a Batch job should not pay for it either:
    the packages are installed with their bytecode and the service's sources compiled."""
    stages = read_stages(service.dockerfile)
    final = stages[-1]
    assert final.env().get("PYTHONDONTWRITEBYTECODE") == "1"
    assert build_stage_of(stages).env().get("UV_COMPILE_BYTECODE") == "1"
    assert any("compileall" in run and "services" in run for run in final.all("RUN"))


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
def test_image_packages_install_for_its_platform_and_every_entrypoint_imports(service: Service, work_dir: Path) -> None:
    stages = read_stages(service.dockerfile)
    final, build = stages[-1], build_stage_of(stages)
    platform = PLATFORM[external_base(stages, build)]
    site = installed_site(stages, build, platform, work_dir)
    if platform[1] != HOST[1]:  # installable there; imported here, with this Python's wheels
        site = installed_site(stages, build, HOST, work_dir)
    app = work_dir / f"app-{service.name}"
    shutil.rmtree(app, ignore_errors=True)
    for sources, destination in copies(final):  # replay the final stage's COPY of sources
        target = app / Path(destination.lstrip("/"))
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, target / src.name)
    # Batch: the module's main(); Lambda: each handler the template names for this image, and
    # the runtime interface client that the entrypoint runs.
    entrypoints = service.handlers() if service.is_lambda else [f"{service.entrypoint}.main"]
    probe = (
        "import importlib, json, sys\n"
        f"callables = {{}}\n"
        f"for entry in {entrypoints!r}:\n"
        "    module, function = entry.rsplit('.', 1)\n"
        "    callables[entry] = callable(getattr(importlib.import_module(module), function, None))\n"
        + ("import awslambdaric.bootstrap, awslambdaric.__main__\n" if service.is_lambda else "")
        + f"print(json.dumps({{'callables': callables, 'optional': [m for m in {OPTIONAL!r} if m in sys.modules]}}))\n"
    )
    # -S: no site-packages, so only the image's packages and copied sources are importable
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{site}{os.pathsep}{app}", "SCENGRID_LOG_FILE": ""}
    result = subprocess.run([sys.executable, "-S", "-c", probe], cwd=work_dir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["callables"] == dict.fromkeys(entrypoints, True)
    for name in service.left_out:  # left out of the image: its entrypoints must not need it
        assert not (site / name).exists() and name not in seen["optional"], f"{service.name} installs or imports {name}"
