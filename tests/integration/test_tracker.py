"""The tracker against the emulator's DynamoDB: forward-only status, counters on the first
transition only, whatever the order and number of deliveries; a failed run names its failed
and missing shards from the tracker's own records; the execution of each round, from Step
Functions' status changes."""

from __future__ import annotations

import itertools
import json
import math
import uuid
from collections.abc import Callable

import pytest

from scengrid.events import (
    AllDone,
    ExecutionStatus,
    RunFailed,
    RunRequested,
    ShardDone,
    ShardFailed,
    ShardWritten,
    parse_envelope,
)
from scengrid_cli.local.pollers import LambdaContext, sqs_event
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import Status, read_run, read_shards
from services.tracker.dal import RunStore
from services.tracker.logic import apply_event
from services.tracker.queries import run_view_of
from tests.eventbridge import envelope_of, execution_status_change

SHARDS = 3


def events_of_a_run(run_id: str) -> list:
    spec = RunSpec(scenarios=GeneratedScenarios(count=3000), shard_size=1000)
    written = [ShardWritten(run_id=run_id, shard_id=f"{i:06d}", shards_total=SHARDS, start=i * 1000, count=1000) for i in range(SHARDS)]
    done = [
        ShardDone(run_id=run_id, shard_id=f"{i:06d}", output_key=f"k{i}", rows=1000, duration_s=0.5, eval_s=0.4, task_id="t",
                  var_99=2.0 + 0.1 * i)
        for i in range(SHARDS)
    ]
    finished = AllDone(run_id=run_id, summary_key="s", pnl_prefix="p/", pnl_files=1, scenarios=3000, var_95=1.0, var_99=2.0, es_975=2.5)
    return [RunRequested(run_id=run_id, spec=spec), *written, *done, finished]


def state(run_id: str) -> tuple:
    run = read_run(run_id)
    shards = sorted((s.shard_id, s.status, s.rows) for s in read_shards(run_id))
    sums = (run.var99_n, round(run.var99_sum, 9), round(run.var99_sumsq, 9))
    return run.status, run.shards_total, run.shards_done, run.shards_failed, run.summary_key, sums, shards


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
    assert all(status is Status.COMPLETE for _, status, _ in first[6])
    assert first[5] == (SHARDS, 6.3, round(4.0 + 4.41 + 4.84, 9))  # each shard's VaR 99% counted once

    refused_before = read_run(run_id).duplicates
    for event in events[::-1]:  # every event delivered again, in reverse
        apply_event(event, store)
    assert state(run_id) == first
    # every replay but run-requested (an idempotent fill-in) was refused and counted
    assert read_run(run_id).duplicates - refused_before == len(events) - 1


def test_a_run_in_flight_shows_a_partial_var_99_with_an_interval(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    events = events_of_a_run(run_id)
    for event in events[: 1 + SHARDS + 1]:  # requested, written, one shard done
        apply_event(event, store)
    assert run_view_of(read_run(run_id)).partial_var_99 is None  # one shard: no spread yet
    apply_event(events[1 + SHARDS + 1], store)
    partial = run_view_of(read_run(run_id)).partial_var_99
    half = 12.706204736 * 0.1 / math.sqrt(2) / math.sqrt(2)  # t(1) 97.5% x sd(2.0, 2.1) / sqrt(2)
    assert partial is not None and partial.shards == 2 and partial.confidence == 0.95
    assert (partial.estimate, partial.low, partial.high) == pytest.approx((2.05, 2.05 - half, 2.05 + half), rel=1e-6)
    for event in events[1 + SHARDS + 2 :]:
        apply_event(event, store)
    final = run_view_of(read_run(run_id))
    assert final.var_99 == 2.0 and final.partial_var_99 is None  # the exact figure replaces it


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
    apply_event(RunFailed(run_id=run_id, reason="Collate: States.TaskFailed"), store)
    assert (read_run(run_id).status, read_run(run_id).failed_shards) == (Status.FAILED, ["000001"])

    apply_event(requested.model_copy(update={"round": 2}), store)
    apply_event(written[1].model_copy(update={"round": 2}), store)
    run = read_run(run_id)
    assert (run.status, run.round, run.shards_done, run.shards_failed, run.reason, run.failed_shards) == (Status.RUNNING, 2, 2, 0, None, [])
    # a late run-failed of round 1 changes nothing
    assert apply_event(RunFailed(run_id=run_id, reason="late"), store) is False
    apply_event(ShardDone(run_id=run_id, round=2, shard_id="000001", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    run = read_run(run_id)
    assert (run.status, run.shards_done, run.shards_failed) == (Status.RUNNING, 3, 0)
    assert {s.shard_id: (s.status, s.round) for s in read_shards(run_id)}["000001"] == (Status.COMPLETE, 2)


# ---------------------------------------------------------------- the shards a failed run names
def test_a_failed_run_names_its_failed_and_missing_shards_though_run_failed_lists_none(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    apply_event(RunRequested(run_id=run_id, spec=RunSpec(scenarios=GeneratedScenarios(count=4000), shard_size=1000)), store)
    for i in range(3):  # 000003 is planned but its shard-written never reaches the tracker
        apply_event(ShardWritten(run_id=run_id, shard_id=f"{i:06d}", shards_total=4, start=i * 1000, count=1000), store)
    apply_event(ShardDone(run_id=run_id, shard_id="000000", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    apply_event(ShardFailed(run_id=run_id, shard_id="000001", error="ValueError: boom", task_id="t"), store)
    # 000002 never reports: its worker group failed
    assert apply_event(RunFailed(run_id=run_id, reason="Evaluate: States.ExceedToleratedFailureThreshold"), store) is True
    view = run_view_of(read_run(run_id))
    assert view.status is Status.FAILED and view.failed_shards == ["000001", "000002", "000003"]
    assert view.reason == (
        "shard 000001: FAILED (ValueError: boom); shard 000002: PENDING; shard 000003: never reported."
        " The run's execution failed: Evaluate: States.ExceedToleratedFailureThreshold"
    )

    # a shard that reports after the run failed changes the shard, not what the run recorded
    apply_event(ShardDone(run_id=run_id, shard_id="000002", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    assert apply_event(RunFailed(run_id=run_id, reason="again"), store) is False
    assert read_run(run_id).failed_shards == ["000001", "000002", "000003"]


def test_a_run_that_fails_before_any_shard_ran_names_them_all_up_to_a_bound(local_stack) -> None:  # noqa: ANN001
    from services.tracker.logic import MAX_NAMED_SHARDS

    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    spec = RunSpec(scenarios=GeneratedScenarios(count=MAX_NAMED_SHARDS + 500), shard_size=1)
    apply_event(RunRequested(run_id=run_id, spec=spec), store)
    apply_event(RunFailed(run_id=run_id, reason="Evaluate: States.TaskFailed"), store)
    run = read_run(run_id)
    assert run.status is Status.FAILED and run.shards_total == MAX_NAMED_SHARDS + 500
    assert run.failed_shards == [f"{i:06d}" for i in range(MAX_NAMED_SHARDS)]
    assert run.reason.startswith("shard 000000: never reported; shard 000001: never reported;")
    assert run.reason.endswith(f"; shard 000009: never reported; … {MAX_NAMED_SHARDS + 490} more. The run's execution failed: Evaluate: States.TaskFailed")


def test_a_failed_retry_round_names_only_what_is_still_not_complete(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    requested, *written = events_of_a_run(run_id)[: 1 + SHARDS]
    for event in (requested, *written):
        apply_event(event, store)
    apply_event(ShardDone(run_id=run_id, shard_id="000000", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    for shard in ("000001", "000002"):
        apply_event(ShardFailed(run_id=run_id, shard_id=shard, error="ValueError: boom", task_id="t"), store)
    apply_event(RunFailed(run_id=run_id, reason="Collate: States.TaskFailed"), store)
    assert read_run(run_id).failed_shards == ["000001", "000002"]

    apply_event(requested.model_copy(update={"round": 2}), store)
    for event in written[1:]:
        apply_event(event.model_copy(update={"round": 2}), store)
    apply_event(ShardDone(run_id=run_id, round=2, shard_id="000001", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    apply_event(RunFailed(run_id=run_id, round=2, reason="Collate: States.TaskFailed"), store)
    run = read_run(run_id)
    assert (run.status, run.round, run.failed_shards) == (Status.FAILED, 2, ["000002"])  # 000002 is missing in round 2


# ---------------------------------------------------------------- the execution of each round
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:scengrid-run"


def execution_of(run_id: str, round_: int = 1) -> tuple[str, Callable[[ExecutionStatus], str]]:
    """An execution of the run's round, named as EventBridge names the executions it starts
    (not after the run): its ARN, and the SQS body of each of its status changes."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:scengrid-run:{uuid.uuid4()}_{uuid.uuid4().hex[:8]}"
    requested = RunRequested(run_id=run_id, round=round_, spec=RunSpec(scenarios=GeneratedScenarios(count=3000), shard_size=1000))
    execution_input = json.dumps(envelope_of(requested, "api"))
    return arn, lambda status: json.dumps(execution_status_change(arn, STATE_MACHINE, status, execution_input))


def test_the_tracker_lambda_records_the_execution_from_its_status_change(local_stack) -> None:  # noqa: ANN001
    from services.tracker.handler import lambda_handler

    run_id = f"t-{uuid.uuid4().hex[:8]}"
    requested, *_ = events_of_a_run(run_id)
    apply_event(requested, RunStore())
    arn, change = execution_of(run_id)
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": change(ExecutionStatus.RUNNING), "MD5OfBody": "-"}
    response = lambda_handler(sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:tracker", "us-east-1"), LambdaContext("tracker"))
    assert response == {"batchItemFailures": []}
    view = run_view_of(read_run(run_id))
    assert (view.execution_arn, view.execution_status) == (arn, "RUNNING")
    assert view.status is Status.PENDING  # the run's status comes from our events only


def test_execution_status_changes_apply_once_and_only_forward(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    apply_event(events_of_a_run(run_id)[0], store)
    arn, change = execution_of(run_id)
    other, other_change = execution_of(run_id)  # a second execution of the same round
    before = read_run(run_id).duplicates
    applied = [
        apply_event(parse_envelope(body), store)
        for body in (
            change(ExecutionStatus.RUNNING),
            change(ExecutionStatus.RUNNING),  # a duplicate delivery
            other_change(ExecutionStatus.RUNNING),
            change(ExecutionStatus.SUCCEEDED),
            change(ExecutionStatus.SUCCEEDED),
            change(ExecutionStatus.RUNNING),  # late: the execution has ended
            other_change(ExecutionStatus.ABORTED),
        )
    ]
    assert applied == [True, False, False, True, False, False, False]
    run = read_run(run_id)
    assert (run.current_execution_arn, run.execution_status, run.status) == (arn, "SUCCEEDED", Status.PENDING)
    assert run.duplicates - before == 5

    late_start = f"t-{uuid.uuid4().hex[:8]}"  # the end delivered before the start
    arn, change = execution_of(late_start)
    assert apply_event(parse_envelope(change(ExecutionStatus.FAILED)), store) is True
    assert apply_event(parse_envelope(change(ExecutionStatus.RUNNING)), store) is False
    assert (read_run(late_start).current_execution_arn, read_run(late_start).execution_status) == (arn, "FAILED")


def test_a_stale_rounds_execution_changes_nothing(local_stack) -> None:  # noqa: ANN001
    store = RunStore()
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    requested = events_of_a_run(run_id)[0]
    apply_event(requested, store)
    first, first_change = execution_of(run_id, 1)
    apply_event(parse_envelope(first_change(ExecutionStatus.RUNNING)), store)
    apply_event(RunFailed(run_id=run_id, reason="Collate: States.TaskFailed"), store)
    apply_event(parse_envelope(first_change(ExecutionStatus.FAILED)), store)

    second, second_change = execution_of(run_id, 2)
    # the retry's execution may start before the tracker sees the retry's run-requested
    assert apply_event(parse_envelope(second_change(ExecutionStatus.RUNNING)), store) is True
    assert run_view_of(read_run(run_id)).execution_arn is None  # not the current round's yet
    apply_event(requested.model_copy(update={"round": 2}), store)
    view = run_view_of(read_run(run_id))
    assert (view.round, view.execution_arn, view.execution_status) == (2, second, "RUNNING")

    for status in (ExecutionStatus.RUNNING, ExecutionStatus.FAILED):  # round 1, late
        assert apply_event(parse_envelope(first_change(status)), store) is False
    assert (read_run(run_id).current_execution_arn, read_run(run_id).execution_status) == (second, "RUNNING")
