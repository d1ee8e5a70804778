"""Every number the planner assumes, with its source date. Override any of them with
``scengrid plan --param NAME=VALUE``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PRICES_AS_OF = "2026-11, us-east-1, Linux/x86, list prices"


class PlanParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prices_as_of: str = PRICES_AS_OF
    # Fargate (per vCPU-hour / GB-hour)
    fargate_vcpu_hour: float = 0.04048
    fargate_gb_hour: float = 0.004445
    fargate_spot_discount: float = Field(0.70, ge=0, lt=1, description="Spot price = on-demand x (1 - discount)")
    # request prices (per request)
    sfn_transition: float = 0.025 / 1000
    s3_put: float = 0.005 / 1000
    s3_get: float = 0.0004 / 1000
    dynamodb_write: float = 0.625 / 1_000_000
    dynamodb_read: float = 0.125 / 1_000_000
    sqs_request: float = 0.40 / 1_000_000
    eventbridge_event: float = 1.00 / 1_000_000
    # task shape (the worker job definition)
    worker_vcpus: float = 2.0
    worker_memory_gb: float = 4.0
    # Fargate behaviour
    start_latency_median_s: float = Field(45.0, ge=0, description="task start (placement + image pull) median")
    start_latency_sigma: float = Field(0.35, ge=0, description="lognormal sigma of the start latency; 0 = fixed")
    spot_interruptions_per_hour: float = Field(0.05, ge=0, description="hazard of a Spot reclaim per task-hour")
    shard_overhead_s: float = Field(0.8, ge=0, description="per shard: SQS, S3 write, events")
    stage_overhead_s: float = Field(40.0, ge=0, description="sharder and collator: start and run, each")
    # Batch and the API limits
    max_array_children: int = 10_000
    submit_jobs_per_s: float = 50.0
    map_max_concurrency: int = 20
    # network
    azs: int = 3
    ips_reserved_per_subnet: int = 5
