"""The collator against the emulator: a run it cannot collate makes it raise, naming the shards,
and it puts no run-failed on the bus (the state machine's Catch is the only producer)."""

from __future__ import annotations

import uuid

import pytest

from scengrid import layout, s3io, sizing
from scengrid.errors import IncompleteRun
from scengrid.events import RunRequested, ShardDone, ShardFailed, ShardWritten
from scengrid.models import load_model
from scengrid.spec import GeneratedScenarios, RunSpec
from services.collator.logic import collate_run
from services.sharder.logic import plan_shards
from services.tracker.dal import RunStore
from services.tracker.logic import apply_event
from tests.eventbridge import bus_spy


def test_an_incomplete_run_raises_naming_its_shards_and_puts_no_run_failed(local_stack) -> None:  # noqa: ANN001
    run_id = f"c-{uuid.uuid4().hex[:8]}"
    spec = RunSpec(scenarios=GeneratedScenarios(count=3000, seed=1), shard_size=1000, workers=1)
    chosen = sizing.choose(spec, load_model(spec.model.name, spec.model.params), "aws")
    plan = plan_shards(run_id, spec, chosen, queue_url=f"https://sqs.us-east-1.amazonaws.com/123456789012/scengrid_run_{run_id}_r1")
    s3io.put_json(layout.manifest_key(run_id), plan.model_dump(mode="json"))
    store = RunStore()
    apply_event(RunRequested(run_id=run_id, spec=spec), store)
    for shard in plan.shards:
        apply_event(ShardWritten(run_id=run_id, shard_id=shard.shard_id, shards_total=3, start=shard.start, count=shard.count), store)
    apply_event(ShardDone(run_id=run_id, shard_id="000000", output_key="k", rows=1000, duration_s=1, task_id="t"), store)
    apply_event(ShardFailed(run_id=run_id, shard_id="000001", error="ValueError: boom", task_id="t"), store)

    with bus_spy() as spy:
        with pytest.raises(IncompleteRun) as failed:
            collate_run(run_id, 1, wait_s=0.2)  # 000002 never reports
        put = [e for e in spy() if e["detail"].get("run_id") == run_id]
    assert set(failed.value.problems) == {"000001", "000002"}
    assert "shard 000001: FAILED (ValueError: boom)" in str(failed.value)
    assert put == []
