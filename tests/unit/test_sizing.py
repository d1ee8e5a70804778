"""Automatic sizing against hand-computed cases: the local rules (about 1 s of model time per
shard, one worker per core, at most 200 shards, whole waves) and the AWS rules (shard duration
sqrt(2·overhead/hazard), work per task of several start latencies, array jobs of 10,000)."""

from __future__ import annotations

import math

import pytest

from scengrid import sizing
from scengrid.models import load_model
from scengrid.plan_parameters import PlanParameters
from scengrid.settings import cpu_count
from scengrid.spec import GeneratedScenarios, RunSpec

PER = 12.5e-6  # 80,000 scenarios/s on one core


@pytest.mark.parametrize(
    ("count", "shards", "size"),
    [
        (1_000_000, 8, 125_000),  # 6.25 s over 2 cores -> 7 shards -> whole waves of 2 -> 8
        (100_000, 4, 25_000),  # 0.625 s -> 1 shard -> at least 2 per worker
        (100_000_000, 200, 500_000),  # 625 shards -> at most 200
        (3_000, 3, 1_000),  # at least 1,000 scenarios per shard
        (150, 1, 150),  # or all of them
    ],
)
def test_local_sizing(count: int, shards: int, size: int) -> None:
    chosen = sizing.size_local(count, PER, None, cores=2)
    assert (chosen.shards, chosen.shard_size, chosen.workers) == (shards, size, min(2, shards))
    assert chosen.shards == math.ceil(count / chosen.shard_size)
    workers = "1 worker" if shards == 1 else "2 workers"
    assert chosen.reasons[-1] == f"→ {shards:,} shard{'s' * (shards > 1)} of {size:,} scenarios on {workers}"


def test_local_sizing_uses_every_core() -> None:
    # 8 cores: 8 workers; 12.5 s of model time over 8 cores -> 2 shards -> 2 per worker -> 16
    chosen = sizing.size_local(8_000_000, PER, None, cores=8)
    assert (chosen.workers, chosen.shards, chosen.shard_size) == (8, 16, 500_000)
    assert "workers: 8, one per core (a local worker task runs one model process)" in chosen.reasons
    # fewer workers than cores: the model time is spread over the workers only
    chosen = sizing.size_local(8_000_000, PER, 2, cores=8)
    assert "50.0 s of model time over 2 cores" in chosen.reasons
    assert (chosen.workers, chosen.shards) == (2, 50)


def test_aws_shard_duration_balances_overhead_and_spot_rework() -> None:
    params = PlanParameters()  # 0.8 s per shard, 0.05 reclaims per task-hour, 2 vCPUs, 45 s starts
    shard_s = math.sqrt(2 * 0.8 / (0.05 / 3600))  # 339.4 s
    task_s = 100_000_000 * 1e-3 / 1.9  # 52,631.6 task-seconds
    workers = math.ceil(task_s / (2 * shard_s))  # 78: two shards of work each (> 4 starts of 45 s)
    shards = math.ceil(task_s / shard_s)  # 156 = 2 waves of 78
    chosen = sizing.size_aws(100_000_000, 1e-3, None, params)
    assert (chosen.workers, chosen.shards, chosen.shard_size) == (workers, shards, math.ceil(100_000_000 / shards))
    assert any("339 s" in reason for reason in chosen.reasons)


def test_aws_cheap_model_runs_on_few_tasks_in_shards_memory_can_hold() -> None:
    # 66 task-seconds: one task (4 starts of 45 s of work each); shards of at most 1,000,000 scenarios
    chosen = sizing.size_aws(10_000_000, PER, None, PlanParameters())
    assert (chosen.workers, chosen.shards, chosen.shard_size) == (1, 10, 1_000_000)
    # 658 task-seconds in shards of 6.6 s: 180 s of work per task -> 4 tasks, 100 shards
    chosen = sizing.size_aws(100_000_000, PER, None, PlanParameters())
    assert (chosen.workers, chosen.shards, chosen.shard_size) == (4, 100, 1_000_000)


def test_aws_many_workers_are_split_into_array_jobs() -> None:
    chosen = sizing.size_aws(50_000_000, 0.5, 25_000, PlanParameters())
    assert chosen.workers == 25_000 and chosen.shards == 50_000
    assert "3 array jobs: at most 10,000 children each" in chosen.reasons


def test_auto_workers_are_capped_by_the_subnets() -> None:
    assert sizing.size_aws(100_000_000, 0.5, None, PlanParameters()).workers == sizing.AWS_MAX_WORKERS


def test_a_spec_that_gives_both_numbers_is_not_calibrated() -> None:
    spec = RunSpec(scenarios=GeneratedScenarios(count=10_000), shard_size=3_000, workers=3)
    chosen = sizing.choose(spec, load_model("linear", {}), "local")
    assert (chosen.shards, chosen.shard_size, chosen.workers, chosen.seconds_per_scenario) == (4, 3_000, 3, None)


def test_choose_calibrates_the_models_own_cost() -> None:
    spec = RunSpec(scenarios=GeneratedScenarios(count=400_000, seed=1), shard_size=50_000)
    model = load_model(spec.model.name, spec.model.params)
    chosen = sizing.choose(spec, model, "local")
    assert chosen.shard_size == 50_000 and chosen.shards == 8 and chosen.workers == min(cpu_count(), 8)  # one per core
    assert 1e-7 < chosen.seconds_per_scenario < 1e-3
    assert chosen.reasons[0].startswith("model: ") and "calibrated" in chosen.reasons[0]


@pytest.mark.parametrize("count", [300, 400_000])
def test_calibration_measures_at_least_one_block_however_slow_the_machine(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # every batch "takes too long": calibration still goes on to one block (or the whole source)
    monkeypatch.setattr(sizing, "CALIBRATION_SECONDS", 0.0)
    source = GeneratedScenarios(count=count, seed=1)
    per = sizing.calibrate(load_model("portfolio", RunSpec(scenarios=source).model.params), source)
    assert 1e-7 < per < 1e-2  # ~15 µs here; one measured batch of 300 can meet a stall of a loaded machine

