"""Reading what concurrent runs share from the account and the deployed stack, read-only:

- the Fargate vCPU quotas: Service Quotas GetServiceQuota (the applied value); when Service
  Quotas has no applied value (NoSuchResourceException), ListAWSDefaultServiceQuotas (AWS's
  default); when neither answers, AWS's default as Service Quotas lists it, marked ``assumed``;
- the stack (CloudFormation DescribeStacks): its WorkerVcpus, WorkerMemoryMiB and job queue;
  the queue's compute environments (Batch DescribeJobQueues, DescribeComputeEnvironments): their
  type, MaxvCpus and subnets; the subnets' free addresses (EC2 DescribeSubnets,
  AvailableIpAddressCount).

Whatever cannot be read (no credentials, a missing permission, no such stack, no network) is
replaced by its default, and a note says what and why; reading never fails the plan. IAM
actions used: sts:GetCallerIdentity, servicequotas:GetServiceQuota,
servicequotas:ListAWSDefaultServiceQuotas, cloudformation:DescribeStacks,
batch:DescribeJobQueues, batch:DescribeComputeEnvironments, ec2:DescribeSubnets."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from scengrid.aws import client, session
from scengrid.settings import get_settings
from scengrid_cli.planning.capacity import (
    ComputeEnvironment,
    Quota,
    SharedCapacity,
    Subnet,
    assumed_capacity,
)

FARGATE = "fargate"
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
REFUSED = {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "AuthFailure",
           "SignatureDoesNotMatch"}
NO_CREDENTIALS = (
    "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): the account's quotas and the "
    "stack's subnets were not read; the figures below are the defaults"
)


def why(exc: Exception, action: str) -> str:
    """What went wrong with ``action`` (an IAM action name), in words that say what to do."""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in DENIED:
            return f"not allowed to call {action} (grant it to read this)"
        if code in REFUSED:
            return f"the credentials were refused ({code}: {message})"
        return f"{action} failed ({code}: {message})"
    return f"{action} could not reach AWS ({exc})"


def read_shared_capacity(stack: str) -> SharedCapacity:
    """The quotas of the account and region the settings name, and the stack's compute
    environments and worker subnets, each read or replaced by its default with a note."""
    region = get_settings().region
    if session().get_credentials() is None:
        return assumed_capacity(region, stack, [NO_CREDENTIALS])
    try:
        account = client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        reason = why(exc, "sts:GetCallerIdentity")
        return assumed_capacity(region, stack, [f"{reason}: nothing was read from the account; the figures below are the defaults"])
    capacity = assumed_capacity(region, stack, [])
    capacity.account = account
    capacity.spot_quota, capacity.on_demand_quota = _quotas(capacity.spot_quota, capacity.on_demand_quota, capacity.notes)
    _read_stack(capacity)
    return capacity


def _quotas(spot: Quota, on_demand: Quota, notes: list[str]) -> tuple[Quota, Quota]:
    quotas = client("service-quotas")
    read: dict[str, Quota] = {}
    without_applied = []
    for quota in (spot, on_demand):
        try:
            value = quotas.get_service_quota(ServiceCode=FARGATE, QuotaCode=quota.code)["Quota"]["Value"]
            read[quota.code] = quota.model_copy(update={"vcpus": float(value), "source": "applied"})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                notes.append(f"quota {quota.code}: {why(exc, 'servicequotas:GetServiceQuota')}; assuming AWS's default, "
                             f"{quota.vcpus:,.0f} vCPUs")
                continue
            without_applied.append(quota)
        except BotoCoreError as exc:
            notes.append(f"quota {quota.code}: {why(exc, 'servicequotas:GetServiceQuota')}; assuming {quota.vcpus:,.0f} vCPUs")
    if without_applied:
        read.update(_aws_defaults(without_applied, notes))
    return read.get(spot.code, spot), read.get(on_demand.code, on_demand)


def _aws_defaults(quotas: list[Quota], notes: list[str]) -> dict[str, Quota]:
    """Service Quotas' AWS defaults for the quotas it holds no applied value of."""
    try:
        pages = client("service-quotas").get_paginator("list_aws_default_service_quotas").paginate(ServiceCode=FARGATE)
        defaults = {q["QuotaCode"]: q["Value"] for page in pages for q in page["Quotas"]}
    except (BotoCoreError, ClientError) as exc:
        defaults = {}
        unknown = isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "NoSuchResourceException"
        reason = (f"it knows no {FARGATE} quotas in this region (NoSuchResourceException)" if unknown
                  else why(exc, "servicequotas:ListAWSDefaultServiceQuotas"))
    else:
        reason = "Service Quotas lists no AWS default for it"
    found = {q.code: q.model_copy(update={"vcpus": float(defaults[q.code]), "source": "aws default"})
             for q in quotas if q.code in defaults}
    missing = [q for q in quotas if q.code not in found]
    if missing:
        notes.append(
            f"quota {', '.join(q.code for q in missing)}: Service Quotas holds no applied value, and {reason}: assuming "
            f"{missing[0].vcpus:,.0f} vCPUs, the AWS default Service Quotas lists (new accounts may start lower: "
            f"aws service-quotas get-service-quota --service-code {FARGATE} --quota-code {missing[0].code} shows the account's)"
        )
    return found


def _read_stack(capacity: SharedCapacity) -> None:
    """The stack's task shape, compute environments and worker subnets, into ``capacity``."""
    try:
        [stack] = client("cloudformation").describe_stacks(StackName=capacity.stack)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            capacity.notes.append(f"no stack {capacity.stack} in {capacity.region} (--stack names it): the compute "
                                  "environments and subnets are the template's defaults")
        else:
            capacity.notes.append(f"stack {capacity.stack}: {why(exc, 'cloudformation:DescribeStacks')}; the compute "
                                  "environments and subnets are the template's defaults")
        return
    except BotoCoreError as exc:
        capacity.notes.append(f"stack {capacity.stack}: {why(exc, 'cloudformation:DescribeStacks')}")
        return
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    if parameters.get("WorkerVcpus"):
        capacity.worker_vcpus = float(parameters["WorkerVcpus"])
    if parameters.get("WorkerMemoryMiB"):
        capacity.worker_memory_gb = float(parameters["WorkerMemoryMiB"]) / 1024
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    subnet_ids = _environments(capacity, outputs.get("JobQueueArn"), parameters.get("MaxVcpus"))
    if subnet_ids:
        _subnets(capacity, subnet_ids)


def _environments(capacity: SharedCapacity, queue_arn: str | None, max_vcpus: str | None) -> list[str]:
    """The job queue's enabled compute environments into ``capacity``; their subnets."""
    if max_vcpus:  # the stack's parameter, in case Batch cannot be read
        for environment in capacity.environments:
            environment.max_vcpus = int(max_vcpus)
        capacity.environments_from = f"stack {capacity.stack}'s MaxVcpus parameter"
    if not queue_arn:
        capacity.notes.append(f"stack {capacity.stack} has no JobQueueArn output: its compute environments were not read")
        return []
    batch = client("batch")
    try:
        [queue] = batch.describe_job_queues(jobQueues=[queue_arn])["jobQueues"]
        arns = [o["computeEnvironment"] for o in sorted(queue["computeEnvironmentOrder"], key=lambda o: o["order"])]
        described = batch.describe_compute_environments(computeEnvironments=arns)["computeEnvironments"]
    except (BotoCoreError, ClientError, ValueError) as exc:
        reason = why(exc, "batch:DescribeJobQueues/DescribeComputeEnvironments") if not isinstance(exc, ValueError) else str(exc)
        capacity.notes.append(f"job queue of stack {capacity.stack}: {reason}; the worker subnets are the template's defaults")
        return []
    enabled = [e for e in described if e.get("state", "ENABLED") == "ENABLED"]
    for disabled in (e for e in described if e not in enabled):
        capacity.notes.append(f"compute environment {disabled['computeEnvironmentName']} is {disabled['state']}: it runs nothing")
    capacity.environments = [
        ComputeEnvironment(name=e["computeEnvironmentName"], spot=e["computeResources"]["type"] == "FARGATE_SPOT",
                           max_vcpus=e["computeResources"]["maxvCpus"])
        for e in enabled
    ]
    capacity.environments_from = f"stack {capacity.stack}'s job queue (Batch)"
    return sorted({s for e in enabled for s in e["computeResources"].get("subnets", [])})


def _subnets(capacity: SharedCapacity, subnet_ids: list[str]) -> None:
    try:
        described = client("ec2").describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    except (BotoCoreError, ClientError) as exc:
        capacity.notes.append(f"worker subnets {', '.join(subnet_ids)}: {why(exc, 'ec2:DescribeSubnets')}; assuming "
                              "the template's empty subnets")
        return
    capacity.subnets = [
        Subnet(subnet_id=s["SubnetId"], availability_zone=s.get("AvailabilityZone", ""), cidr=s.get("CidrBlock", ""),
               free_addresses=s["AvailableIpAddressCount"])
        for s in sorted(described, key=lambda s: s.get("AvailabilityZone", ""))
    ]
    capacity.subnets_from = "EC2 DescribeSubnets (AvailableIpAddressCount, now)"
