"""Admission limits against the emulator: exact under concurrency (two submissions never both
take the last slot), given back exactly once when a run ends whatever the duplicates, taken
again by a retry round, never kept by a request that failed after its admission, and a stale
ticket of a request that died half-way is given back at the next refusal.

The emulator's DynamoDB writes one request at a time (moto_gaps 19), as DynamoDB's
transactions are serializable; tests/integration/test_moto_gaps.py shows the hole."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from scengrid.aws import client
from scengrid.errors import Conflict, OverLimit
from scengrid.events import AllDone, RunFailed, RunRequested, utcnow
from scengrid.settings import Settings, use_settings
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid.status import FINAL, Status, page_runs, read_run
from services.tracker.admission import AdmissionStore, Ticket, Totals
from services.tracker.dal import RunStore
from services.tracker.limits import RETRY_AFTER_S, STALE_AFTER, admit, admitted
from services.tracker.logic import apply_event
from services.tracker.runs import submit_run
from tests.template_data import resources

SCENARIOS = 3000


@pytest.fixture
def table(local_stack) -> Iterator[str]:  # noqa: ANN001
    """An admission table of the test's own (the template's definition), so that the runs of
    other tests do not move its totals."""
    name = f"admission-{uuid.uuid4().hex[:8]}"
    props = resources()["AdmissionTable"]["Properties"]
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=name, BillingMode=props["BillingMode"], KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
    )
    yield name
    dynamodb.delete_table(TableName=name)


def limits(local_stack, table: str, **values: int) -> Settings:  # noqa: ANN001
    return local_stack.settings.model_copy(update={"admission_table": table, **values})


def ticket(run_id: str | None = None, round_: int = 1, scenarios: int = SCENARIOS, age: timedelta = timedelta()) -> Ticket:
    return Ticket(run_id or f"adm-{uuid.uuid4().hex[:10]}", round_, scenarios, utcnow() - age)


def try_admit(store: AdmissionStore, settings: Settings, scenarios: int) -> OverLimit | None:
    try:
        admit(store, settings, ticket(scenarios=scenarios))
    except OverLimit as refused:
        return refused
    return None


@pytest.mark.parametrize(
    ("values", "scenarios", "admitted_runs", "limit"),
    [({"max_active_runs": 5}, 1000, 5, "max_active_runs"), ({"max_scenarios_in_flight": 10_000}, 3000, 3, "max_scenarios_in_flight")],
    ids=["active runs", "scenarios in flight"],
)
def test_concurrent_submissions_never_take_more_than_the_limit(
    local_stack, table: str, values: dict[str, int], scenarios: int,  # noqa: ANN001
    admitted_runs: int, limit: str,
) -> None:
    settings = limits(local_stack, table, **values)
    store = AdmissionStore(table)
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda _: try_admit(store, settings, scenarios), range(16)))
    refusals = [o for o in outcomes if o is not None]
    assert len(outcomes) - len(refusals) == admitted_runs
    assert store.totals() == Totals(admitted_runs, admitted_runs * scenarios)
    assert len(store.tickets()) == admitted_runs
    assert {r.limit for r in refusals} == {limit}
    # no run has an ETA yet (no record): the default wait
    assert {r.retry_after_s for r in refusals} == {RETRY_AFTER_S}
    assert f"SCENGRID_{limit.upper()}" in str(refusals[0]) and f"retry in {RETRY_AFTER_S} s" in str(refusals[0])


def tracker_store(local_stack, table: str) -> RunStore:  # noqa: ANN001
    """The tracker's store, writing to the test's admission table."""
    use_settings(limits(local_stack, table))
    try:
        return RunStore()
    finally:
        use_settings(local_stack.settings)


def requested(run_id: str, round_: int = 1) -> RunRequested:
    return RunRequested(run_id=run_id, round=round_, spec=RunSpec(scenarios=GeneratedScenarios(count=SCENARIOS), shard_size=1000))


def all_done(run_id: str) -> AllDone:
    return AllDone(run_id=run_id, summary_key="s", pnl_prefix="p/", pnl_files=1, scenarios=SCENARIOS, var_95=1.0, var_99=2.0, es_975=2.5)


def test_a_run_gives_its_admission_back_once_when_it_ends(local_stack, table: str) -> None:  # noqa: ANN001
    admissions, store = AdmissionStore(table), tracker_store(local_stack, table)
    mine, other = ticket(), ticket()
    assert admissions.admit(mine, 5, 10**6) and admissions.admit(other, 5, 10**6)
    apply_event(requested(mine.run_id), store)
    assert apply_event(all_done(mine.run_id), store) is True
    assert apply_event(all_done(mine.run_id), store) is False  # a duplicate gives nothing back
    assert apply_event(RunFailed(run_id=mine.run_id, reason="late"), store) is False
    assert admissions.ticket(mine.run_id) is None
    assert admissions.totals() == Totals(1, SCENARIOS)
    assert admissions.tickets() == [other]


def test_a_retry_round_is_admitted_again_and_given_back_when_it_ends(local_stack, table: str) -> None:  # noqa: ANN001
    admissions, store = AdmissionStore(table), tracker_store(local_stack, table)
    settings = limits(local_stack, table, max_active_runs=1)
    first = admit(admissions, settings, ticket())
    run_id = first.run_id
    apply_event(requested(run_id), store)
    assert apply_event(RunFailed(run_id=run_id, reason="a shard failed"), store)
    assert admissions.totals() == Totals(0, 0)
    admit(admissions, settings, ticket(run_id, round_=2))
    with pytest.raises(Conflict, match="in flight already"):  # a second retry of the same round
        admit(admissions, limits(local_stack, table, max_active_runs=5), ticket(run_id, round_=2))
    with pytest.raises(OverLimit, match="max_active_runs"):  # the retry holds the only slot
        admit(admissions, settings, ticket())
    apply_event(requested(run_id, round_=2), store)
    assert apply_event(RunFailed(run_id=run_id, round=2, reason="again"), store)
    assert admissions.totals() == Totals(0, 0) and admissions.tickets() == []


def test_a_request_that_fails_after_its_admission_gives_its_slot_back(local_stack, table: str) -> None:  # noqa: ANN001
    admissions = AdmissionStore(table)
    use_settings(limits(local_stack, table))
    try:
        with pytest.raises(RuntimeError, match="EventBridge refused"), admitted("adm-fails", 1, SCENARIOS):
            assert admissions.totals() == Totals(1, SCENARIOS)
            raise RuntimeError("EventBridge refused 1 events")
    finally:
        use_settings(local_stack.settings)
    assert admissions.totals() == Totals(0, 0) and admissions.tickets() == []


def test_a_stale_ticket_of_a_request_that_died_is_given_back_at_the_next_refusal(local_stack, table: str) -> None:  # noqa: ANN001
    admissions = AdmissionStore(table)
    settings = limits(local_stack, table, max_active_runs=1)
    fresh = ticket()
    assert admissions.admit(fresh, 1, 10**6)  # no run record yet, but the request may still be on its way
    with pytest.raises(OverLimit):
        admit(admissions, settings, ticket())
    assert admissions.release(fresh) and not admissions.release(fresh)
    ghost = ticket(age=STALE_AFTER + timedelta(minutes=1))  # admitted, and its run never reached the tracker
    assert admissions.admit(ghost, 1, 10**6)
    newcomer = admit(admissions, settings, ticket())
    assert admissions.tickets() == [newcomer]
    assert admissions.totals() == Totals(1, SCENARIOS)


def runs_ended(deadline_s: float = 180) -> None:
    """Wait until the runs of earlier tests ended: from here on, only this test moves the totals."""
    deadline = time.monotonic() + deadline_s
    while any(r.status not in FINAL for r in page_runs(100, None)[0]) and time.monotonic() < deadline:
        time.sleep(0.5)


# The API's Lambda handler registers its context with the idempotency layer; called directly, it has none.
@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_a_submitted_run_is_refused_at_the_limit_then_holds_its_admission_until_it_completes(local_stack) -> None:  # noqa: ANN001
    """The whole path: refused while every slot is taken (its Idempotency-Key freed, no run
    record), then admitted before its run-requested; the tracker gives the admission back with
    the all-done that completes it."""
    runs_ended()
    admissions = AdmissionStore(local_stack.settings.admission_table)
    spec, key = RunSpec(scenarios=GeneratedScenarios(count=SCENARIOS, seed=5), shard_size=1000, workers=1), uuid.uuid4().hex
    blocker = ticket()
    assert admissions.admit(blocker, 10**6, 10**12)
    use_settings(local_stack.settings.model_copy(update={"max_active_runs": admissions.totals().runs}))
    try:
        with pytest.raises(OverLimit, match="max_active_runs"):
            submit_run(spec, idempotency_key=key)
    finally:
        use_settings(local_stack.settings)
        admissions.release(blocker)
    run_id = submit_run(spec, idempotency_key=key)
    held = admissions.ticket(run_id)
    assert held is not None and (held.round, held.scenarios) == (1, SCENARIOS)
    assert submit_run(spec, idempotency_key=key) == run_id  # the repeat is the same run, admitted once
    deadline = time.monotonic() + 180
    while (record := read_run(run_id)) is None or record.status is not Status.COMPLETE:
        assert time.monotonic() < deadline, f"run {run_id} did not complete: {record}"
        time.sleep(0.3)
    assert admissions.ticket(run_id) is None
