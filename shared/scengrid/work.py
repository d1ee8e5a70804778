"""The shard work message (sharder → SQS → worker) and the plan of worker groups."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from scengrid.spec import ModelRef, ScenarioSource

MAX_ARRAY_CHILDREN = 10_000


class ShardWork(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    shard_id: str
    round: int = Field(1, ge=1)
    start: int = Field(ge=0)
    count: int = Field(ge=1)
    model: ModelRef
    scenarios: ScenarioSource


class WorkerGroup(BaseModel):
    """One Batch job of the Map: ``size`` workers (an array job when size > 1). Each item of
    the Map is one of these, self-contained, so the state machine needs no ItemSelector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    group: int = Field(ge=0)
    size: int = Field(ge=1, le=MAX_ARRAY_CHILDREN)


def shard_id_for(index: int) -> str:
    return f"{index:06d}"


def plan_worker_groups(run_id: str, workers: int, shards: int) -> list[WorkerGroup]:
    """Split the workers (never more than shards) into array jobs of at most 10,000 children."""
    total = max(1, min(workers, shards))
    groups = math.ceil(total / MAX_ARRAY_CHILDREN)
    base, extra = divmod(total, groups)
    return [WorkerGroup(run_id=run_id, group=g, size=base + (1 if g < extra else 0)) for g in range(groups)]
