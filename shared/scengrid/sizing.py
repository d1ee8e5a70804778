"""``shard_size: auto`` and ``workers: auto``: the shard count and the workers of a run, from
a quick calibration of the model's cost per scenario, a target shard duration and the limits
of the backend the run goes to. The sharder decides (it has the model at hand), records the
choice and its reasons in the manifest, and every later round reuses it.

Locally, the emulator's SQS slows as the queue deepens (SendMessageBatch: 12 ms at depth 0,
101 ms at 500, 452 ms at 2,000), so shards stay in the low hundreds; the local stack runs each
worker task as one process with one model process (its job slots are the cores), so a run gets
one worker per core, and their I/O interleaves with the others' compute.

On AWS, a shard pays a fixed overhead (SQS, S3, events) and a Spot reclaim loses on average
half the shard in flight: with overhead o and reclaim hazard h, the share of time lost,
o/d + h·d/2, is least at d = sqrt(2·o/h). A task pays its start latency once, so each task
gets work for several start latencies; an array job holds at most 10,000 children."""

from __future__ import annotations

import math
import time
from typing import Literal

from pydantic import BaseModel, Field

from scengrid.kernel import CHUNK, evaluate_range
from scengrid.models.base import ScenarioModel
from scengrid.plan_parameters import PlanParameters
from scengrid.settings import cpu_count
from scengrid.spec import AUTO_MIN_SHARD, MAX_SHARDS, RunSpec, ScenarioSource, scenario_count

Backend = Literal["local", "aws"]
CALIBRATION_SECONDS = 0.025  # measure until one batch took this long (or the cap): under 0.1 s in all
CALIBRATION_CAP = 16_384  # scenarios
LOCAL_MAX_SHARDS = 200
LOCAL_TARGET_SHARD_S = 1.0
AWS_SHARD_S_BOUNDS = (30.0, 600.0)
AWS_STARTS_PER_TASK = 4  # work per task, in start latencies
AWS_MAX_WORKERS = 10_000  # the template's three /20 subnets hold about 12,000 task addresses
MAX_SHARD_SCENARIOS = 1_000_000  # a worker holds a shard's result columns in memory (~60 MB per 1M and column)
SHARDS_PER_WORKER = 2  # at least, so that a slow task does not hold the run alone
PARALLEL_EFFICIENCY = 0.9  # model processes inside one task, per extra vCPU


class Sizing(BaseModel):
    """What the sharder chose, and why."""

    backend: Backend
    shard_size: int = Field(gt=0)
    shards: int = Field(gt=0)
    workers: int = Field(gt=0)
    seconds_per_scenario: float | None = Field(None, description="calibrated on one core; None when nothing was auto")
    reasons: list[str]


def calibrate(model: ScenarioModel, source: ScenarioSource) -> float:
    """Seconds per scenario on one core: the model on the run's own scenarios, on doubling
    batches until one took CALIBRATION_SECONDS (the first batch warms up and is not counted).
    It is on the critical path of every auto-sized run, so it is short: the rules below need the
    cost to within tens of percent, not better. The fastest batch of at least one block counts:
    a slower one was disturbed (page faults of a fresh process, another process on the core)."""
    available = scenario_count(source)
    size = min(256, available)
    evaluate_range(model, source, 0, size)
    best = math.inf
    while True:
        size = min(size * 2, available, CALIBRATION_CAP)
        started = time.perf_counter()
        evaluate_range(model, source, 0, size)
        spent = time.perf_counter() - started
        if size < min(CHUNK, available):  # part of a block: the per-call cost would dominate
            continue
        best = min(best, spent / size)
        if spent >= CALIBRATION_SECONDS or size >= min(available, CALIBRATION_CAP):
            return best


def task_speed(vcpus: float) -> float:
    """Scenarios evaluated per second by one task of ``vcpus``, in units of one core."""
    return 1.0 + max(0.0, vcpus - 1.0) * PARALLEL_EFFICIENCY


def local_workers(cores: int | None = None) -> int:
    """``workers: auto`` locally: one per core."""
    return cores or cpu_count()


def size_local(count: int, per_scenario_s: float, workers: int | None, shard_size: int | None = None,
               cores: int | None = None) -> Sizing:
    cores = cores or cpu_count()
    reasons = [f"model: {per_scenario_s * 1e6:,.1f} µs per scenario on one core (calibrated)"]
    if workers is None:
        workers = local_workers(cores)
        reasons.append(f"workers: {workers}, one per core (a local worker task runs one model process)")
    busy = min(workers, cores)
    compute_s = count * per_scenario_s / busy
    reasons.append(f"{compute_s:,.1f} s of model time over {busy} cores")
    if shard_size is not None:
        return _given_size(count, shard_size, workers, "local", per_scenario_s, reasons)
    shards = math.ceil(compute_s / LOCAL_TARGET_SHARD_S)
    reasons.append(f"shards of about {LOCAL_TARGET_SHARD_S:g} s of model time: {shards:,}")
    return _bounded(count, shards, workers, "local", per_scenario_s, reasons,
                    (LOCAL_MAX_SHARDS, "the emulator's SQS slows as the queue deepens"))


def size_aws(count: int, per_scenario_s: float, workers: int | None, params: PlanParameters,
             shard_size: int | None = None) -> Sizing:
    task_s = count * per_scenario_s / task_speed(params.worker_vcpus)  # model time in task-seconds
    hazard = params.spot_interruptions_per_hour / 3600.0
    low, high = AWS_SHARD_S_BOUNDS
    shard_s = min(high, max(low, math.sqrt(2.0 * params.shard_overhead_s / hazard))) if hazard > 0 else high
    largest_s = MAX_SHARD_SCENARIOS * per_scenario_s / task_speed(params.worker_vcpus)  # memory bounds a shard too
    shard_s = min(shard_s, largest_s)
    reasons = [
        f"model: {per_scenario_s * 1e6:,.1f} µs per scenario on one vCPU (calibrated); "
        f"{task_s:,.0f} task-seconds on {params.worker_vcpus:g}-vCPU tasks"
    ]
    if workers is None:
        per_task = max(AWS_STARTS_PER_TASK * params.start_latency_median_s, SHARDS_PER_WORKER * shard_s)
        workers = max(1, min(AWS_MAX_WORKERS, math.ceil(task_s / per_task)))
        reasons.append(
            f"workers: {workers:,}, each with about {per_task:,.0f} s of work "
            f"(at least {AWS_STARTS_PER_TASK} Fargate start latencies of {params.start_latency_median_s:g} s)"
        )
    groups = math.ceil(workers / params.max_array_children)
    if groups > 1:
        reasons.append(f"{groups} array jobs: at most {params.max_array_children:,} children each")
    if shard_size is not None:
        return _given_size(count, shard_size, workers, "aws", per_scenario_s, reasons)
    shards = math.ceil(task_s / shard_s)
    reasons.append(
        f"shards of about {shard_s:,.0f} s: a shard's overhead ({params.shard_overhead_s:g} s) against half a shard "
        f"lost per Spot reclaim ({params.spot_interruptions_per_hour:g} per task-hour): {shards:,}"
    )
    return _bounded(count, shards, workers, "aws", per_scenario_s, reasons, (MAX_SHARDS, "the manifest and the queue stay bounded"))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _given_size(count: int, shard_size: int, workers: int, backend: Backend, per_scenario_s: float, reasons: list[str]) -> Sizing:
    shards = math.ceil(count / shard_size)
    workers = min(workers, shards)
    reasons.append(f"shard size {shard_size:,} as the spec says → {_count(shards, 'shard')} on {_count(workers, 'worker')}")
    return Sizing(backend=backend, shard_size=shard_size, shards=shards, workers=workers,
                  seconds_per_scenario=per_scenario_s, reasons=reasons)


def _bounded(
    count: int, shards: int, workers: int, backend: Backend, per_scenario_s: float, reasons: list[str], limit: tuple[int, str]
) -> Sizing:
    max_shards, why = limit
    if shards < math.ceil(count / MAX_SHARD_SCENARIOS):
        shards = math.ceil(count / MAX_SHARD_SCENARIOS)
        reasons.append(f"at most {MAX_SHARD_SCENARIOS:,} scenarios per shard (a worker holds a shard's results in memory): {shards:,}")
    if shards < SHARDS_PER_WORKER * workers:
        shards = SHARDS_PER_WORKER * workers
        reasons.append(f"at least {SHARDS_PER_WORKER} shards per worker: {shards:,}")
    if shards > max_shards:
        shards = max_shards
        reasons.append(f"at most {max_shards:,} shards: {why}")
    if shards > workers:  # whole waves: every worker gets as many shards
        waves = math.ceil(shards / workers)
        shards = waves * workers if waves * workers <= max_shards else max(workers, max_shards // workers * workers)
    size = min(count, max(1, math.ceil(count / shards)))
    if size < AUTO_MIN_SHARD:
        size = min(AUTO_MIN_SHARD, count)
        reasons.append(f"at least {AUTO_MIN_SHARD:,} scenarios per shard (or all of them)")
    shards = math.ceil(count / size)
    workers = min(workers, shards)
    reasons.append(f"→ {_count(shards, 'shard')} of {_count(size, 'scenario')} on {_count(workers, 'worker')}")
    return Sizing(backend=backend, shard_size=size, shards=shards, workers=workers, seconds_per_scenario=per_scenario_s,
                  reasons=reasons)


def choose(spec: RunSpec, model: ScenarioModel, backend: Backend, params: PlanParameters | None = None) -> Sizing:
    """The run's sizing: the spec's numbers where it gives them, the rules above for ``auto``."""
    count = scenario_count(spec.scenarios)
    shard_size = spec.shard_size if isinstance(spec.shard_size, int) else None
    workers = spec.workers if isinstance(spec.workers, int) else None
    if shard_size is not None and workers is not None:
        shards = math.ceil(count / shard_size)
        return Sizing(backend=backend, shard_size=shard_size, shards=shards, workers=workers,
                      reasons=[f"as the spec says: {_count(shards, 'shard')} of {shard_size:,} on {_count(workers, 'worker')}"])
    per_scenario = calibrate(model, spec.scenarios)
    if backend == "local":
        return size_local(count, per_scenario, workers, shard_size)
    return size_aws(count, per_scenario, workers, params or PlanParameters(), shard_size)
