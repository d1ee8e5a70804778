"""What concurrent runs share on AWS, and whether the runs planned to overlap fit in it.

Every run of a stack goes through one job queue: Fargate Spot first, on-demand Fargate when
the Spot compute environment is full. So the runs running at once share
- the account's Fargate vCPU quotas, per region: Spot (Service Quotas ``fargate`` L-36FBB829)
  and on-demand (L-3032A538); every other Fargate task of the account counts against them too;
- the compute environments' ``MaxVcpus`` (the stack parameter, one limit per environment);
- the worker subnets' free addresses: each Fargate task holds one ENI, one private address.

A worker task takes ``worker_vcpus`` vCPUs and one address from its start to its end. This
module is arithmetic only: ``account.py`` reads the figures, or says why it could not."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field, computed_field

SPOT_QUOTA_CODE = "L-36FBB829"  # Fargate Spot vCPU resource count
ON_DEMAND_QUOTA_CODE = "L-3032A538"  # Fargate On-Demand vCPU resource count
# The AWS default of both quotas as Service Quotas lists it (ListAWSDefaultServiceQuotas);
# new accounts may start lower, and AWS raises them with use.
DEFAULT_FARGATE_VCPUS = 4000
# The template's defaults: MaxVcpus per compute environment, three /20 worker subnets.
TEMPLATE_MAX_VCPUS = 256
TEMPLATE_WORKER_SUBNETS = 3
TEMPLATE_SUBNET_PREFIX = 20
RESERVED_PER_SUBNET = 5  # AWS keeps the first four addresses and the last of every subnet
TEMPLATE_MAX_VCPUS_LIMIT = 12_000  # MaxValue of the MaxVcpus parameter

QuotaSource = Literal["applied", "aws default", "assumed"]


class Quota(BaseModel):
    code: str
    name: str
    vcpus: float
    source: QuotaSource = Field(description="applied: the account's value; aws default: Service Quotas' default; "
                                "assumed: not read, the AWS default Service Quotas lists")


class ComputeEnvironment(BaseModel):
    name: str
    spot: bool
    max_vcpus: int


class Subnet(BaseModel):
    subnet_id: str
    availability_zone: str = ""
    cidr: str = ""
    free_addresses: int


class SharedCapacity(BaseModel):
    """The limits every run of the stack shares, each with where it came from."""

    region: str
    account: str | None = None
    stack: str
    spot_quota: Quota
    on_demand_quota: Quota
    environments: list[ComputeEnvironment]
    environments_from: str = Field(description="the stack's compute environments, or the template's defaults")
    subnets: list[Subnet]
    subnets_from: str = Field(description="EC2 DescribeSubnets of the stack's worker subnets, or the template's defaults")
    worker_vcpus: float | None = Field(None, description="the stack's WorkerVcpus, when it was read")
    worker_memory_gb: float | None = Field(None, description="the stack's WorkerMemoryMiB / 1024, when it was read")
    notes: list[str] = Field(default_factory=list, description="what could not be read, and why")

    @computed_field
    @property
    def spot_vcpus(self) -> float:
        """What Spot can run at once: the quota or the Spot environments' MaxVcpus, whichever is lower."""
        return min(self.spot_quota.vcpus, sum(e.max_vcpus for e in self.environments if e.spot))

    @computed_field
    @property
    def on_demand_vcpus(self) -> float:
        return min(self.on_demand_quota.vcpus, sum(e.max_vcpus for e in self.environments if not e.spot))

    @computed_field
    @property
    def free_addresses(self) -> int:
        return sum(s.free_addresses for s in self.subnets)


def template_environments() -> list[ComputeEnvironment]:
    return [
        ComputeEnvironment(name="Spot (template default)", spot=True, max_vcpus=TEMPLATE_MAX_VCPUS),
        ComputeEnvironment(name="on-demand (template default)", spot=False, max_vcpus=TEMPLATE_MAX_VCPUS),
    ]


def template_subnets() -> list[Subnet]:
    free = 2 ** (32 - TEMPLATE_SUBNET_PREFIX) - RESERVED_PER_SUBNET
    return [Subnet(subnet_id=f"/{TEMPLATE_SUBNET_PREFIX} #{i + 1} (template default)", free_addresses=free)
            for i in range(TEMPLATE_WORKER_SUBNETS)]


def assumed_capacity(region: str, stack: str, notes: list[str]) -> SharedCapacity:
    """The defaults: AWS's default quotas, the template's compute environments and empty subnets."""
    return SharedCapacity(
        region=region, stack=stack,
        spot_quota=Quota(code=SPOT_QUOTA_CODE, name="Fargate Spot vCPU resource count", vcpus=DEFAULT_FARGATE_VCPUS, source="assumed"),
        on_demand_quota=Quota(code=ON_DEMAND_QUOTA_CODE, name="Fargate On-Demand vCPU resource count",
                              vcpus=DEFAULT_FARGATE_VCPUS, source="assumed"),
        environments=template_environments(), environments_from="the template's defaults",
        subnets=template_subnets(), subnets_from="the template's defaults (empty subnets)", notes=notes,
    )


class PlannedRun(BaseModel):
    """One run planned to overlap with the others, ``copies`` times."""

    label: str
    workers: int = Field(ge=0, description="worker tasks of one copy at its peak")
    worker_vcpus: float = Field(gt=0)
    copies: int = Field(1, ge=1)
    cost_usd_p90: float = 0.0  # of one copy

    @computed_field
    @property
    def tasks(self) -> int:
        return self.workers * self.copies

    @computed_field
    @property
    def vcpus(self) -> float:
        return self.tasks * self.worker_vcpus


class OverlapCheck(BaseModel):
    """The runs planned at once against what they share: their peak and what does not fit."""

    runs: list[PlannedRun]
    peak_tasks: int
    peak_vcpus: float
    usable_vcpus: float
    spot_vcpus: float
    free_addresses: int
    cost_usd_p90: float = Field(description="the p90 costs of the runs added up")
    warnings: list[str]

    @computed_field
    @property
    def fits(self) -> bool:
        return not self.warnings


def check_overlap(runs: list[PlannedRun], capacity: SharedCapacity) -> OverlapCheck:
    """Add up what the runs take at their peak (every worker of every run at once) and warn,
    saying what to do, where it is more than the quotas, the compute environments or the
    subnets give."""
    tasks = sum(r.tasks for r in runs)
    vcpus = sum(r.vcpus for r in runs)
    spot, usable = capacity.spot_vcpus, capacity.spot_vcpus + capacity.on_demand_vcpus
    warnings = []
    if vcpus > usable:
        warnings.append(_beyond_vcpus(runs, tasks, vcpus, capacity))
    elif vcpus > spot:
        warnings.append(_beyond_spot(runs, vcpus, capacity))
    if tasks > capacity.free_addresses:
        warnings.append(_beyond_addresses(runs, tasks, capacity))
    return OverlapCheck(
        runs=runs, peak_tasks=tasks, peak_vcpus=vcpus, usable_vcpus=usable, spot_vcpus=spot,
        free_addresses=capacity.free_addresses, cost_usd_p90=sum(r.cost_usd_p90 * r.copies for r in runs), warnings=warnings,
    )


def _subject(runs: list[PlannedRun], verb: str) -> str:
    """``the run needs`` or ``the 3 runs planned at once need``."""
    count = sum(r.copies for r in runs)
    return f"the run {verb}s" if count == 1 else f"the {count} runs planned at once {verb}"


def _stagger(runs: list[PlannedRun]) -> list[str]:
    return ["stagger the runs" if sum(r.copies for r in runs) > 1 else ""]


def _vcpu_per_worker(runs: list[PlannedRun]) -> float:
    return max(r.worker_vcpus for r in runs)


def _spot_limit(capacity: SharedCapacity) -> str:
    quota, environments = capacity.spot_quota.vcpus, sum(e.max_vcpus for e in capacity.environments if e.spot)
    return f"quota {SPOT_QUOTA_CODE}" if quota <= environments else "the Spot compute environment's MaxVcpus"


def _on_demand_limit(capacity: SharedCapacity) -> str:
    quota, environments = capacity.on_demand_quota.vcpus, sum(e.max_vcpus for e in capacity.environments if not e.spot)
    return f"quota {ON_DEMAND_QUOTA_CODE}" if quota <= environments else "the on-demand compute environment's MaxVcpus"


def _spot_fixes(vcpus: float, capacity: SharedCapacity) -> list[str]:
    """What lets Fargate Spot alone run ``vcpus`` at once."""
    need = math.ceil(vcpus)
    fixes = []
    if capacity.spot_quota.vcpus < need:
        fixes.append(
            f"request a Fargate Spot vCPU quota of at least {need:,} plus what else the account runs on Fargate Spot "
            f"(aws service-quotas request-service-quota-increase --service-code fargate --quota-code {SPOT_QUOTA_CODE} "
            f"--desired-value {need} --region {capacity.region})"
        )
    if sum(e.max_vcpus for e in capacity.environments if e.spot) < need:
        if need <= TEMPLATE_MAX_VCPUS_LIMIT:
            fixes.append(f"deploy the stack with MaxVcpus of at least {need:,} (MAX_VCPUS={need} make deploy)")
        else:
            fixes.append(f"deploy the stack with the largest MaxVcpus, {TEMPLATE_MAX_VCPUS_LIMIT:,} (the template's limit; "
                         f"the rest would still wait)")
    return fixes


def _lower(workers: int) -> str:
    return f"lower the workers to {workers:,} in all (workers: in the spec)" if workers >= 1 else ""


def _join(fixes: list[str]) -> str:
    """``a; b; or c``, leaving out the empty ones."""
    fixes = [f for f in fixes if f]
    return "; ".join(fixes[:-1]) + ("; or " if len(fixes) > 1 else "") + (fixes[-1] if fixes else "")


def _beyond_vcpus(runs: list[PlannedRun], tasks: int, vcpus: float, capacity: SharedCapacity) -> str:
    per_worker = _vcpu_per_worker(runs)
    usable = capacity.spot_vcpus + capacity.on_demand_vcpus
    fit = math.floor(usable / per_worker)
    return (
        f"vCPUs: {_subject(runs, 'need')} {vcpus:,.0f} vCPUs at the peak ({tasks:,} workers of {per_worker:g} vCPUs), more "
        f"than the {usable:,.0f} this account and stack run at once ({capacity.spot_vcpus:,.0f} on Fargate Spot, limited "
        f"by {_spot_limit(capacity)}; {capacity.on_demand_vcpus:,.0f} on-demand, limited by {_on_demand_limit(capacity)}). "
        f"Batch keeps about {tasks - fit:,} workers RUNNABLE until others end, so the wall time is longer than planned. "
        f"To run them at once: " + _join([*_spot_fixes(vcpus, capacity), _lower(fit), *_stagger(runs)])
    )


def _beyond_spot(runs: list[PlannedRun], vcpus: float, capacity: SharedCapacity) -> str:
    per_worker = _vcpu_per_worker(runs)
    over = vcpus - capacity.spot_vcpus
    fit = math.floor(capacity.spot_vcpus / per_worker)
    return (
        f"Spot: {_subject(runs, 'need')} {vcpus:,.0f} vCPUs at the peak, {over:,.0f} more than Fargate Spot runs at once "
        f"({capacity.spot_vcpus:,.0f}, limited by {_spot_limit(capacity)}): Batch puts about {math.ceil(over / per_worker):,} "
        f"workers on on-demand Fargate at the full price, and the plan priced every worker at Spot's. To keep them on "
        f"Spot: " + _join([*_spot_fixes(vcpus, capacity), _lower(fit), *_stagger(runs)])
    )


def _beyond_addresses(runs: list[PlannedRun], tasks: int, capacity: SharedCapacity) -> str:
    more_room = (
        "add worker subnets or use larger ones (a VpcCidr with room for larger subnets; docs/deploy.md, "
        "'Network and its sizing rule')"
    )
    return (
        f"addresses: {_subject(runs, 'start')} {tasks:,} worker tasks at the peak, each holding one address of a worker "
        f"subnet, but the {len(capacity.subnets)} worker subnets have {capacity.free_addresses:,} free: the other tasks "
        f"cannot start until addresses free up. To start them all: "
        + _join([more_room, _lower(capacity.free_addresses), *_stagger(runs)])
    )
