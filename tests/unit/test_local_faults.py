"""Retry decisions of the local Batch runner and the chaos plan for workers."""

from __future__ import annotations

import signal

import pytest

from scengrid.local.batch_runner import SPOT_RECLAIM_REASON, Attempt, retry_decision
from scengrid.local.chaos import WorkerKiller
from scengrid.local.cfn import load_template
from scengrid.local.moto_gaps import LocalJob
from scengrid.local.provision import TEMPLATE


def worker_strategy() -> dict:
    props = load_template(TEMPLATE)["Resources"]["WorkerJobDefinition"]["Properties"]
    return {"attempts": props["RetryStrategy"]["Attempts"], "evaluateOnExit": props["RetryStrategy"]["EvaluateOnExit"]}


@pytest.mark.parametrize(
    ("attempt", "action"),
    [
        (Attempt(137, SPOT_RECLAIM_REASON), "RETRY"),  # host reclaimed
        (Attempt(143), "RETRY"),  # worker honoured SIGTERM
        (Attempt(1), "EXIT"),  # application error
        (Attempt(2), "EXIT"),
    ],
)
def test_the_template_worker_retry_strategy(attempt: Attempt, action: str) -> None:
    assert retry_decision(worker_strategy(), attempt) == action


def test_no_matching_rule_means_retry_as_on_aws() -> None:
    assert retry_decision({"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]}, Attempt(4)) == "RETRY"


def job(index: int, command: str = "services.worker.main") -> LocalJob:
    return LocalJob(
        "j", "n", ["python", "-m", command], {"AWS_BATCH_JOB_ARRAY_INDEX": str(index)}, lambda: False, lambda: None, {}
    )


def test_about_a_fifth_of_workers_are_interrupted_with_both_signals() -> None:
    killer = WorkerKiller(seed=3, workers=20)
    planned = [i for i in range(20) if killer(job(i), 1) is not None]
    assert len(planned) == 4
    assert {kind for kind, _ in killer._plan.values()} == {signal.SIGTERM, signal.SIGKILL}
    assert all(killer(job(i), 2) is None for i in range(20))  # only first attempts
    assert killer(job(planned[0], "services.collator.main"), 1) is None  # only workers
