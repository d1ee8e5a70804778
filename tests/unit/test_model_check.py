"""``scengrid model check``, run as a user runs it (a process of its own, the models registered
by an installed distribution's entry points): a sound model passes with exit 0; each flaw is
caught with exit 2 and a message that names it and says what to fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins import plugin_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plugin_path(tmp_path_factory.mktemp("plugins"))


def check(plugins: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "scengrid_cli.cli", "model", "check", *args, "--json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def failed(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["ok"] and "FAIL" in result.stderr
    return {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}


def test_a_sound_model_passes_with_its_cost_and_the_plan_of_a_million(plugins: Path) -> None:
    result = check(plugins, "linear")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] and [c["name"] for c in report["checks"]] == [
        "registered", "params", "factors", "outputs", "finite", "deterministic", "cost"]
    assert report["seconds_per_scenario"] > 0 and report["plan_1m"]["scenarios"] == 1_000_000
    assert report["plan_1m"]["cost_usd_mean"] > 0 and report["plan_1m"]["workers"] >= 1


@pytest.mark.parametrize(
    ("model", "check_name", "says"),
    [
        ("test-nondeterministic", "deterministic", ["'pnl' of scenario 0 differs evaluated again", "seeded"]),
        ("test-nan", "finite", ["column 'pnl' is nan for scenario", "NaN or inf", "guard the formula"]),
        ("test-wrong-length", "outputs", ["column 'pnl' has shape (1023,) for scenarios 0..1023, 1024 scenarios", "one value per scenario"]),
        ("test-no-pnl", "outputs", ["returned a mapping without 'pnl' for scenario 0 (keys: value)", "must hold the P&L under 'pnl'"]),
        ("test-unknown-factor", "outputs", ["failed on scenario 0", "shock['equity.SPXX'], which is not one of its factors",
                                            "did you mean 'equity.SPX'?", "Add it to factors= or fix the name"]),
        ("test-misnamed-factor", "factors", ["'eqity.SPX': unknown factor kind 'eqity' (did you mean equity.SPX?)"]),
    ],
)
def test_each_flaw_is_caught_with_what_to_fix(plugins: Path, model: str, check_name: str, says: list[str]) -> None:
    problems = failed(check(plugins, model))
    assert list(problems) == [check_name], problems
    for text in says:
        assert text in problems[check_name]


def test_an_unregistered_model_and_bad_params_say_what_to_do(plugins: Path) -> None:
    problems = failed(check(plugins, "acme-missing"))
    assert "no model named 'acme-missing' is registered" in problems["registered"]
    assert '[project.entry-points."scengrid.models"]' in problems["registered"]
    problems = failed(check(plugins, "linear", "--params", '{"exposures": {"equity.SPX": 1}, "vols": {"equity.SPX": -1}}'))
    assert "model.params" in problems["params"] and "vols must be positive" in problems["params"]
