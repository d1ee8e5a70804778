"""The tracker against the emulator's DynamoDB: forward-only status, counters on the first
transition only, whatever the order and number of deliveries."""

from __future__ import annotations

import itertools
import uuid

import pytest

from scengrid.events import AllDone, RunFailed, RunRequested, ShardDone, ShardFailed, ShardWritten
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import Status, read_run, read_shards
from services.tracker.dal import RunStore
from services.tracker.logic import apply_event

SHARDS = 3


def events_of_a_run(run_id: str) -> list:
    spec = RunSpec(scenarios=GeneratedScenarios(count=3000), shard_size=1000)
    written = [ShardWritten(run_id=run_id, shard_id=f"{i:06d}", shards_total=SHARDS, start=i * 1000, count=1000) for i in range(SHARDS)]
    done = [
        ShardDone(run_id=run_id, shard_id=f"{i:06d}", output_key=f"k{i}", rows=1000, duration_s=0.5, eval_s=0.4, task_id="t")
        for i in range(SHARDS)
    ]
    finished = AllDone(run_id=run_id, summary_key="s", pnl_key="p", scenarios=3000, var_95=1.0, var_99=2.0, es_975=2.5)
    return [RunRequested(run_id=run_id, spec=spec), *written, *done, finished]


def state(run_id: str) -> tuple:
    run = read_run(run_id)
    shards = sorted((s.shard_id, s.status, s.rows) for s in read_shards(run_id))
    return run.status, run.shards_total, run.shards_done, run.shards_failed, run.summary_key, shards


@pytest.mark.parametrize("order", ["in order", "reversed", "interleaved"])
def test_any_order_and_duplicates_give_the_same_state(local_stack, order: str) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    events = events_of_a_run(run_id)
    if order == "reversed":
        events = events[::-1]
    elif order == "interleaved":
        events = [e for pair in itertools.zip_longest(events[::2], events[1::2]) for e in pair if e is not None]
    for event in events:
        apply_event(event, store)
    first = state(run_id)
    assert first[0] is Status.COMPLETE and first[2] == SHARDS and first[3] == 0
    assert all(status is Status.COMPLETE for _, status, _ in first[5])

    refused_before = read_run(run_id).duplicates
    for event in events[::-1]:  # every event delivered again, in reverse
        apply_event(event, store)
    assert state(run_id) == first
    # every replay but run-requested (an idempotent fill-in) was refused and counted
    assert read_run(run_id).duplicates - refused_before == len(events) - 1


def test_status_never_moves_backwards(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    events = events_of_a_run(run_id)
    for event in events:
        apply_event(event, store)
    assert apply_event(events[1], store) is False  # shard-written after shard-done: ignored
    assert {s.status for s in read_shards(run_id)} == {Status.COMPLETE}
    assert read_run(run_id).status is Status.COMPLETE


def test_a_retry_round_reopens_only_what_failed(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    requested, *written = events_of_a_run(run_id)[: 1 + SHARDS]
    apply_event(requested, store)
    for event in written:
        apply_event(event, store)
    apply_event(ShardDone(run_id=run_id, shard_id="000000", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    apply_event(ShardFailed(run_id=run_id, shard_id="000001", error="ValueError: boom", task_id="t"), store)
    apply_event(ShardDone(run_id=run_id, shard_id="000002", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    apply_event(RunFailed(run_id=run_id, reason="shard 000001 failed", failed_shards=["000001"]), store)
    assert read_run(run_id).status is Status.FAILED

    apply_event(requested.model_copy(update={"round": 2}), store)
    apply_event(written[1].model_copy(update={"round": 2}), store)
    run = read_run(run_id)
    assert (run.status, run.round, run.shards_done, run.shards_failed, run.reason) == (Status.RUNNING, 2, 2, 0, None)
    # a late run-failed of round 1 changes nothing
    assert apply_event(RunFailed(run_id=run_id, reason="late", failed_shards=[]), store) is False
    apply_event(ShardDone(run_id=run_id, round=2, shard_id="000001", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    run = read_run(run_id)
    assert (run.status, run.shards_done, run.shards_failed) == (Status.RUNNING, 3, 0)
    assert {s.shard_id: (s.status, s.round) for s in read_shards(run_id)}["000001"] == (Status.COMPLETE, 2)
