"""Which limit refuses a run, the figures it gives, and its Retry-After: the soonest the runs in
flight are expected (their ETAs) to free what the refused run needs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scengrid.events import utcnow
from scengrid.settings import Settings
from scengrid.status import RunRecord, Status
from services.tracker.admission import Ticket, Totals
from services.tracker.limits import MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, RETRY_AFTER_S, refusal_of, retry_after_s

LIMITS = Settings(max_active_runs=2, max_scenarios_in_flight=10_000)


def in_flight(run_id: str, scenarios: int, eta_s: float | None, status: Status = Status.RUNNING) -> tuple[Ticket, RunRecord]:
    """A run half done after ``eta_s`` seconds, so that it is expected to end in ``eta_s`` more
    (no shard done yet when ``eta_s`` is None)."""
    started = utcnow() - timedelta(seconds=eta_s or 1)
    record = RunRecord(
        run_id=run_id, status=status, scenarios=scenarios, shards_total=10, shards_done=0 if eta_s is None else 5,
        created_at=started.isoformat(),
    )
    return Ticket(run_id, 1, scenarios, started), record


def test_too_many_active_runs_waits_for_the_soonest_run_to_end() -> None:
    held = [in_flight("slow", 4000, 200), in_flight("soon", 4000, 60)]
    refusal = refusal_of(Totals(2, 8000), LIMITS, Ticket("new", 1, 1000, utcnow()), held)
    assert (refusal.limit, refusal.maximum, refusal.current, refusal.requested) == ("max_active_runs", 2, 2, 1)
    assert 59 <= refusal.retry_after_s <= 62
    assert str(refusal).startswith("too many active runs: 2 of at most 2 are in flight; retry in")
    assert "SCENGRID_MAX_ACTIVE_RUNS" in str(refusal)


def test_scenarios_over_the_quota_wait_until_enough_of_them_end() -> None:
    """9,000 in flight and 3,000 asked for: the run ending first frees 1,000, not enough; the
    next one, 5,000, is."""
    held = [in_flight("small-soon", 1000, 30), in_flight("big-later", 5000, 120), in_flight("rest", 3000, None)]
    refusal = refusal_of(Totals(1, 9000), Settings(max_active_runs=5, max_scenarios_in_flight=10_000),
                         Ticket("new", 1, 3000, utcnow()), held)
    assert (refusal.limit, refusal.current, refusal.requested, refusal.maximum) == ("max_scenarios_in_flight", 9000, 3000, 10_000)
    assert 119 <= refusal.retry_after_s <= 122
    assert "9,000 are, and this run's 3,000 would take them over the quota of 10,000" in str(refusal)


@pytest.mark.parametrize(
    ("eta_s", "status", "expected"),
    [
        (None, Status.RUNNING, RETRY_AFTER_S),  # no shard done: no ETA yet
        (1, Status.RUNNING, MIN_RETRY_AFTER_S),
        (86_400, Status.RUNNING, MAX_RETRY_AFTER_S),
        (30, Status.COMPLETE, RETRY_AFTER_S),  # an ended run frees nothing by its ETA
    ],
    ids=["no ETA yet", "at least the minimum", "at most the maximum", "an ended run"],
)
def test_retry_after_is_bounded_and_has_a_default(eta_s: float | None, status: Status, expected: int) -> None:
    assert retry_after_s([in_flight("run", 100, eta_s, status)], 1, lambda t: 1) == expected
    assert retry_after_s([], 1, lambda t: 1) == RETRY_AFTER_S
