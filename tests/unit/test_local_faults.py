"""Retry decisions of the local Batch runner and the chaos plan for workers."""

from __future__ import annotations

import signal
import time

import pytest

from scengrid_cli.local.batch_runner import SPOT_RECLAIM_REASON, Attempt, retry_decision
from scengrid_cli.local.chaos import WorkerKiller
from scengrid_cli.local.cfn import load_template
from scengrid_cli.local.moto_gaps import LocalJob
from scengrid_cli.local.provision import TEMPLATE


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
        (Attempt(137), "RETRY"),  # the task died (out of memory, killed): its shard is redelivered
        (Attempt(3), "RETRY"),  # the model ended the process
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


class FakeProcess:
    def __init__(self) -> None:
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return None

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def test_about_a_fifth_of_workers_are_interrupted_with_both_signals() -> None:
    killer = WorkerKiller(seed=3, workers=20, earliest_s=0.0, latest_s=0.0)
    processes = [FakeProcess() for _ in range(20)]
    reasons = [interrupt(p) for interrupt, p in zip([killer(job(i), 1) for i in range(20)], processes)]
    hit = [p.signals for p in processes if p.signals]
    assert killer.victims == 4 and len(hit) == 4
    assert sorted(s for signals in hit for s in signals) == sorted([signal.SIGTERM, signal.SIGTERM, signal.SIGKILL, signal.SIGKILL])
    assert reasons.count(SPOT_RECLAIM_REASON) == 2  # a SIGKILL reads as the host gone
    assert all(killer(job(i), 2) is None for i in range(20))  # only first attempts
    assert killer(job(0, "services.collator.main"), 1) is None  # only workers


def test_a_worker_is_hit_at_its_moment_and_only_while_running() -> None:
    killer = WorkerKiller(seed=1, workers=2, earliest_s=0.2, latest_s=0.2)
    early, ended = FakeProcess(), FakeProcess()
    interrupt = killer(job(0), 1)
    assert interrupt is not None and interrupt(early) == "" and early.signals == []  # not yet
    ended.poll = lambda: 0  # type: ignore[method-assign]
    late = killer(job(1), 1)
    time.sleep(0.25)
    assert late is not None and late(ended) == "" and ended.signals == []  # already finished
    assert interrupt(early) == "" and early.signals == [signal.SIGTERM]
