"""The planner's simulation against hand-computed cases, and its command."""

from __future__ import annotations

import json
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


def test_plan_command_prints_sizes_and_refuses_over_budget(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("scenarios: {count: 1000000, seed: 1}\nworkers: 50\nshard_size: 50000\n")
    base = [sys.executable, "-m", "scengrid_cli.cli", "plan", str(spec), "--seconds-per-scenario", "0.0002"]
    done = subprocess.run([*base, "--scenarios", "1000000", "10000000", "100000000", "--json"], capture_output=True, text=True, check=True)
    plans = json.loads(done.stdout)
    assert [p["scenarios"] for p in plans] == [1_000_000, 10_000_000, 100_000_000]
    assert all(p["seed"]["cost_usd_mean"] > p["run"]["cost_usd_mean"] for p in plans)
    refused = subprocess.run([*base, "--max-cost", "0.001"], capture_output=True, text=True)
    assert refused.returncode == 3 and "above --max-cost" in refused.stderr


@pytest.mark.parametrize("bad", ["nonsense", "no_such_param=1", "fargate_spot_discount=2"])
def test_bad_parameters_are_named(tmp_path: Path, bad: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("scenarios: {count: 1000}\n")
    done = subprocess.run([sys.executable, "-m", "scengrid_cli.cli", "plan", str(spec), "--seconds-per-scenario", "1e-4", "--param", bad],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--param" in done.stderr and "Traceback" not in done.stderr
