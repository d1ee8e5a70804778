"""Configuration: one pydantic-settings model, read from ``SCENGRID_*`` variables."""

from __future__ import annotations

from typing import Literal

import math
import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the AWS resources are. On AWS the job definitions and the Lambda set these;
    locally the runtime sets them from the stack it provisioned."""

    model_config = SettingsConfigDict(env_prefix="SCENGRID_", extra="ignore")

    endpoint_url: str | None = Field(None, description="AWS endpoint override (the local emulator)")
    region: str = Field("us-east-1", description="AWS region")
    bucket: str = Field("", description="bucket holding manifests, shard outputs and results")
    runs_table: str = Field("", description="DynamoDB table of runs")
    shards_table: str = Field("", description="DynamoDB table of shards")
    event_bus: str = Field("", description="EventBridge bus name")
    work_queue_url: str = Field(
        "", description="the run's work queue, which a worker takes shards from (its Batch job sets it); empty: every "
        "run's queue in turn (a long-lived worker, as docker-compose's)"
    )
    work_queue_prefix: str = Field("", description="name prefix of the runs' work queues (one per run and round)")
    work_max_receives: int = Field(
        3, ge=1, le=1000, description="deliveries of a shard's work message before it goes to the dead-letter queue"
    )
    tracker_queue_url: str = Field("", description="SQS queue feeding the tracker")
    work_dead_letter_queue_url: str = Field("", description="dead-letter queue of the work queue (shards whose worker died on every delivery)")
    state_machine_arn: str = Field("", description="run state machine")
    idempotency_table: str = Field("", description="DynamoDB table of the API's idempotency records (Idempotency-Key)")
    admission_table: str = Field("", description="DynamoDB table of the API's admission counter: the active runs, their scenarios")
    max_active_runs: int = Field(
        32, ge=1, description="runs that may be in flight (PENDING or RUNNING) at once; POST /runs answers 429 beyond"
    )
    max_scenarios_in_flight: int = Field(
        100_000_000, ge=1, description="scenarios of the runs in flight, together; POST /runs answers 429 beyond"
    )
    worker_processes: int = Field(0, ge=0, description="model processes inside one worker; 0 = one per CPU")
    visibility_timeout_s: int = Field(
        60, ge=5, le=43_200, description="how long a shard stays hidden from other workers without a heartbeat"
    )
    worker_idle_polls: int = Field(2, ge=1, description="empty receives in a row, the queue drained, before a worker stops")
    worker_poll_s: float = Field(
        1.0, gt=0, le=20, description="an idle worker's look at the work queue: a long poll of this many whole seconds, "
        "or below 1 a short poll followed by a pause this long (the local emulator's queue answers at once)"
    )
    log_file: str | None = Field(None, description="write service logs to this file instead of stdout")
    chaos_dir: str | None = Field(None, description="local chaos runs: inject faults and log them here")
    chaos_seed: int = Field(0, description="seed of the injected faults")
    chaos_throttle_rate: float = Field(0.05, ge=0, le=1, description="share of S3/DynamoDB calls throttled")
    chaos_duplicate_rate: float = Field(0.05, ge=0, le=1, description="share of events put twice")
    chaos_poison_shards: str = Field("", description="comma-separated shard ids whose evaluation fails (fault drills)")
    collate_wait_s: float = Field(120.0, gt=0, description="how long the collator waits for the tracker")
    model_uri: str = Field("", description="the PD model: s3://bucket/key (SHA-256 in its metadata) or a baked-in file path")
    model_check_s: float = Field(30.0, ge=0, description="how often a loaded S3 model checks for a new version (a HEAD); 0 = every call")
    model_cache_dir: str = Field("/tmp/scengrid-models", description="where downloaded models are kept, by SHA-256")
    inference_function: str = Field("", description="the inference Lambda the workers invoke for PDs (credit overlay, mode lambda)")
    lambda_endpoint_url: str | None = Field(None, description="Lambda endpoint override (the local invoke endpoint)")
    pd_model_file: str | None = Field(None, description="local stack: the trained PD model it publishes (default build/models/pd.onnx)")

    @property
    def backend(self) -> Literal["local", "aws"]:
        """Where the run goes: the local emulator (an endpoint override) or AWS. Sizing follows it."""
        return "local" if self.endpoint_url else "aws"

    def require(self, *names: str) -> None:
        """Fail early, naming every missing setting, instead of a cryptic AWS error later."""
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            env = ", ".join(f"SCENGRID_{n.upper()}" for n in missing)
            raise RuntimeError(f"scengrid is not configured: set {env}")

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for a child process or a container."""
        return {
            f"SCENGRID_{name.upper()}": str(value)
            for name, value in self.model_dump().items()
            if value not in (None, "")
        }


class JobEnv(BaseSettings):
    """What a Batch job of a run receives through its container overrides."""

    model_config = SettingsConfigDict(env_prefix="SCENGRID_", extra="ignore")

    run_id: str = Field(min_length=1)
    round: int = Field(1, ge=1)


class BatchEnv(BaseSettings):
    """Variables AWS Batch sets in every job container."""

    model_config = SettingsConfigDict(env_prefix="AWS_BATCH_", extra="ignore")

    job_id: str = "local"
    job_array_index: int | None = None


class ContainerEnv(BaseSettings):
    """Which image a job's container runs: ``SCENGRID_IMAGE`` where the local container runner
    sets it, else ECS's task metadata endpoint v4, whose URI Fargate sets in every container."""

    model_config = SettingsConfigDict(extra="ignore")

    scengrid_image: str = ""
    ecs_container_metadata_uri_v4: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def cpu_count() -> int:
    """CPUs this process may use: those it may run on, bounded by its cgroup's CPU quota
    (``--cpus`` of a container; on Fargate the task's vCPUs), rounded up, at least 1."""
    from scengrid.cpu_quota import cgroup_cpu_limit

    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_limit()
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota - 1e-9)))


def use_settings(settings: Settings) -> None:
    """Point this process (and the children it starts) at ``settings``."""
    from scengrid.aws import reset_clients

    os.environ.update(settings.as_env())
    get_settings.cache_clear()
    reset_clients()
