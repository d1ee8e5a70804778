"""Split a run into shards: a manifest in S3, one work message per shard, shard-written events."""

from __future__ import annotations

import math

from pydantic import BaseModel

from scengrid import layout, s3io
from scengrid.aws import client
from scengrid.events import ShardWritten, publish
from scengrid.models import load_model
from scengrid.settings import get_settings
from scengrid.spec import RunSpec
from scengrid.status import Status, read_shards
from scengrid.work import ShardWork, WorkerGroup, plan_worker_groups, shard_id_for

SQS_BATCH = 10


class ShardPlan(BaseModel):
    run_id: str
    spec: RunSpec
    shard_size: int
    shards: list[ShardWork]
    groups: list[WorkerGroup]


def plan_shards(run_id: str, spec: RunSpec, round_: int = 1) -> ShardPlan:
    """Contiguous scenario ranges of ``shard_size`` (the last one shorter)."""
    size = spec.resolved_shard_size()
    total = spec.scenarios.count
    count = math.ceil(total / size)
    shards = [
        ShardWork(
            run_id=run_id,
            shard_id=shard_id_for(i),
            round=round_,
            start=i * size,
            count=min(size, total - i * size),
            model=spec.model,
            scenarios=spec.scenarios,
        )
        for i in range(count)
    ]
    return ShardPlan(
        run_id=run_id, spec=spec, shard_size=size, shards=shards, groups=plan_worker_groups(run_id, spec.workers, count)
    )


def enqueue(shards: list[ShardWork]) -> None:
    sqs = client("sqs")
    queue_url = get_settings().work_queue_url
    for i in range(0, len(shards), SQS_BATCH):
        batch = shards[i : i + SQS_BATCH]
        entries = [{"Id": s.shard_id, "MessageBody": s.model_dump_json()} for s in batch]
        for _ in range(5):
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            if not failed:
                break
            failed_ids = {f["Id"] for f in failed}
            entries = [e for e in entries if e["Id"] in failed_ids]
        else:
            raise RuntimeError(f"SQS refused {len(entries)} work messages: {failed[:1]}")


def shard_run(run_id: str, spec: RunSpec, round_: int = 1) -> list[ShardWork]:
    """Plan, persist and announce the shards of a run that are not COMPLETE yet (all of them
    in round 1; in a retry round, the FAILED and missing ones). Safe to repeat: keys are
    deterministic and the tracker ignores shards it already knows. Returns the queued shards."""
    load_model(spec.model.name, spec.model.params)  # fail here, not in every worker
    plan = plan_shards(run_id, spec, round_)
    complete = {s.shard_id for s in read_shards(run_id) if s.status is Status.COMPLETE} if round_ > 1 else set()
    todo = [s for s in plan.shards if s.shard_id not in complete]
    groups = plan_worker_groups(run_id, spec.workers, max(1, len(todo)))
    s3io.put_json(layout.manifest_key(run_id), plan.model_dump(mode="json"))
    enqueue(todo)
    s3io.put_json(layout.worker_groups_key(run_id), [g.model_dump() for g in groups])
    publish(
        (
            ShardWritten(
                run_id=run_id,
                round=round_,
                shard_id=s.shard_id,
                shards_total=len(plan.shards),
                start=s.start,
                count=s.count,
            )
            for s in todo
        ),
        service="sharder",
    )
    return todo
