"""Split a run into shards: a manifest in S3, one work message per shard, shard-written events."""

from __future__ import annotations

import math

from pydantic import BaseModel

from scengrid import layout, s3io, work_queues
from scengrid.aws import client
from scengrid.events import ShardWritten, publish
from scengrid.models import load_model
from scengrid.settings import get_settings
from scengrid.sizing import Sizing, choose
from scengrid.spec import RunSpec
from scengrid.status import Status, read_shards
from scengrid.work import ShardWork, WorkerGroup, plan_worker_groups, shard_id_for, share_identifier

SQS_BATCH = 10


class ShardPlan(BaseModel):
    run_id: str
    spec: RunSpec
    shard_size: int
    sizing: Sizing
    shards: list[ShardWork]
    groups: list[WorkerGroup]


def plan_shards(run_id: str, spec: RunSpec, sizing: Sizing, queue_url: str, round_: int = 1) -> ShardPlan:
    """Contiguous scenario ranges of the sizing's ``shard_size`` (the last one shorter), and the
    worker groups that take them from the round's ``queue_url``."""
    size = sizing.shard_size
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
        run_id=run_id, spec=spec, shard_size=size, sizing=sizing, shards=shards,
        groups=plan_worker_groups(run_id, sizing.workers, count, queue_url, share_identifier(run_id, spec.share)),
    )


def earlier_sizing(run_id: str) -> Sizing | None:
    """The sizing that an earlier round recorded in the manifest, if any."""
    if not s3io.object_exists(layout.manifest_key(run_id)):
        return None
    manifest = s3io.get_json(layout.manifest_key(run_id))
    return Sizing.model_validate(manifest["sizing"]) if "sizing" in manifest else None


def enqueue(queue_url: str, shards: list[ShardWork]) -> None:
    sqs = client("sqs")
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


def shard_run(run_id: str, spec: RunSpec, round_: int = 1) -> tuple[Sizing, list[ShardWork]]:
    """Plan, persist and announce the shards of a run that are not COMPLETE yet (all of them
    in round 1; in a retry round, the FAILED and missing ones). Safe to repeat: keys are
    deterministic and the tracker ignores shards it already knows. Returns the sizing and the
    queued shards.

    Round 1 chooses the sizing (``scengrid.sizing``: calibrated when the spec says auto);
    later rounds reuse round 1's from the manifest, so that shard ids keep their ranges."""
    model = load_model(spec.model.name, spec.model.params)  # fail here, not in every worker
    sizing = earlier_sizing(run_id) if round_ > 1 else None
    if sizing is None:
        sizing = choose(spec, model, get_settings().backend)
    queue_url = work_queues.create(run_id, round_)
    plan = plan_shards(run_id, spec, sizing, queue_url, round_)
    complete = {s.shard_id for s in read_shards(run_id) if s.status is Status.COMPLETE} if round_ > 1 else set()
    todo = [s for s in plan.shards if s.shard_id not in complete]
    groups = plan_worker_groups(run_id, sizing.workers, max(1, len(todo)), queue_url, share_identifier(run_id, spec.share))
    s3io.put_json(layout.manifest_key(run_id), plan.model_dump(mode="json"))
    enqueue(queue_url, todo)
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
    return sizing, todo
