"""The shard work message (sharder → SQS → worker) and the plan of worker groups."""

from __future__ import annotations

import hashlib
import math
import re

from pydantic import BaseModel, ConfigDict, Field

from scengrid.spec import ModelRef, ScenarioSource

MAX_ARRAY_CHILDREN = 10_000
MAX_QUEUE_NAME = 80
SHARE_PATTERN = r"^[A-Za-z0-9]{1,255}$"


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
    the Map is one of these, self-contained, so the state machine needs no ItemSelector: the
    workers' queue (the run's own, for this round) and the run's fair-share identifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    group: int = Field(ge=0)
    size: int = Field(ge=1, le=MAX_ARRAY_CHILDREN)
    queue_url: str = Field(min_length=1, description="the run's work queue of this round: its workers take shards from it alone")
    share: str = Field(pattern=SHARE_PATTERN, description="the run's fair-share identifier (share_identifier)")


def shard_id_for(index: int) -> str:
    return f"{index:06d}"


def plan_worker_groups(run_id: str, workers: int, shards: int, queue_url: str, share: str) -> list[WorkerGroup]:
    """Split the workers (never more than shards) into array jobs of at most 10,000 children."""
    total = max(1, min(workers, shards))
    groups = math.ceil(total / MAX_ARRAY_CHILDREN)
    base, extra = divmod(total, groups)
    return [
        WorkerGroup(run_id=run_id, group=g, size=base + (1 if g < extra else 0), queue_url=queue_url, share=share)
        for g in range(groups)
    ]


def share_identifier(run_id: str, share: str | None) -> str:
    """The fair-share identifier of a run's Batch jobs: the share its spec names, else one of
    its own, ``run`` and the run id's letters and digits (Batch allows nothing else)."""
    return share or "run" + re.sub(r"[^A-Za-z0-9]", "", run_id)[:252]


def work_queue_name(prefix: str, run_id: str, round_: int) -> str:
    """The name of a run's work queue for one round: ``<prefix><run id>_r<round>``.

    A queue per round, because SQS refuses a queue name for 60 s after its queue is deleted,
    and the tracker deletes a round's queue as the round ends. SQS allows 80 letters, digits,
    ``-`` and ``_``: other characters of the run id become ``-``, and a run id too long to fit
    is cut and told apart by its digest."""
    suffix = f"_r{round_}"
    name = re.sub(r"[^A-Za-z0-9_-]", "-", run_id)
    room = MAX_QUEUE_NAME - len(prefix) - len(suffix)
    if len(name) > room:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        name = f"{name[: room - 9]}-{digest}"
    return f"{prefix}{name}{suffix}"
