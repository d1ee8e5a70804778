"""How each event moves run and shard status. No event shapes of AWS here: domain events in."""

from __future__ import annotations

from functools import singledispatch

from scengrid.events import (
    AllDone,
    Event,
    RunCancelled,
    RunExecutionChanged,
    RunFailed,
    RunRequested,
    ShardDone,
    ShardFailed,
    ShardWritten,
)
from scengrid.status import ShardRecord, Status
from scengrid.work import ShardWork, shard_id_for

from services.tracker.dal import RunStore

# A FAILED run's record lists at most this many shards (the item stays far below DynamoDB's
# 400 KB; the run's counters give the totals), and its reason says what is wrong with the first few.
MAX_NAMED_SHARDS = 1000
EXPLAINED_SHARDS = 10


@singledispatch
def apply_event(event: Event | RunExecutionChanged, store: RunStore) -> bool:
    """Apply one event; returns whether it changed anything (False for a duplicate)."""
    raise TypeError(f"the tracker does not handle {type(event).__name__}")


@apply_event.register
def _(event: RunRequested, store: RunStore) -> bool:
    spec = event.spec
    store.ensure_run(event.run_id, event.round, spec.scenarios.count, spec.shard_count() or 0, spec.model_dump(mode="json"))
    return store.reopen_run(event.run_id, event.round) if event.round > 1 else True


@apply_event.register
def _(event: ShardWritten, store: RunStore) -> bool:
    store.mark_running(event.run_id, event.shards_total)
    return store.plan_shard(event.run_id, event.shard_id, event.round, event.start, event.count)


@apply_event.register
def _(event: ShardDone, store: RunStore) -> bool:
    return store.finish_shard(
        event.run_id,
        event.shard_id,
        event.round,
        Status.COMPLETE,
        {
            "attempt": event.attempt,
            "output_key": event.output_key,
            "rows": event.rows,
            "duration_s": event.duration_s,
            "eval_s": event.eval_s,
            "task_id": event.task_id,
            # the PD model that scored the shard (credit overlay only)
            **({"model_version": event.model_version} if event.model_version else {}),
            # JSON text: exact floats, read back by ShardRecord
            **({"pnl_stats": event.pnl_stats.model_dump_json()} if event.pnl_stats else {}),
        },
        var_99=event.var_99,
    )


@apply_event.register
def _(event: ShardFailed, store: RunStore) -> bool:
    return store.finish_shard(
        event.run_id,
        event.shard_id,
        event.round,
        Status.FAILED,
        {"attempt": event.attempt, "error": event.error, "task_id": event.task_id},
    )


@apply_event.register
def _(event: AllDone, store: RunStore) -> bool:
    return store.finish_run(
        event.run_id,
        event.round,
        Status.COMPLETE,
        {
            "summary_key": event.summary_key,
            "pnl_prefix": event.pnl_prefix,
            "var_95": event.var_95,
            "var_99": event.var_99,
            "es_975": event.es_975,
            "finished_at": event.at.isoformat(),
        },
    )


@apply_event.register
def _(event: RunFailed, store: RunStore) -> bool:
    """The state machine's report, whichever stage failed. It names no shard: the tracker names
    the failed and missing ones from its own records."""
    unfinished = shards_not_complete(store.shards_total(event.run_id), store.shard_ends(event.run_id))
    return store.finish_run(
        event.run_id,
        event.round,
        Status.FAILED,
        {
            "reason": failure_reason(event.reason, unfinished),
            "failed_shards": list(unfinished)[:MAX_NAMED_SHARDS],
            "finished_at": event.at.isoformat(),
        },
    )


def shards_not_complete(shards_total: int, shards: list[ShardRecord]) -> dict[str, str]:
    """The shards a failed run must name, in order, each with what is wrong with it: FAILED
    (with its error), still PENDING or RUNNING, or planned (one of the run's ``shards_total``)
    but never reported. A shard COMPLETE in an earlier round is done: no retry runs it again."""
    known = {shard.shard_id: shard for shard in shards}
    planned = sorted({shard_id_for(i) for i in range(shards_total)} | known.keys())
    unfinished: dict[str, str] = {}
    for shard_id in planned:
        shard = known.get(shard_id)
        if shard is None:
            unfinished[shard_id] = "never reported"
        elif shard.status is not Status.COMPLETE:
            unfinished[shard_id] = f"{shard.status}" + (f" ({shard.error})" if shard.error else "")
    return unfinished


def failure_reason(stage_reason: str, unfinished: dict[str, str]) -> str:
    """What failed: the first shards not complete, then the failed stage's error and cause."""
    if not unfinished:
        return stage_reason
    named = [f"shard {shard}: {what}" for shard, what in list(unfinished.items())[:EXPLAINED_SHARDS]]
    more = len(unfinished) - len(named)
    return "; ".join(named) + (f"; … {more} more" if more else "") + f". The run's execution failed: {stage_reason}"


@apply_event.register
def _(event: RunCancelled, store: RunStore) -> bool:
    return store.finish_run(
        event.run_id, event.round, Status.CANCELLED, {"reason": event.reason, "finished_at": event.at.isoformat()}
    )


def fail_dead_lettered_shard(work: ShardWork, deliveries: int, store: RunStore) -> bool:
    """A shard whose work message reached the dead-letter queue: its worker died on each of its
    deliveries, so no one reported it. FAILED, saying so, unless it finished meanwhile (or a
    newer round planned it again): the same conditional write as a shard-failed event."""
    error = (
        f"its worker died on each of {deliveries} deliveries (killed, out of memory, or the model ended the process); "
        "the work message went to the dead-letter queue"
    )
    return store.finish_shard(work.run_id, work.shard_id, work.round, Status.FAILED, {"attempt": deliveries, "error": error})


@apply_event.register
def _(event: RunExecutionChanged, store: RunStore) -> bool:
    return store.record_execution(event.run_id, event.round, event.execution_arn, event.status)
