"""The local job runner's sharing rule (scengrid_cli/local/fair_share.py), on hand-made cases,
and the template's scheduling policy that it mirrors."""

from __future__ import annotations

import threading

import pytest

from scengrid_cli.local.fair_share import FairShareSlots, Waiting, may_start, weight_of, weights_of_policy
from scengrid_cli.local.provision import share_weights
from tests.template_data import asl, resources, template


def test_a_share_with_nothing_running_starts_even_when_every_slot_is_taken() -> None:
    assert may_start(Waiting("small", 5), [Waiting("small", 5)], {"big": 2}, slots=2, weights={})


def test_a_share_already_running_waits_while_the_slots_are_full() -> None:
    assert not may_start(Waiting("small", 5), [Waiting("small", 5)], {"big": 2, "small": 1}, slots=2, weights={})


def test_a_free_slot_goes_to_the_share_with_the_fewest_running_not_to_the_first_asker() -> None:
    waiting = [Waiting("big", 1), Waiting("small", 2)]
    running = {"big": 2, "small": 1}  # 3 of 4 slots
    assert not may_start(waiting[0], waiting, running, slots=4, weights={})
    assert may_start(waiting[1], waiting, running, slots=4, weights={})


def test_a_lower_weight_factor_counts_its_running_jobs_for_less() -> None:
    waiting = [Waiting("desk", 1), Waiting("urgent", 2)]
    running = {"urgent": 3, "desk": 2}  # urgent: 3 × 0.5 = 1.5 < desk: 2 × 1
    assert may_start(waiting[1], waiting, running, slots=6, weights={"urgent": 0.5})
    assert not may_start(waiting[0], waiting, running, slots=6, weights={"urgent": 0.5})


def test_within_a_share_the_first_asker_goes_first() -> None:
    waiting = [Waiting("a", 1), Waiting("a", 2)]
    assert may_start(waiting[0], waiting, {"a": 1}, slots=3, weights={})
    assert not may_start(waiting[1], waiting, {"a": 1}, slots=3, weights={})


def test_weights_by_identifier_then_longest_prefix_then_one() -> None:
    weights = {"background*": 2.0, "b*": 3.0, "urgent": 0.5}
    assert weight_of("urgent", weights) == 0.5
    assert weight_of("background7", weights) == 2.0
    assert weight_of("bond", weights) == 3.0
    assert weight_of("urgently", weights) == 1.0  # an identifier without * matches only itself


def test_a_small_run_gets_a_slot_at_once_beside_a_big_run_holding_every_slot() -> None:
    slots = FairShareSlots(1)
    big_holds, big_release, small_in, big_second_in = threading.Event(), threading.Event(), threading.Event(), threading.Event()

    def big_first() -> None:
        with slots.slot("big"):
            big_holds.set()
            big_release.wait(10)

    def big_second() -> None:
        with slots.slot("big"):
            big_second_in.set()

    def small() -> None:
        with slots.slot("small"):
            small_in.set()
            big_release.wait(10)

    threads = [threading.Thread(target=big_first)]
    threads[0].start()
    assert big_holds.wait(5)
    threads += [threading.Thread(target=big_second), threading.Thread(target=small)]
    threads[1].start()
    threads[2].start()
    assert small_in.wait(5), "the small run's first job waited behind the big run"
    assert not big_second_in.is_set() and slots.running() == {"big": 1, "small": 1}
    big_release.set()
    for thread in threads:
        thread.join(5)
    assert big_second_in.is_set() and slots.running() == {}


def props(name: str) -> dict:
    return resources()[name]["Properties"]


def test_the_local_weights_are_the_templates_scheduling_policy() -> None:
    policy = props("SchedulingPolicy")["FairsharePolicy"]
    assert share_weights() == weights_of_policy(template()) == {
        e["ShareIdentifier"]: float(e["WeightFactor"]) for e in policy["ShareDistribution"]
    }
    assert policy["ComputeReservation"] == {"Ref": "FairShareReservation"} and policy["ShareDecaySeconds"] > 0
    assert props("JobQueue")["SchedulingPolicyArn"] == {"Ref": "SchedulingPolicy"}


@pytest.mark.parametrize("state", ["Shard", "RunWorkerArray", "RunWorker", "Collate"])
def test_every_job_of_a_run_goes_under_its_share(state: str) -> None:
    states = asl()["States"]
    found = states.get(state) or states["Evaluate"]["ItemProcessor"]["States"][state]
    assert found["Parameters"]["ShareIdentifier.$"] == ("$.detail.share" if state in ("Shard", "Collate") else "$.share")
