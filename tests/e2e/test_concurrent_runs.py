"""Many runs at once on the local stack: a small run submitted behind a big one is not stuck
behind it (its own work queue; the cores shared by the job queue's fair-share rule), each run's
workers take only that run's shards, and both runs are bit-identical to the same runs alone."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from scengrid import layout, pnl_dataset, s3io, work_queues
from scengrid.aws import client
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import RunRecord, Status, read_run, read_shards
from scengrid_cli.local.demo import run_on_stack

pytestmark = pytest.mark.e2e
BIG = RunSpec(scenarios=GeneratedScenarios(count=2_000_000, seed=41))
SMALL = RunSpec(scenarios=GeneratedScenarios(count=10_000, seed=42))
ENDED = (Status.COMPLETE, Status.FAILED, Status.CANCELLED)


@dataclass
class Together:
    big: str
    small: str
    small_end: RunRecord
    big_at_small_end: RunRecord
    big_end: RunRecord


def wait_for_end(run_id: str, timeout_s: float) -> RunRecord:
    deadline = time.monotonic() + timeout_s
    while True:
        record = read_run(run_id)
        if record is not None and record.status in ENDED:
            return record
        assert time.monotonic() < deadline, f"run {run_id} did not end within {timeout_s:.0f} s: {record}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def together(local_stack) -> Together:  # noqa: ANN001
    api = local_stack.api_client()
    big = api.submit(BIG.model_dump(mode="json"))["run_id"]
    time.sleep(3)
    small = api.submit(SMALL.model_dump(mode="json"))["run_id"]
    small_end = wait_for_end(small, 300)
    big_at_small_end = read_run(big)
    return Together(big, small, small_end, big_at_small_end, wait_for_end(big, 600))


def pnl_bits(run_id: str) -> np.ndarray:
    return pnl_dataset.read_run(run_id, ["pnl"]).column("pnl").to_numpy().view(np.uint64)


def test_the_small_run_completes_while_the_big_one_is_still_running(together: Together) -> None:
    assert together.small_end.status is Status.COMPLETE
    assert together.big_at_small_end.status is Status.RUNNING, together.big_at_small_end
    assert together.big_end.status is Status.COMPLETE


def test_both_runs_are_bit_identical_to_the_same_runs_alone(together: Together, local_stack, tmp_path) -> None:  # noqa: ANN001
    for run_id, spec in ((together.small, SMALL), (together.big, BIG)):
        alone = run_on_stack(local_stack, spec, None, timeout_s=600)
        assert alone.record.status is Status.COMPLETE
        assert np.array_equal(pnl_bits(run_id), pnl_bits(alone.run_id)), run_id
        assert alone.record.var_99 == read_run(run_id).var_99


def test_a_runs_workers_evaluate_only_that_runs_shards(together: Together, local_stack) -> None:  # noqa: ANN001
    """Each shard records the Batch job (array child) that evaluated it; every one is a worker
    job of the shard's own run, named for it by the state machine."""
    batch = client("batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    jobs: dict[str, str] = {}
    for status in ("SUCCEEDED", "FAILED", "RUNNING"):
        for page in batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status):
            jobs.update({j["jobId"]: j["jobName"] for j in page["jobSummaryList"]})
    for run_id in (together.big, together.small):
        shards = read_shards(run_id)
        assert shards and {s.status for s in shards} == {Status.COMPLETE}
        parents = {s.task_id.split(":")[0] for s in shards}
        assert {jobs.get(p, "?").startswith(f"scengrid-work-{run_id}-") for p in parents} == {True}, (run_id, parents)


def test_each_rounds_work_queue_is_gone_once_the_round_ended(together: Together) -> None:
    names = {url.rsplit("/", 1)[1] for url in work_queues.open_queues()}
    assert not {work_queues.queue_name(together.big, 1), work_queues.queue_name(together.small, 1)} & names
