"""Nothing lost: the same run under injected faults gives the same numbers; a poisoned shard
fails the run by name, and a retry round completes it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scengrid_cli.local.demo import retry_on_stack, run_on_stack
from scengrid import pnl_dataset
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import Status, read_shards
from tests.eventbridge import bus_spy

pytestmark = pytest.mark.e2e
CHAOS_RUN = ["--scenarios", "50000", "--workers", "5", "--shard-size", "2500", "--seed", "77"]


def demo(tmp_path, *extra: str) -> dict:  # noqa: ANN001
    out = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", "demo", *CHAOS_RUN, "--out", str(tmp_path), "--json", *extra],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def bits(results_dir: str) -> np.ndarray:
    table = pnl_dataset.read_local(Path(results_dir) / "pnl")
    assert np.array_equal(table.column("scenario_id").to_numpy(), np.arange(50_000))
    return table.column("pnl").to_numpy().view(np.uint64)


def test_a_chaos_run_equals_a_clean_run(tmp_path) -> None:  # noqa: ANN001
    clean = demo(tmp_path / "clean")
    chaotic = demo(tmp_path / "chaos", "--chaos", "--chaos-seed", "5")
    for result in (clean, chaotic):
        assert result["status"] == "COMPLETE"
        assert result["shard_statuses"] == {"COMPLETE": result["shards"]}  # none lost
        assert result["shards_done"] == result["shards"] and result["shards_failed"] == 0  # none counted twice
    assert np.array_equal(bits(clean["results_dir"]), bits(chaotic["results_dir"]))
    injected = chaotic["faults"]["injected"]
    assert injected.get("worker_sigterm", 0) > 0 and injected.get("worker_sigkill", 0) > 0
    assert injected.get("throttle.s3", 0) + injected.get("throttle.dynamodb", 0) > 0
    assert injected.get("duplicate_event", 0) > 0
    assert chaotic["faults"]["recovered"]["batch_job_retries"] >= 2
    assert chaotic["faults"]["recovered"]["events_refused_as_duplicates"] >= injected["duplicate_event"]


def test_a_poisoned_shard_fails_the_run_and_a_retry_completes_it(local_stack, tmp_path) -> None:  # noqa: ANN001
    spec = RunSpec(scenarios=GeneratedScenarios(count=12_000, seed=9), shard_size=3_000, workers=2)
    clean = run_on_stack(local_stack, spec, tmp_path / "clean", timeout_s=300)
    local_stack.runner.host_env["SCENGRID_CHAOS_POISON_SHARDS"] = "000002"
    try:
        with bus_spy() as spy:
            poisoned = run_on_stack(local_stack, spec, tmp_path / "poisoned", timeout_s=300)
            put = [e for e in spy() if e["detail"].get("run_id") == poisoned.run_id and e["detail-type"] == "run-failed"]
    finally:
        del local_stack.runner.host_env["SCENGRID_CHAOS_POISON_SHARDS"]  # the cause is removed
    assert poisoned.record.status is Status.FAILED
    # the collator failed the job; the state machine's Catch put the one run-failed, and the
    # tracker named the shard from its own records
    assert [e["source"] for e in put] == ["scengrid.orchestrator"]
    assert poisoned.record.failed_shards == ["000002"]
    shards = {s.shard_id: s for s in read_shards(poisoned.run_id)}
    assert shards["000002"].status is Status.FAILED and "poisoned" in shards["000002"].error
    assert {s.status for k, s in shards.items() if k != "000002"} == {Status.COMPLETE}  # partial outputs kept
    from scengrid.aws import client

    # the worker announced the failure and deleted the message: the dead-letter queue keeps only
    # shards whose worker died on every delivery (tests/e2e/test_worker_tasks.py)
    dead = client("sqs").receive_message(QueueUrl=local_stack.settings.work_dead_letter_queue_url, MaxNumberOfMessages=10)
    assert not any(poisoned.run_id in m["Body"] for m in dead.get("Messages", []))

    retried = retry_on_stack(local_stack, poisoned.run_id, tmp_path / "retried", timeout_s=300)
    assert retried.record.status is Status.COMPLETE and retried.record.round == 2
    assert retried.record.shards_done == 4 and retried.record.shards_failed == 0
    again = {s.shard_id: s.round for s in read_shards(poisoned.run_id)}
    assert again == {"000000": 1, "000001": 1, "000002": 2, "000003": 1}  # only the failed shard ran again
    a = pnl_dataset.read_local(clean.results_dir / "pnl").column("pnl").to_numpy()
    b = pnl_dataset.read_local(retried.results_dir / "pnl").column("pnl").to_numpy()
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))
