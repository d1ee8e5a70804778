"""What concurrent runs share and when the runs planned at once exceed it: the arithmetic and
the warnings against hand-computed figures, the defaults against the template, and the
reasons given when the account cannot be read."""

from __future__ import annotations

import ipaddress

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from scengrid.plan_parameters import PlanParameters
from scengrid_cli.local.moto_gaps import evaluate_cidr_functions
from scengrid_cli.planning.account import why
from scengrid_cli.planning.capacity import (
    DEFAULT_FARGATE_VCPUS,
    ON_DEMAND_QUOTA_CODE,
    SPOT_QUOTA_CODE,
    TEMPLATE_MAX_VCPUS,
    TEMPLATE_MAX_VCPUS_LIMIT,
    PlannedRun,
    Quota,
    SharedCapacity,
    Subnet,
    assumed_capacity,
    check_overlap,
)
from tests.template_data import resources, template


def capacity(spot_quota: float = 4000, on_demand_quota: float = 4000, free: tuple[int, ...] = (4091, 4091, 4091)) -> SharedCapacity:
    """The template's defaults (MaxVcpus 256 per environment), with these quotas and free addresses."""
    shared = assumed_capacity("us-east-1", "scengrid", [])
    shared.spot_quota = Quota(code=SPOT_QUOTA_CODE, name="spot", vcpus=spot_quota, source="applied")
    shared.on_demand_quota = Quota(code=ON_DEMAND_QUOTA_CODE, name="on-demand", vcpus=on_demand_quota, source="applied")
    shared.subnets = [Subnet(subnet_id=f"subnet-{i}", free_addresses=n) for i, n in enumerate(free)]
    return shared


def run(workers: int, copies: int = 1, vcpus: float = 2.0, cost: float = 0.0) -> PlannedRun:
    return PlannedRun(label="spec.yaml", workers=workers, worker_vcpus=vcpus, copies=copies, cost_usd_p90=cost)


# ---------------------------------------------------------------- what is usable at once
def test_usable_vcpus_are_the_lower_of_quota_and_maxvcpus_on_each_side() -> None:
    shared = capacity(spot_quota=100, on_demand_quota=4000)
    assert (shared.spot_vcpus, shared.on_demand_vcpus, shared.free_addresses) == (100, 256, 12_273)


def test_a_run_within_spot_fits() -> None:
    # 100 workers x 2 vCPUs = 200 vCPUs <= 256 on Spot; 100 addresses of 12,273
    check = check_overlap([run(100, cost=0.5)], capacity())
    assert (check.peak_tasks, check.peak_vcpus, check.usable_vcpus, check.spot_vcpus) == (100, 200, 512, 256)
    assert check.fits and check.warnings == [] and check.cost_usd_p90 == 0.5


def test_beyond_spot_the_rest_runs_on_demand_at_full_price() -> None:
    # 200 x 2 = 400 vCPUs: 144 beyond Spot's 256 (MaxVcpus binds: quota 4,000), so 72 workers on-demand;
    # 400 <= 512, nothing waits
    [warning] = check_overlap([run(200)], capacity()).warnings
    assert warning.startswith("Spot: the run needs 400 vCPUs at the peak, 144 more than Fargate Spot runs at once (256, "
                              "limited by the Spot compute environment's MaxVcpus)")
    assert "about 72 workers on on-demand" in warning and "MAX_VCPUS=400 make deploy" in warning
    assert "lower the workers to 128 in all" in warning  # 256 / 2
    assert SPOT_QUOTA_CODE not in warning and "stagger" not in warning  # the quota is enough; one run only


def test_a_low_spot_quota_asks_for_its_increase_by_code() -> None:
    # 3 copies of 40 workers x 2 = 240 vCPUs; Spot = min(quota 100, MaxVcpus 256) = 100; 100 + 256 = 356 >= 240
    check = check_overlap([run(40, copies=3, cost=1.25)], capacity(spot_quota=100))
    [warning] = check.warnings
    assert warning.startswith("Spot: the 3 runs planned at once need 240 vCPUs at the peak, 140 more than Fargate Spot "
                              f"runs at once (100, limited by quota {SPOT_QUOTA_CODE})")
    assert (f"--service-code fargate --quota-code {SPOT_QUOTA_CODE} --desired-value 240 --region us-east-1" in warning
            and "MAX_VCPUS" not in warning)  # 240 <= MaxVcpus 256
    assert "about 70 workers on on-demand" in warning and "lower the workers to 50 in all" in warning
    assert warning.endswith("or stagger the runs")
    assert check.cost_usd_p90 == 3.75  # 3 copies of $1.25


def test_beyond_spot_and_on_demand_workers_wait() -> None:
    # (300 + 100 workers) x 2 copies = 800 tasks x 2 vCPUs = 1,600 vCPUs; usable 256 + 256 = 512 vCPUs,
    # that is 256 workers, so about 800 - 256 = 544 wait RUNNABLE
    check = check_overlap([run(300, copies=2), run(100, copies=2)], capacity())
    [warning] = check.warnings
    assert (check.peak_tasks, check.peak_vcpus) == (800, 1600)
    assert warning.startswith("vCPUs: the 4 runs planned at once need 1,600 vCPUs at the peak (800 workers of 2 vCPUs), "
                              "more than the 512 this account and stack run at once (256 on Fargate Spot, limited by the "
                              "Spot compute environment's MaxVcpus; 256 on-demand, limited by the on-demand compute "
                              "environment's MaxVcpus)")
    assert "about 544 workers RUNNABLE" in warning and "MAX_VCPUS=1600" in warning
    assert "lower the workers to 256 in all" in warning and warning.endswith("or stagger the runs")


def test_beyond_the_templates_largest_maxvcpus() -> None:
    # 7,000 workers x 2 = 14,000 vCPUs: above both quotas and above the largest MaxVcpus (12,000)
    [warning] = check_overlap([run(7000)], capacity()).warnings
    assert "--desired-value 14000" in warning and f"largest MaxVcpus, {TEMPLATE_MAX_VCPUS_LIMIT:,}" in warning


def test_more_tasks_than_free_addresses() -> None:
    # 20 workers of 1 vCPU: 20 vCPUs fit; 20 addresses > 10 + 5 free
    check = check_overlap([run(20, vcpus=1.0)], capacity(free=(10, 5)))
    [warning] = check.warnings
    assert warning.startswith("addresses: the run starts 20 worker tasks at the peak, each holding one address of a worker "
                              "subnet, but the 2 worker subnets have 15 free")
    assert "add worker subnets or use larger ones" in warning
    assert warning.endswith("or lower the workers to 15 in all (workers: in the spec)")


def test_vcpus_and_addresses_warn_together() -> None:
    warnings = check_overlap([run(300)], capacity(free=(100,))).warnings
    assert [w.split(":", 1)[0] for w in warnings] == ["vCPUs", "addresses"]


def test_a_zero_quota_does_not_suggest_zero_workers() -> None:
    [warning] = check_overlap([run(10)], capacity(spot_quota=0, on_demand_quota=0)).warnings
    assert "lower the workers" not in warning and "--desired-value 20" in warning


# ---------------------------------------------------------------- the defaults are the template's
def test_assumed_capacity_is_the_templates_default_stack_and_awss_default_quotas() -> None:
    shared = assumed_capacity("eu-west-1", "risk", ["not read"])
    params = template()["Parameters"]
    assert TEMPLATE_MAX_VCPUS == params["MaxVcpus"]["Default"] and TEMPLATE_MAX_VCPUS_LIMIT == params["MaxVcpus"]["MaxValue"]
    assert (shared.spot_vcpus, shared.on_demand_vcpus) == (256, 256)
    assert {shared.spot_quota.vcpus, shared.on_demand_quota.vcpus} == {DEFAULT_FARGATE_VCPUS}
    assert {shared.spot_quota.source, shared.on_demand_quota.source} == {"assumed"}
    # the worker subnets: those of the compute environments, as the default VpcCidr makes them
    evaluated = evaluate_cidr_functions(template(), {"VpcCidr": params["VpcCidr"]["Default"]})["Resources"]
    environments = [r for r in resources().values() if r["Type"] == "AWS::Batch::ComputeEnvironment"]
    names = {s["Ref"] for e in environments for s in e["Properties"]["ComputeResources"]["Subnets"]}
    usable = []
    for name in names:
        index, blocks = evaluated[name]["Properties"]["CidrBlock"]["Fn::Select"]
        usable.append(ipaddress.ip_network(blocks[index]).num_addresses - 5)
    assert sorted(s.free_addresses for s in shared.subnets) == sorted(usable)


def test_the_plans_task_shape_is_the_templates_default() -> None:
    params = template()["Parameters"]
    defaults = PlanParameters()
    assert defaults.worker_vcpus == float(params["WorkerVcpus"]["Default"])
    assert defaults.worker_memory_gb == params["WorkerMemoryMiB"]["Default"] / 1024


# ---------------------------------------------------------------- why the account was not read
def error(code: str, message: str = "no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


@pytest.mark.parametrize(("exc", "expected"), [
    (NoCredentialsError(), "no AWS credentials"),
    (error("AccessDeniedException"), "not allowed to call servicequotas:GetServiceQuota (grant it to read this)"),
    (error("UnauthorizedOperation"), "not allowed to call servicequotas:GetServiceQuota"),
    (error("ExpiredToken", "expired"), "the credentials were refused (ExpiredToken: expired)"),
    (error("Throttling", "slow down"), "servicequotas:GetServiceQuota failed (Throttling: slow down)"),
    (EndpointConnectionError(endpoint_url="https://servicequotas"), "servicequotas:GetServiceQuota could not reach AWS"),
])
def test_why_says_what_to_do(exc: Exception, expected: str) -> None:
    assert why(exc, "servicequotas:GetServiceQuota").startswith(expected)


# ---------------------------------------------------------------- the stack's task shape
def test_the_stacks_task_shape_is_planned_unless_a_param_says_otherwise() -> None:
    from scengrid_cli.commands.plan import with_stack_task_shape

    stack = capacity()
    stack.worker_vcpus, stack.worker_memory_gb = 4.0, 8.0
    planned = with_stack_task_shape(PlanParameters(), stack, set())
    assert (planned.worker_vcpus, planned.worker_memory_gb) == (4.0, 8.0)
    mine = with_stack_task_shape(PlanParameters(worker_memory_gb=16.0), stack, {"worker_memory_gb"})
    assert (mine.worker_vcpus, mine.worker_memory_gb) == (4.0, 16.0)
    assert with_stack_task_shape(PlanParameters(), capacity(), set()) == PlanParameters()  # nothing read: the defaults
