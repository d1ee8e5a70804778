"""What concurrent runs share, read from the stack as the emulator holds it: the template
provisioned as the local stack (``scengrid``), read through boto3 by ``scengrid plan``.

The emulator (moto 5.2.5) holds no Fargate quotas: Service Quotas there knows only ``vpc``
(GetServiceQuota and ListAWSDefaultServiceQuotas answer NoSuchResourceException for ``fargate``)
and GetAWSDefaultServiceQuota is not implemented (HTTP 500). So the quotas come out as AWS's
default with a note, the path an account takes when neither value can be read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scengrid.aws import client
from scengrid_cli.planning.account import read_shared_capacity
from scengrid_cli.planning.capacity import DEFAULT_FARGATE_VCPUS, SPOT_QUOTA_CODE

STACK = "scengrid"  # the local stack's EnvName
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def described_worker_subnets() -> list[dict]:
    """The subnets the stack's compute environments place tasks in, as EC2 describes them."""
    environments = client("batch").describe_compute_environments()["computeEnvironments"]
    ids = sorted({s for e in environments if e["computeEnvironmentName"].startswith(STACK) for s in e["computeResources"]["subnets"]})
    return client("ec2").describe_subnets(SubnetIds=ids)["Subnets"]


def test_the_stacks_environments_subnets_and_task_shape_are_read(local_stack) -> None:  # noqa: ANN001
    capacity = read_shared_capacity(STACK)
    assert capacity.account == client("sts").get_caller_identity()["Account"]
    assert sorted((e.spot, e.max_vcpus) for e in capacity.environments) == [(False, 256), (True, 256)]  # MaxVcpus' default
    assert capacity.environments_from.startswith(f"stack {STACK}'s job queue")
    subnets = described_worker_subnets()
    assert len(subnets) == 3 and {s["CidrBlock"].rsplit("/", 1)[1] for s in subnets} == {"20"}
    assert sorted(s.subnet_id for s in capacity.subnets) == sorted(s["SubnetId"] for s in subnets)
    assert capacity.free_addresses == sum(s["AvailableIpAddressCount"] for s in subnets) <= 3 * 4091
    assert (capacity.worker_vcpus, capacity.worker_memory_gb) == (2.0, 4.0)  # WorkerVcpus, WorkerMemoryMiB defaults
    for quota in (capacity.spot_quota, capacity.on_demand_quota):
        assert quota.source in ("applied", "aws default") or (
            quota.vcpus == DEFAULT_FARGATE_VCPUS and any(quota.code in note for note in capacity.notes)
        )


def test_addresses_taken_in_a_worker_subnet_are_not_free(local_stack) -> None:  # noqa: ANN001
    before = read_shared_capacity(STACK).free_addresses
    subnet = described_worker_subnets()[0]["SubnetId"]
    interface = client("ec2").create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    try:
        assert read_shared_capacity(STACK).free_addresses == before - 1
    finally:
        client("ec2").delete_network_interface(NetworkInterfaceId=interface)


def test_a_stack_that_is_not_there_leaves_the_templates_defaults(local_stack) -> None:  # noqa: ANN001
    capacity = read_shared_capacity("no-such-stack")
    assert capacity.environments_from == "the template's defaults" and capacity.free_addresses == 3 * 4091
    assert any("no stack no-such-stack" in note for note in capacity.notes)


def test_plan_warns_when_the_runs_at_once_need_more_than_the_stack_runs(local_stack, tmp_path: Path) -> None:  # noqa: ANN001
    # 300 workers of 2 vCPUs: 600 vCPUs, beyond 256 on Spot + 256 on-demand (MaxVcpus); 300 addresses fit
    big = tmp_path / "big.yaml"
    big.write_text("scenarios: {count: 3000000, seed: 1}\nworkers: 300\nshard_size: 10000\n")
    small = tmp_path / "small.yaml"
    small.write_text("scenarios: {count: 100000, seed: 2}\nworkers: 10\nshard_size: 10000\n")
    done = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", "plan", str(big), str(small), "--seconds-per-scenario", "0.0002",
         "--stack", STACK, "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["shared_capacity"]["environments_from"].startswith(f"stack {STACK}'s")
    [overlap] = document["overlaps"]
    assert [r["workers"] for r in overlap["runs"]] == [300, 10] and overlap["peak_vcpus"] == 620 and not overlap["fits"]
    [warning] = overlap["warnings"]
    assert warning.startswith("vCPUs: the 2 runs planned at once need 620 vCPUs") and "MAX_VCPUS=620" in warning
    assert "stagger the runs" in warning and "scengrid plan: warning: vCPUs:" in done.stderr
    if document["shared_capacity"]["spot_quota"]["source"] == "assumed":
        assert any(SPOT_QUOTA_CODE in note for note in document["shared_capacity"]["notes"])
