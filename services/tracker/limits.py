"""The API's admission limits: a run's round is requested only once it holds a slot under
``max_active_runs`` and ``max_scenarios_in_flight`` (services/tracker/admission.py keeps the
count exact). A refusal names the limit, the figures and when to try again, and leaves nothing:
no event, no run record, no slot."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from scengrid.errors import InvalidInput, OverLimit
from scengrid.events import utcnow
from scengrid.settings import Settings, get_settings
from scengrid.status import FINAL, RunRecord, read_run

from services.tracker.admission import AdmissionStore, Ticket, Totals
from services.tracker.queries import progress_of

# A ticket whose round never reached the tracker this long after its admission was left by a
# request that died between its admission and its event: the next refusal gives it back.
STALE_AFTER = timedelta(minutes=15)
# Retry-After: the soonest the runs in flight are expected to make room (their ETAs), within
# these bounds; RETRY_AFTER_S while no ETA is known (no shard of theirs has finished yet).
RETRY_AFTER_S = 30
MIN_RETRY_AFTER_S, MAX_RETRY_AFTER_S = 5, 300
ADMIT_ATTEMPTS = 3

Held = list[tuple[Ticket, RunRecord | None]]


@contextmanager
def admitted(run_id: str, round_: int, scenarios: int) -> Iterator[None]:
    """Hold a slot for the run's round while the body requests it; if the body fails, the slot
    goes back, so that a request either is fully requested or leaves nothing."""
    settings = get_settings()
    settings.require("admission_table")
    store = AdmissionStore(settings.admission_table)
    ticket = admit(store, settings, Ticket(run_id, round_, scenarios, utcnow()))
    try:
        yield
    except BaseException:
        store.release(ticket)
        raise


def admit(store: AdmissionStore, settings: Settings, ticket: Ticket) -> Ticket:
    """The ticket, admitted; OverLimit naming the limit that refuses it."""
    if ticket.scenarios > settings.max_scenarios_in_flight:
        raise InvalidInput(
            "scenarios.count",
            f"{ticket.scenarios:,} scenarios are more than max_scenarios_in_flight ({settings.max_scenarios_in_flight:,}) "
            "allows at all; split the run, or ask the operator to raise SCENGRID_MAX_SCENARIOS_IN_FLIGHT",
        )
    for attempt in range(ADMIT_ATTEMPTS):
        if store.admit(ticket, settings.max_active_runs, settings.max_scenarios_in_flight):
            return ticket
        held, reclaimed = reclaim_stale(store)
        totals = store.totals()
        room = totals.runs < settings.max_active_runs and totals.scenarios + ticket.scenarios <= settings.max_scenarios_in_flight
        if not (reclaimed or room) or attempt == ADMIT_ATTEMPTS - 1:
            raise refusal_of(totals, settings, ticket, held)
        # a stale ticket was given back, or a run ended meanwhile: there may be room now
    raise AssertionError("unreachable")


def reclaim_stale(store: AdmissionStore) -> tuple[Held, bool]:
    """The tickets held, each with its run's record, and whether stale ones were given back:
    those older than STALE_AFTER whose round never reached the tracker (no record, or another
    round) or whose run ended without giving its ticket back."""
    held: Held = []
    reclaimed = False
    now = utcnow()
    for ticket in store.tickets():
        record = read_run(ticket.run_id)
        abandoned = record is None or record.round != ticket.round or record.status in FINAL
        if abandoned and now - ticket.admitted_at > STALE_AFTER:
            reclaimed = store.release(ticket) or reclaimed
        else:
            held.append((ticket, record))
    return held, reclaimed


def refusal_of(totals: Totals, settings: Settings, ticket: Ticket, held: Held) -> OverLimit:
    """The limit that refuses the ticket, with the figures and a Retry-After."""
    if totals.runs >= settings.max_active_runs:
        excess = totals.runs + 1 - settings.max_active_runs
        return OverLimit(
            "max_active_runs", settings.max_active_runs, totals.runs, 1, retry_after_s(held, excess, lambda t: 1),
            f"too many active runs: {totals.runs} of at most {settings.max_active_runs} are in flight",
        )
    excess = max(1, totals.scenarios + ticket.scenarios - settings.max_scenarios_in_flight)
    return OverLimit(
        "max_scenarios_in_flight", settings.max_scenarios_in_flight, totals.scenarios, ticket.scenarios,
        retry_after_s(held, excess, lambda t: t.scenarios),
        f"too many scenarios in flight: {totals.scenarios:,} are, and this run's {ticket.scenarios:,} would take "
        f"them over the quota of {settings.max_scenarios_in_flight:,}",
    )


def retry_after_s(held: Held, excess: int, frees: Callable[[Ticket], int]) -> int:
    """Seconds until the runs in flight are expected to free ``excess`` (runs or scenarios):
    their ETAs, soonest first, until what they free covers it."""
    etas = sorted(
        ((eta, ticket) for ticket, record in held if (eta := _eta_s(ticket, record)) is not None), key=lambda pair: pair[0]
    )
    freed = 0
    for eta, ticket in etas:
        freed += frees(ticket)
        if freed >= excess:
            return min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, math.ceil(eta)))
    return RETRY_AFTER_S


def _eta_s(ticket: Ticket, record: RunRecord | None) -> float | None:
    """When the ticket's round is expected to end, from its run's progress; None if not known."""
    if record is None or record.round != ticket.round or record.status in FINAL:
        return None
    return progress_of(record).eta_s
