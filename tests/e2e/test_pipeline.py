"""A whole run on the local stack: API-side submit → EventBridge → state machine (moto's
interpreter) → sharder, worker array job and collator as processes → tracker → results."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pytest

from scengrid import layout, pnl_dataset, s3io
from scengrid.events import ShardDone, publish
from scengrid_cli.local.demo import run_on_stack
from scengrid_cli.local.results import state_names
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import Status, read_run, read_shards

SCENARIOS = 20_000
pytestmark = pytest.mark.e2e


def run(stack, shard_size: int, tmp_path):  # noqa: ANN001, ANN201
    spec = RunSpec(scenarios=GeneratedScenarios(count=SCENARIOS, seed=2024), shard_size=shard_size, workers=2)
    return run_on_stack(stack, spec, tmp_path, timeout_s=300)


@pytest.fixture(scope="module")
def first_run(local_stack, tmp_path_factory):  # noqa: ANN001, ANN201
    return run(local_stack, 5_000, tmp_path_factory.mktemp("results"))


def merged_pnl(run_id: str) -> pa.Table:
    return pnl_dataset.read_run(run_id)


def test_run_completes_with_every_shard_complete(first_run) -> None:  # noqa: ANN001
    record = read_run(first_run.run_id)
    shards = read_shards(first_run.run_id)
    assert first_run.execution_status == "SUCCEEDED"
    assert record.status is Status.COMPLETE
    assert record.shards_total == len(shards) == 4
    assert {s.status for s in shards} == {Status.COMPLETE}
    assert sum(s.rows for s in shards) == SCENARIOS


def test_execution_went_through_shard_map_collate(first_run) -> None:  # noqa: ANN001
    names = state_names(first_run.execution_arn)
    assert [n for n in names if n in ("Shard", "Evaluate", "Collate")] == ["Shard", "Evaluate", "Collate"]


def test_merged_pnl_has_every_scenario_once_and_var_is_numpys_quantile(first_run) -> None:  # noqa: ANN001
    table = merged_pnl(first_run.run_id)
    assert table.num_rows == SCENARIOS
    assert np.array_equal(table.column("scenario_id").to_numpy(), np.arange(SCENARIOS))
    pnl = table.column("pnl").to_numpy()
    summary = first_run.summary
    assert summary["var_99"] == -np.quantile(pnl, 0.01)
    assert summary["var_95"] == -np.quantile(pnl, 0.05)
    assert summary["mean"] == pytest.approx(pnl.mean(), rel=1e-12)
    assert (first_run.results_dir / "summary.json").is_file() and len(list((first_run.results_dir / "pnl").glob("*.parquet"))) == len(read_shards(first_run.run_id))


def test_the_tracker_counts_each_shard_once_even_when_delivered_twice(first_run) -> None:  # noqa: ANN001
    run_id = first_run.run_id
    before = read_run(run_id)
    again = [
        ShardDone(run_id=run_id, shard_id=s.shard_id, output_key=s.output_key, rows=s.rows, duration_s=1.0, task_id="replay")
        for s in read_shards(run_id)
    ]
    publish(again, service="worker")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and read_run(run_id).duplicates < before.duplicates + len(again):
        time.sleep(0.2)
    after = read_run(run_id)
    assert after.duplicates == before.duplicates + len(again)  # every replay was seen and refused
    assert after.shards_done == before.shards_done == len(again)
    assert "replay" not in {s.task_id for s in read_shards(run_id)}  # the first writes stand


def test_another_shard_size_gives_bit_identical_pnl(first_run, local_stack, tmp_path) -> None:  # noqa: ANN001
    second = run(local_stack, 3_000, tmp_path)
    assert second.record.status is Status.COMPLETE and second.record.shards_total == 7
    a = merged_pnl(first_run.run_id).column("pnl").to_numpy()
    b = merged_pnl(second.run_id).column("pnl").to_numpy()
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))


def test_run_logs_are_collected_with_the_results(first_run) -> None:  # noqa: ANN001
    logs = first_run.results_dir / "logs"
    names = {p.name for p in logs.glob("*.log")}
    for stage in ("scengrid-shard-", "scengrid-work-", "scengrid-collate-"):
        assert any(n.startswith(stage) for n in names), (stage, names)
    tracker_lines = (logs / "services.log").read_text().splitlines()
    assert tracker_lines and all(first_run.run_id in line for line in tracker_lines)
    worker_log = next(p for p in logs.glob("scengrid-work-*.log")).read_text()
    assert '"shard_id"' in worker_log and first_run.run_id in worker_log
    emf = [json.loads(line) for line in worker_log.splitlines() if '"_aws"' in line]
    assert emf and all({"ShardDuration", "ScenariosPerSecond", "ShardRetries", "ShardFailures"} <= set(m) for m in emf)


def test_the_collator_names_a_shard_whose_output_is_gone(local_stack, tmp_path) -> None:  # noqa: ANN001
    from services.collator.logic import collate

    from scengrid.aws import client
    from scengrid.errors import IncompleteRun
    from scengrid.work import ShardWork

    done = run(local_stack, 5_000, tmp_path)
    planned = [ShardWork.model_validate(s) for s in s3io.get_json(layout.manifest_key(done.run_id))["shards"]]
    client("s3").delete_object(Bucket=local_stack.settings.bucket, Key=layout.shard_key(done.run_id, "000002"))
    records = {r.shard_id: r for r in read_shards(done.run_id)}
    with pytest.raises(IncompleteRun) as failed:
        collate(done.run_id, planned, records)
    assert failed.value.problems == {"000002": f"output {layout.shard_key(done.run_id, '000002')} is missing"}
