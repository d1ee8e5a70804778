"""The planner's simulation against hand-computed cases, and its command (offline, or without
credentials; tests/integration/test_plan_capacity.py reads a stack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scengrid.plan_parameters import PlanParameters
from scengrid_cli.planning.plan import plan_run, subnet_advice
from scengrid_cli.planning.simulate import Layout, _submission_offsets, simulate, simulate_one_task_per_shard

FIXED = PlanParameters(start_latency_sigma=0, start_latency_median_s=45, spot_interruptions_per_hour=0)


def run(layout: Layout, params: PlanParameters = FIXED):  # noqa: ANN201
    return simulate(layout, params, np.random.default_rng(0))


def test_no_interruptions_two_waves() -> None:
    # 5 tasks up at 45 s; 10 shards of 100 s: two each, done at 245 s; each task billed 245 s
    outcome = run(Layout(shards=10, shard_seconds=100, tasks=5, spot=False))
    assert (outcome.wall_s, outcome.task_seconds, outcome.interruptions) == (245.0, 1225.0, 0)


def test_one_wave_idle_tasks_stop_at_once() -> None:
    # 3 shards for 5 tasks: 3 tasks run 45 + 100 s; 2 find the queue empty at 45 s
    outcome = run(Layout(shards=3, shard_seconds=100, tasks=5, spot=False))
    assert (outcome.wall_s, outcome.task_seconds) == (145.0, 3 * 145 + 2 * 45)


def test_one_task_per_shard_closed_form_agrees_with_the_simulation() -> None:
    layout = Layout(shards=10, shard_seconds=100, tasks=10, spot=False)
    assert simulate_one_task_per_shard(layout, FIXED, np.random.default_rng(0)) == run(layout)


def test_array_jobs_split_above_ten_thousand_children() -> None:
    offsets = _submission_offsets(25_000, FIXED)
    starts = sorted(set(offsets))
    assert [offsets.count(t) for t in starts] == [10_000, 10_000, 5_000]
    assert starts == [0.0, 1 / 50, 2 / 50]  # SubmitJob at 50 per second
    assert plan_run(1_000_000, 40, 25_000, 1e-4, FIXED).run.array_jobs == 3


def test_reclaims_add_rework_and_replacement_tasks() -> None:
    spot = FIXED.model_copy(update={"spot_interruptions_per_hour": 30.0})  # one per 2 minutes
    outcome = simulate(Layout(shards=40, shard_seconds=60, tasks=4, spot=True), spot, np.random.default_rng(1))
    assert outcome.interruptions > 0 and outcome.reworked_seconds > 0
    assert outcome.wall_s > 45 + 10 * 60  # more than the clean 10 waves


def test_subnet_advice() -> None:
    assert subnet_advice(12_000, FIXED).fits_default
    big = subnet_advice(60_000, FIXED)
    assert not big.fits_default and big.prefix == 17 and "NOT enough" in big.advice


def plan_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scengrid_cli.cli", "plan", *args], capture_output=True, text=True, env=env)


def write_spec(path: Path, text: str = "scenarios: {count: 1000000, seed: 1}\nworkers: 50\nshard_size: 50000\n") -> Path:
    path.write_text(text)
    return path


def test_plan_command_prints_sizes_and_refuses_over_budget(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml")
    base = [str(spec), "--seconds-per-scenario", "0.0002", "--offline"]
    done = plan_command(*base, "--scenarios", "1000000", "10000000", "100000000", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    plans = document["plans"]
    assert [p["scenarios"] for p in plans] == [1_000_000, 10_000_000, 100_000_000]
    assert all(p["seed"]["cost_usd_mean"] > p["run"]["cost_usd_mean"] for p in plans)
    # the sizes are alternatives: each is checked against the shared capacity on its own
    assert [o["runs"][0]["label"] for o in document["overlaps"]] == [f"spec.yaml ({p['scenarios']:,} scenarios)" for p in plans]
    assert document["shared_capacity"]["notes"] == ["--offline: nothing was read from AWS; the figures are the defaults"]
    refused = plan_command(*base, "--max-cost", "0.001")
    assert refused.returncode == 3 and "above --max-cost" in refused.stderr


def test_several_specs_and_copies_are_planned_at_once(tmp_path: Path) -> None:
    a = write_spec(tmp_path / "a.yaml")
    b = write_spec(tmp_path / "b.yaml", "scenarios: {count: 200000, seed: 2}\nworkers: 4\nshard_size: 50000\n")
    done = plan_command(str(a), str(b), "--seconds-per-scenario", "0.0002", "--offline", "--concurrent", "3", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    [overlap] = document["overlaps"]
    by_spec = {p["spec"]: p["run"] for p in document["plans"]}
    assert [(r["label"], r["copies"], r["workers"]) for r in overlap["runs"]] == [
        ("a.yaml (1,000,000 scenarios)", 3, by_spec["a.yaml"]["peak_tasks"]),
        ("b.yaml (200,000 scenarios)", 3, by_spec["b.yaml"]["peak_tasks"]),
    ]
    assert overlap["peak_tasks"] == 3 * (by_spec["a.yaml"]["peak_tasks"] + by_spec["b.yaml"]["peak_tasks"])
    assert overlap["peak_vcpus"] == 2 * overlap["peak_tasks"] and overlap["fits"]  # 2-vCPU workers, well within 512
    assert overlap["cost_usd_p90"] == pytest.approx(3 * (by_spec["a.yaml"]["cost_usd_p90"] + by_spec["b.yaml"]["cost_usd_p90"]))
    # --max-cost counts every copy: above one copy's p90 cost, below the three's
    one = by_spec["a.yaml"]["cost_usd_p90"] + by_spec["b.yaml"]["cost_usd_p90"]
    refused = plan_command(str(a), str(b), "--seconds-per-scenario", "0.0002", "--offline", "--concurrent", "3",
                           "--max-cost", str(1.5 * one))
    assert refused.returncode == 3 and "of the runs planned at once is above --max-cost" in refused.stderr


def test_runs_beyond_the_shared_capacity_are_warned_about(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "wide.yaml", "scenarios: {count: 4000000, seed: 1}\nworkers: 200\nshard_size: 10000\n")
    done = plan_command(str(spec), "--seconds-per-scenario", "0.0002", "--offline", "--concurrent", "2")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # the console wraps long lines
    assert "warning: vCPUs: the 2 runs planned at once need 800 vCPUs" in text and "MAX_VCPUS=800 make deploy" in text
    assert "Fargate Spot vCPUs (quota L-36FBB829)" in text and "12,273 in 3 subnets" in text


def test_without_credentials_the_defaults_are_shown(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SCENGRID_"))}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    done = plan_command(str(spec), "--seconds-per-scenario", "0.0002", "--json", env=env)
    assert done.returncode == 0, done.stderr
    shared = json.loads(done.stdout)["shared_capacity"]
    assert shared["notes"][0].startswith("no AWS credentials") and shared["account"] is None
    assert shared["spot_quota"]["source"] == "assumed" and shared["environments_from"] == "the template's defaults"


@pytest.mark.parametrize(("options", "named"), [
    (["--scenarios", "1000", "2000"], "--scenarios"),
    (["--concurrent", "0"], "--concurrent"),
    (["--concurrent", "2", "--submit"], "--submit"),
])
def test_contradicting_options_are_named(tmp_path: Path, options: list[str], named: str) -> None:
    specs = [str(write_spec(tmp_path / "a.yaml"))] + ([str(write_spec(tmp_path / "b.yaml"))] if named == "--scenarios" else [])
    done = plan_command(*specs, "--seconds-per-scenario", "1e-4", "--offline", *options)
    assert done.returncode == 2 and named in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("bad", ["nonsense", "no_such_param=1", "fargate_spot_discount=2"])
def test_bad_parameters_are_named(tmp_path: Path, bad: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("scenarios: {count: 1000}\n")
    done = plan_command(str(spec), "--seconds-per-scenario", "1e-4", "--offline", "--param", bad)
    assert done.returncode == 2 and "--param" in done.stderr and "Traceback" not in done.stderr
