"""A quant's model from scaffold to the whole pipeline, as a new user runs it, every step a
``scengrid`` command in a process of its own: ``scengrid new-model --per-scenario`` in a folder
outside the repository; the package installed into the venv; ``scengrid model check`` and the
package's own test pass; ``scengrid demo`` in two shard sizes gives bit-identical results, and
the run's summary and report record the model's package; then
(where a container engine and scengrid's images are) ``scengrid image build`` and ``scengrid
demo --containers --model-image`` run it in its images, with the same bits again, the summary
and report recording the image with its digest.

The package is installed (editable, with uv) at the start and uninstalled at the end; the model's
name is unique to the session, and its images are removed at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scengrid_cli.local.container_jobs import ContainerEngineMissing, container_engine, image_exists
from tests.containers.engine import unavailable

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
UV = ROOT / ".tools" / "bin" / "uv"
SCENARIOS = 12_000
COLUMNS = ["scenario_id", "pnl", "pnl_rates", "pnl_equity", "pnl_fx"]
BATCH_SERVICES = ("sharder", "worker", "collator")


def scengrid(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """The command as a user types it (a fresh process: it sees the installed package)."""
    result = subprocess.run([str(PYTHON), "-m", "scengrid_cli.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"scengrid {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def last_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def pnl_table(run: dict) -> pa.Table:
    """The run's P&L dataset (every Parquet file under pnl/), in scenario order."""
    table = pq.read_table(Path(run["results_dir"]) / "pnl")
    return table.sort_by("scenario_id").select(COLUMNS)


def same_bits(a: pa.Table, b: pa.Table) -> bool:
    return all(np.asarray(a.column(c)).tobytes() == np.asarray(b.column(c)).tobytes() for c in COLUMNS)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A new model package, outside the repository, installed into the venv for the module."""
    if not UV.is_file():
        pytest.fail(f"{UV} is missing: run `make venv`")
    name = f"acme-e2e-{uuid.uuid4().hex[:6]}"
    where = tmp_path_factory.mktemp("outside-the-repo")
    assert ROOT not in where.parents
    scengrid("new-model", name, "--per-scenario", cwd=where)
    folder = where / name
    install = subprocess.run([str(UV), "pip", "install", "--python", str(PYTHON), "-e", str(folder)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    try:
        yield name, folder
    finally:
        subprocess.run([str(UV), "pip", "uninstall", "--python", str(PYTHON), name], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def first_run(package: tuple[str, Path]) -> dict:
    name, folder = package
    return last_json(scengrid("demo", "--model", name, "--scenarios", str(SCENARIOS), "--shard-size", "3000", "--workers", "2",
                              "--out", str(folder / "runs"), "--json", cwd=folder))


def test_a_scaffolded_per_scenario_model_passes_its_checks_and_runs_bit_identically_in_two_shard_sizes(
        package: tuple[str, Path], first_run: dict) -> None:
    name, folder = package
    report = last_json(scengrid("model", "check", name, "--json", cwd=folder))
    assert report["ok"] and report["package"] == f"{name} 0.1.0", report
    assert report["plan_1m"]["scenarios"] == 1_000_000 and report["seconds_per_scenario"] > 0
    own_test = subprocess.run([str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=folder,
                              capture_output=True, text=True, timeout=300)
    assert own_test.returncode == 0, own_test.stdout[-3000:]
    evaluated = scengrid("model", "eval", "--model", name, "--generate", "3000", "--seed", "42", "--out", str(folder / "eval.parquet"), cwd=folder)
    assert "3,000 scenarios" in evaluated.stderr

    second = last_json(scengrid("demo", "--model", name, "--scenarios", str(SCENARIOS), "--shard-size", "5000", "--workers", "2",
                                "--out", str(folder / "runs"), "--json", cwd=folder))
    assert (first_run["status"], second["status"]) == ("COMPLETE", "COMPLETE")
    assert (first_run["shards"], second["shards"]) == (4, 3)
    a, b = pnl_table(first_run), pnl_table(second)
    assert a.num_rows == SCENARIOS and np.array_equal(a.column("scenario_id"), np.arange(SCENARIOS))
    assert same_bits(a, b)
    assert first_run["var_99"] == second["var_99"]
    # what the run records: the model's package (from the shards' metadata); no image for processes
    summary = json.loads((Path(first_run["results_dir"]) / "summary.json").read_text())
    assert summary["model_package"] == f"{name} 0.1.0" and summary["image"] is None
    assert f"{name} 0.1.0" in (Path(first_run["results_dir"]) / "report.html").read_text()
    # the model's own columns, from the function's mapping; the attribution adds up
    parts = sum(np.asarray(a.column(c)) for c in ("pnl_rates", "pnl_equity", "pnl_fx"))
    assert np.allclose(parts, np.asarray(a.column("pnl")), rtol=1e-12, atol=1e-9)


def test_the_package_built_into_its_images_runs_as_containers_with_the_same_bits(package: tuple[str, Path], first_run: dict) -> None:
    name, folder = package
    try:
        engine = container_engine()
    except ContainerEngineMissing as exc:
        unavailable(str(exc))
    missing = [f"scengrid-{s}:local" for s in BATCH_SERVICES if not image_exists(engine, f"scengrid-{s}:local")]
    if missing:
        unavailable(f"{', '.join(missing)} missing: build them with `make images`")
    for service in BATCH_SERVICES:  # scengrid's own images, brought up to this checkout (cached layers: quick when current)
        built = subprocess.run([str(ROOT / "scripts" / "build-image"), service], capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stderr[-3000:]
    images = last_json(scengrid("image", "build", str(folder), "--json", cwd=folder, timeout=900))
    tag = images["model_image_tag"]
    try:
        assert tag == f"model-{name}-0.1.0"
        assert {i["image"] for i in images["images"]} == {f"scengrid-{s}:{tag}" for s in BATCH_SERVICES}
        label = subprocess.run([engine, "image", "inspect", "--format", '{{index .Config.Labels "org.scengrid.model-package"}}',
                                f"scengrid-worker:{tag}"], capture_output=True, text=True)
        assert label.stdout.strip() == f"{name} 0.1.0"
        run = last_json(scengrid("demo", "--model", name, "--scenarios", str(SCENARIOS), "--shard-size", "3000", "--workers", "2",
                                 "--containers", "--model-image", tag, "--out", str(folder / "runs"), "--json", cwd=folder))
        assert run["status"] == "COMPLETE", run.get("reason")
        assert same_bits(pnl_table(run), pnl_table(first_run))
        summary = json.loads((Path(run["results_dir"]) / "summary.json").read_text())
        assert summary["model_package"] == f"{name} 0.1.0"
        assert summary["image"].startswith(f"scengrid-worker:{tag}@sha256:"), summary["image"]  # the image, with its digest
        assert summary["image"] in (Path(run["results_dir"]) / "report.html").read_text()
        logs = Path(run["results_dir"]) / "logs"  # each job's log starts with its `<engine> run …`
        for job, service in (("shard", "sharder"), ("work", "worker"), ("collate", "collator")):
            ran = "".join(p.read_text(errors="replace") for p in logs.glob(f"scengrid-{job}-*.log"))
            assert f" scengrid-{service}:{tag} " in ran, f"the {service} did not run its model image"
            assert "--env SCENGRID_IMAGE" in ran  # the image the job ran, which its shard outputs record
    finally:
        subprocess.run([engine, "rmi", "--force", *(f"scengrid-{s}:{tag}" for s in BATCH_SERVICES)], capture_output=True)


def test_an_image_whose_model_does_not_load_is_refused_saying_why(tmp_path: Path) -> None:
    """The package imports a library it does not declare: the build checks the models load in the
    image (offline, as its user) and refuses it, naming the missing module."""
    try:
        engine = container_engine()
    except ContainerEngineMissing as exc:
        unavailable(str(exc))
    if not image_exists(engine, "scengrid-worker:local"):
        unavailable("scengrid-worker:local missing: build it with `make images`")
    name = f"acme-broken-{uuid.uuid4().hex[:6]}"
    scengrid("new-model", name, "--per-scenario", cwd=tmp_path)
    model = tmp_path / name / name.replace("-", "_") / "model.py"
    model.write_text(model.read_text().replace("import math\n", "import math\nimport acme_pricing_lib  # noqa: F401\n", 1))
    result = subprocess.run([str(PYTHON), "-m", "scengrid_cli.cli", "image", "build", str(tmp_path / name), "--services", "worker"],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"{name} does not load in scengrid-worker:model-{name}-0.1.0: ModuleNotFoundError: No module named 'acme_pricing_lib'" in result.stderr
    assert "add it to the package's pyproject.toml" in result.stderr
    assert not image_exists(engine, f"scengrid-worker:model-{name}-0.1.0")
