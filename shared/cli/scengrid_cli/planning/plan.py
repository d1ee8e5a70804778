"""The plan of a run: simulated wall time and cost (mean and p90 over replications), tasks,
Spot re-work and subnet sizing, for the run's layout and for the seed's (500 scenarios per
shard, one on-demand task per shard)."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

from scengrid.plan_parameters import PlanParameters
from scengrid_cli.planning.simulate import Layout, Outcome, simulate, simulate_one_task_per_shard

REPLICATIONS = 20
SEED_SHARD_SIZE = 500
PARALLEL_EFFICIENCY = 0.9  # model processes inside one task, per extra vCPU


class LayoutPlan(BaseModel):
    name: str
    shards: int
    shard_size: int
    tasks: int
    array_jobs: int
    spot: bool
    wall_s_mean: float
    wall_s_p90: float
    cost_usd_mean: float
    cost_usd_p90: float
    compute_usd: float
    requests_usd: float
    interruptions_mean: float
    rework_task_hours_mean: float
    peak_tasks: int


class SubnetAdvice(BaseModel):
    peak_tasks: int
    per_az_addresses: int
    prefix: int
    fits_default: bool
    advice: str


class RunPlan(BaseModel):
    spec: str = ""  # the RunSpec file planned
    scenarios: int
    seconds_per_scenario: float
    prices_as_of: str
    run: LayoutPlan
    seed: LayoutPlan
    subnets: SubnetAdvice
    sizing: list[str] = []


def requests_cost(shards: int, array_jobs: int, params: PlanParameters) -> float:
    """S3, SQS, EventBridge, DynamoDB and Step Functions requests of one run."""
    s3 = shards * params.s3_put + shards * params.s3_get + 6 * params.s3_put
    sqs = shards * 4 * params.sqs_request  # send, receive, heartbeat, delete
    events = (2 * shards + 2) * params.eventbridge_event  # shard-written, shard-done, run events
    dynamodb = (2 * 2 * shards + 4) * params.dynamodb_write + shards * params.dynamodb_read  # transactions cost double
    sfn = (8 + 4 * array_jobs) * params.sfn_transition
    return s3 + sqs + events + dynamodb + sfn


def _task_hour_price(spot: bool, params: PlanParameters) -> float:
    price = params.worker_vcpus * params.fargate_vcpu_hour + params.worker_memory_gb * params.fargate_gb_hour
    return price * (1 - params.fargate_spot_discount) if spot else price


def plan_layout(
    name: str, scenarios: int, shard_size: int, tasks: int, spot: bool, seconds_per_scenario: float,
    params: PlanParameters, seed: int = 0,
) -> LayoutPlan:
    shards = math.ceil(scenarios / shard_size)
    tasks = max(1, min(tasks, shards))
    speedup = 1 + (params.worker_vcpus - 1) * PARALLEL_EFFICIENCY
    shard_seconds = shard_size * seconds_per_scenario / speedup + params.shard_overhead_s
    layout = Layout(shards=shards, shard_seconds=shard_seconds, tasks=tasks, spot=spot)
    rng = np.random.default_rng(seed)
    one_each = not spot and tasks >= shards
    run = simulate_one_task_per_shard if one_each else simulate
    outcomes: list[Outcome] = [run(layout, params, rng) for _ in range(REPLICATIONS)]
    array_jobs = math.ceil(tasks / params.max_array_children)
    requests = requests_cost(shards, array_jobs, params)
    price = _task_hour_price(spot, params)
    stages = 2 * params.stage_overhead_s
    walls = np.array([o.wall_s + stages for o in outcomes])
    compute = np.array([(o.task_seconds + stages) / 3600 * price for o in outcomes])
    costs = compute + requests
    return LayoutPlan(
        name=name, shards=shards, shard_size=shard_size, tasks=tasks, array_jobs=array_jobs, spot=spot,
        wall_s_mean=float(walls.mean()), wall_s_p90=float(np.quantile(walls, 0.9)),
        cost_usd_mean=float(costs.mean()), cost_usd_p90=float(np.quantile(costs, 0.9)),
        compute_usd=float(compute.mean()), requests_usd=requests,
        interruptions_mean=float(np.mean([o.interruptions for o in outcomes])),
        rework_task_hours_mean=float(np.mean([o.reworked_seconds for o in outcomes]) / 3600),
        peak_tasks=max(o.peak_tasks for o in outcomes),
    )


def subnet_advice(peak_tasks: int, params: PlanParameters, default_prefix: int = 20) -> SubnetAdvice:
    """Each Fargate task holds one IP: subnets in ``azs`` AZs must hold the peak together."""
    per_az = math.ceil(peak_tasks / params.azs) + params.ips_reserved_per_subnet
    prefix = min(28, 32 - math.ceil(math.log2(per_az)))
    usable_default = 2 ** (32 - default_prefix) - params.ips_reserved_per_subnet
    fits = per_az <= usable_default
    advice = (
        f"{params.azs} subnets of /{prefix} or larger ({per_az:,} addresses each); "
        + ("the template's /20 subnets are enough" if fits else f"the template's /{default_prefix} subnets are NOT enough: "
           f"lower MaxVcpus or give VpcCidr room for /{prefix} subnets")
    )
    return SubnetAdvice(peak_tasks=peak_tasks, per_az_addresses=per_az, prefix=prefix, fits_default=fits, advice=advice)


def plan_run(
    scenarios: int, shard_size: int, workers: int, seconds_per_scenario: float, params: PlanParameters,
    sizing: list[str] | None = None,
) -> RunPlan:
    run = plan_layout("scengrid", scenarios, shard_size, workers, True, seconds_per_scenario, params)
    seed = plan_layout(
        "seed layout", scenarios, SEED_SHARD_SIZE, math.ceil(scenarios / SEED_SHARD_SIZE), False, seconds_per_scenario, params
    )
    return RunPlan(
        scenarios=scenarios, seconds_per_scenario=seconds_per_scenario, prices_as_of=params.prices_as_of,
        run=run, seed=seed, subnets=subnet_advice(run.peak_tasks, params), sizing=sizing or [],
    )
