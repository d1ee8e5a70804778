"""A discrete-event simulation of one run: worker tasks start after a (random) Fargate start
latency, pull shards from the queue one at a time, and may be reclaimed (Spot); a reclaimed
task loses its shard in progress (the shard goes back to the queue) and Batch starts a
replacement, which pays the start latency again. Everything is array-free bookkeeping on
tasks and shards, never on scenarios."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from scengrid.plan_parameters import PlanParameters


@dataclass(frozen=True)
class Layout:
    shards: int
    shard_seconds: float  # compute time of one shard on one task
    tasks: int  # worker tasks (array children)
    spot: bool


@dataclass(frozen=True)
class Outcome:
    wall_s: float  # from the first worker submission to the last shard done
    task_seconds: float  # billed task time (start latency included: Fargate bills from pull)
    interruptions: int
    reworked_seconds: float  # shard work lost to reclaims and done again
    peak_tasks: int


def _latency(params: PlanParameters, rng: np.random.Generator) -> float:
    if params.start_latency_sigma == 0:
        return params.start_latency_median_s
    return float(params.start_latency_median_s * math.exp(params.start_latency_sigma * rng.standard_normal()))


def _submission_offsets(tasks: int, params: PlanParameters) -> list[float]:
    """When each task is submitted: one array job per 10,000 children, SubmitJob rate-limited."""
    groups = math.ceil(tasks / params.max_array_children)
    offsets = []
    for g in range(groups):
        start = g / params.submit_jobs_per_s if g < params.map_max_concurrency else math.inf
        size = min(params.max_array_children, tasks - g * params.max_array_children)
        offsets += [start] * size
    if math.inf in offsets:  # groups beyond the Map's concurrency wait for a slot: after one wave
        raise ValueError("more array jobs than the Map runs at once; raise map_max_concurrency")
    return offsets


def simulate(layout: Layout, params: PlanParameters, rng: np.random.Generator) -> Outcome:
    hazard = params.spot_interruptions_per_hour / 3600.0 if layout.spot else 0.0
    queue = layout.shards  # shards not yet started (a lost shard comes back)
    done = 0
    # events: (time, kind, task id); kinds: "up" task ready, "end" shard done, "lost" reclaimed
    events: list[tuple[float, int, str]] = []
    billed_from: dict[int, float] = {}
    reclaim_at: dict[int, float] = {}
    shard_started: dict[int, float] = {}
    task_seconds = reworked = 0.0
    interruptions = 0
    running = peak = 0  # shards in progress, and the most tasks alive at once (each holds an IP)
    next_id = 0

    def launch(at: float) -> None:
        nonlocal next_id
        task = next_id
        next_id += 1
        billed_from[task] = at
        ready = at + _latency(params, rng)
        reclaim_at[task] = ready + (rng.exponential(1 / hazard) if hazard else math.inf)
        heapq.heappush(events, (ready, task, "up"))
        nonlocal peak
        peak = max(peak, len(billed_from))

    for offset in _submission_offsets(layout.tasks, params):
        launch(offset)
    wall = 0.0
    while events and done < layout.shards:
        now, task, kind = heapq.heappop(events)
        if kind == "end":
            done += 1
            running -= 1
            shard_started.pop(task)
        if kind in ("up", "end"):
            if queue == 0:  # nothing left: the task stops
                task_seconds += now - billed_from.pop(task)
                wall = max(wall, now)
                continue
            queue -= 1
            running += 1
            finish = now + layout.shard_seconds
            if reclaim_at[task] < finish:
                heapq.heappush(events, (reclaim_at[task], task, "lost"))
            else:
                heapq.heappush(events, (finish, task, "end"))
            shard_started[task] = now
        elif kind == "lost":
            interruptions += 1
            running -= 1
            reworked += now - shard_started.pop(task)
            queue += 1  # the message comes back after its visibility timeout (small next to a shard)
            task_seconds += now - billed_from.pop(task)
            launch(now)  # Batch retries the reclaimed child
        wall = max(wall, now)
    for task, since in billed_from.items():  # tasks still alive when the last shard ends
        task_seconds += wall - since
    return Outcome(wall, task_seconds, interruptions, reworked, peak)


def simulate_one_task_per_shard(layout: Layout, params: PlanParameters, rng: np.random.Generator) -> Outcome:
    """The same model in closed form when every shard has its own on-demand task (no queue,
    no reclaims): each task ends at its submission + start latency + one shard."""
    if layout.spot or layout.tasks < layout.shards:
        raise ValueError("closed form only for one on-demand task per shard")
    offsets = np.asarray(_submission_offsets(layout.shards, params))
    if params.start_latency_sigma == 0:
        latency = np.full(layout.shards, params.start_latency_median_s)
    else:
        latency = params.start_latency_median_s * np.exp(params.start_latency_sigma * rng.standard_normal(layout.shards))
    ends = offsets + latency + layout.shard_seconds
    return Outcome(float(ends.max()), float((latency + layout.shard_seconds).sum()), 0, 0.0, layout.shards)
