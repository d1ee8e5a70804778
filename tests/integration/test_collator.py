"""The collator against the emulator: it reads the run's P&L dataset in part and gets numpy's
figures on the whole vector; a run it cannot collate makes it raise, naming the shards, and it
puts no run-failed on the bus (the state machine's Catch is the only producer)."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

from scengrid import layout, pnl_dataset, s3io, sizing
from scengrid.errors import IncompleteRun
from scengrid.events import RunRequested, ShardDone, ShardFailed, ShardWritten
from scengrid.models import load_model
from scengrid.risk import PnlStats
from scengrid.spec import GeneratedScenarios, RunSpec
from services.collator.logic import collate_run
from services.collator.reporting import attribution
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
    stats = PnlStats.of(np.arange(1000.0))
    apply_event(ShardDone(run_id=run_id, shard_id="000000", output_key="k", rows=1000, duration_s=1, task_id="t", pnl_stats=stats), store)
    apply_event(ShardFailed(run_id=run_id, shard_id="000001", error="ValueError: boom", task_id="t"), store)

    with bus_spy() as spy:
        with pytest.raises(IncompleteRun) as failed:
            collate_run(run_id, 1, wait_s=0.2)  # 000002 never reports
        put = [e for e in spy() if e["detail"].get("run_id") == run_id]
    assert set(failed.value.problems) == {"000001", "000002"}
    assert "shard 000001: FAILED (ValueError: boom)" in str(failed.value)
    assert put == []


COMPONENTS = ("rates", "credit", "equity", "options", "fx")


def _run_with_shards(count: int, shard_size: int, pnl_of: callable, sorted_files: bool = True) -> tuple[str, dict[str, np.ndarray]]:
    """A planned run whose shard files and shard-done events are what workers would write,
    with P&L ``pnl_of(scenario ids)`` split into five components."""
    run_id = f"c-{uuid.uuid4().hex[:8]}"
    spec = RunSpec(scenarios=GeneratedScenarios(count=count, seed=1), shard_size=shard_size, workers=1)
    chosen = sizing.choose(spec, load_model(spec.model.name, spec.model.params), "aws")
    plan = plan_shards(run_id, spec, chosen, queue_url=f"https://sqs.us-east-1.amazonaws.com/123456789012/scengrid_run_{run_id}_r1")
    s3io.put_json(layout.manifest_key(run_id), plan.model_dump(mode="json"))
    ids = np.arange(count)
    pnl = pnl_of(ids)
    weights = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    parts = {f"pnl_{name}": pnl * w for name, w in zip(COMPONENTS, weights)}
    store = RunStore()
    apply_event(RunRequested(run_id=run_id, spec=spec), store)
    for shard in plan.shards:
        rows = slice(shard.start, shard.start + shard.count)
        columns = {"pnl": pnl[rows], **{k: v[rows] for k, v in parts.items()}}
        key = layout.shard_key(run_id, shard.shard_id)
        if sorted_files:
            pnl_dataset.put_shard(key, pnl_dataset.shard_table(shard.start, columns))
        else:
            from scengrid.kernel import results_table

            s3io.put_table(key, results_table(shard.start, columns))
        apply_event(ShardWritten(run_id=run_id, shard_id=shard.shard_id, shards_total=len(plan.shards), start=shard.start, count=shard.count), store)
        stats = PnlStats.of(columns["pnl"], {k: v[rows] for k, v in parts.items()})
        apply_event(ShardDone(run_id=run_id, shard_id=shard.shard_id, output_key=key, rows=shard.count, duration_s=1, task_id="t", pnl_stats=stats), store)
    return run_id, {"pnl": pnl, **parts}


def _assert_exact(run_id: str, columns: dict[str, np.ndarray]) -> dict:
    summary = s3io.get_json(layout.summary_key(run_id))
    pnl = columns["pnl"]
    k = math.ceil(0.025 * pnl.shape[0])
    worst = np.lexsort((np.arange(pnl.shape[0]), pnl))
    assert summary["var_95"] == -np.quantile(pnl, 0.05) and summary["var_99"] == -np.quantile(pnl, 0.01)
    assert summary["es_975"] == -pnl[worst[:k]].mean()
    assert [w["scenario_id"] for w in summary["worst"]] == list(worst[:10])
    assert summary["mean"] == pytest.approx(pnl.mean(), rel=1e-12) and summary["std"] == pytest.approx(pnl.std(ddof=1), rel=1e-12)
    return summary


def test_collation_reads_the_pnl_column_and_the_tail_rows_only_and_is_exact(local_stack) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    run_id, columns = _run_with_shards(200_000, 20_000, lambda ids: rng.standard_t(4, size=ids.shape[0]) * 1e5)
    summary_model = collate_run(run_id, 1, wait_s=5)
    summary = _assert_exact(run_id, columns)
    assert summary_model.var_99 == summary["var_99"]
    collation = summary["collation"]
    # the pnl column (a seventh of the values) and the worst 5% of each shard's other columns
    assert collation["bytes_read"] < summary["pnl_dataset"]["bytes"] / 3
    assert collation["read_requests"] == 10 and collation["shards_read_twice"] == 0  # one ranged GET a file
    assert summary["pnl_dataset"]["files"] == [layout.shard_key(run_id, f"{i:06d}") for i in range(10)]
    assert summary["pnl_dataset"]["rows"] == 200_000


def test_a_shard_holding_more_than_its_share_of_the_tail_gets_a_second_look(local_stack) -> None:  # noqa: ANN001
    """Scenarios in P&L order (a history file in date order can be like this): the first shard
    holds the whole ES tail, far beyond its 5% head; the figures stay exact."""
    run_id, columns = _run_with_shards(200_000, 20_000, lambda ids: ids * 1.0 - 100_000.0)
    collate_run(run_id, 1, wait_s=5)
    summary = _assert_exact(run_id, columns)
    assert summary["collation"]["shards_read_twice"] == 1
    report = s3io.get_json(layout.summary_key(run_id))
    assert report["worst"][0] == {"scenario_id": 0, "pnl": -100_000.0}


def test_the_attribution_is_each_components_mean_over_the_es_tail(local_stack) -> None:  # noqa: ANN001
    from services.collator.logic import collate
    from scengrid.status import read_shards
    from scengrid.work import ShardWork

    rng = np.random.default_rng(9)
    run_id, columns = _run_with_shards(30_000, 5_000, lambda ids: rng.normal(size=ids.shape[0]))
    planned = [ShardWork.model_validate(s) for s in s3io.get_json(layout.manifest_key(run_id))["shards"]]
    collated = collate(run_id, planned, {r.shard_id: r for r in read_shards(run_id)})
    shares = attribution(collated.tail, collated.moments)
    worst = np.lexsort((np.arange(30_000), columns["pnl"]))[: math.ceil(0.025 * 30_000)]
    for name in COMPONENTS:
        assert shares[name]["es_975"] == pytest.approx(-columns[f"pnl_{name}"][worst].mean(), rel=1e-12)
        assert shares[name]["mean"] == pytest.approx(columns[f"pnl_{name}"].mean(), rel=1e-12)
    assert sum(v["es_975"] for v in shares.values()) == pytest.approx(collated.summary.es_975, rel=1e-9)


def test_a_file_not_ordered_by_pnl_is_named(local_stack) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    run_id, _ = _run_with_shards(6_000, 2_000, lambda ids: rng.normal(size=ids.shape[0]), sorted_files=False)
    with pytest.raises(IncompleteRun) as failed:
        collate_run(run_id, 1, wait_s=5)
    assert set(failed.value.problems) == {"000000", "000001", "000002"}
    assert "is not ordered by P&L" in failed.value.problems["000000"]
