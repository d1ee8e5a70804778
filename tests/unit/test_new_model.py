"""``scengrid new-model`` and ``scengrid model eval --model``, as a user runs them: the
vectorised scaffold passes ``scengrid model check`` (its entry point seen through the
distribution's metadata, as an install writes it); bad input exits 2 saying what to fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.spec import GeneratedScenarios
from scengrid_cli.cli import main

ROOT = Path(__file__).resolve().parents[2]


def registered(package: Path) -> Path:
    """The package's distribution metadata beside it (what `pip install -e` would record)."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    info = package / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    entries = project["entry-points"]["scengrid.models"]
    (info / "entry_points.txt").write_text("[scengrid.models]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    return package


def test_the_vectorised_scaffold_is_a_package_whose_model_passes_the_check(tmp_path: Path) -> None:
    assert main(["new-model", "acme-book", "--dir", str(tmp_path / "acme-book")]) == 0
    package = tmp_path / "acme-book"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        ".dockerignore", "README.md", "acme_book/__init__.py", "acme_book/model.py", "pyproject.toml", "tests/test_model.py"]
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["scengrid.models"] == {"acme-book": "acme_book.model:Model"}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(registered(package)), str(ROOT)])}
    check = subprocess.run([sys.executable, "-m", "scengrid_cli.cli", "model", "check", "acme-book", "--params", '{"notional": 2e6}', "--json"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout.strip().splitlines()[-1])
    assert report["package"] == "acme-book 0.1.0" and report["ok"]


def test_the_per_scenario_scaffold_registers_the_function(tmp_path: Path) -> None:
    assert main(["new-model", "acme-swaps", "--per-scenario", "--dir", str(tmp_path / "p")]) == 0
    project = tomllib.loads((tmp_path / "p" / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["scengrid.models"] == {"acme-swaps": "acme_swaps.model:price"}
    assert "@scenario_function(factors=FACTORS" in (tmp_path / "p" / "acme_swaps" / "model.py").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["new-model", "Acme_Swaps"], "NAME: 'Acme_Swaps': use lowercase letters, digits and single dashes"),
        (["new-model", "acme", "--dir", "{full}"], "exists and is not an empty folder: choose another --dir"),
        (["model", "eval", "--generate", "10", "--out", "{tmp}/x.parquet"], "--model: name the registered model to evaluate"),
        (["model", "eval", "--model", "linear", "--portfolio", "b.json", "--generate", "10", "--out", "{tmp}/x.parquet"],
         "--portfolio: goes with the portfolio model, not 'linear'"),
        (["model", "eval", "--model", "nope", "--generate", "10", "--out", "{tmp}/x.parquet"], "no model named 'nope' is registered"),
        (["model", "check", "linear", "--params", "{{notional"], "--params: not JSON"),
        (["image", "build", "{tmp}"], "has no pyproject.toml: give the model package's folder"),
        (["image", "build", "{tmp}", "--services", "worker,web"], "--services: web: choose among sharder, worker, collator, tracker"),
        (["demo", "--model-image", "model-x-1"], "--model-image: goes with --containers"),
    ],
)
def test_bad_input_exits_2_saying_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], says: str) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    args = [a.format(tmp=tmp_path, full=tmp_path / "full") for a in args]
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert says in capsys.readouterr().err


def test_model_eval_runs_any_registered_model_with_its_params(tmp_path: Path) -> None:
    params = {"exposures": {"equity.SPX": 1e6, "rate.USD.5": -4e7}, "vols": {"equity.SPX": 0.012, "rate.USD.5": 0.0007}}
    out = tmp_path / "linear.parquet"
    assert main(["model", "eval", "--model", "linear", "--params", json.dumps(params), "--generate", "3000", "--seed", "5", "--out", str(out)]) == 0
    direct = evaluate_range(load_model("linear", params), GeneratedScenarios(count=3000, seed=5), 0, 3000)["pnl"]
    table = pq.read_table(out)
    assert table.column_names == ["scenario_id", "pnl"] and np.array_equal(table.column("pnl").to_numpy(), direct)
