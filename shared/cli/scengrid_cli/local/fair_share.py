"""The local job runner's cores, shared between runs by the rule of the stack's Batch job queue.

On AWS the job queue has a fair-share scheduling policy (infra/template.yaml, SchedulingPolicy):
each run's jobs go under its share identifier, a free vCPU goes to the share that uses least
for its weight (a lower WeightFactor gets more), and ComputeReservation keeps part of the
capacity for shares that are not running yet. Locally the same rule shares the slots (one per
core):

- a share with no job running starts one at once, even when every slot is taken: that is the
  reservation for new shares. AWS holds back a fraction of many vCPUs; on a few cores holding
  one back would idle it beside a lone run, so the cores are time-shared for a while instead;
- any other job waits for a free slot, which goes to the waiting share with the fewest running
  jobs times its weight (the policy's ShareDistribution: an exact identifier, or a prefix
  ending in ``*``; 1 otherwise), and within a share to the job that asked first.

So a small run submitted behind a big one starts its first job at once and is never left behind
the big run's array. Usage counts what runs now (AWS also remembers the last ShareDecaySeconds).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Waiting:
    share: str
    seq: int  # arrival order


def weight_of(share: str, weights: Mapping[str, float]) -> float:
    """The share's WeightFactor: its own entry, else the longest ``prefix*`` it starts with, else 1."""
    if share in weights:
        return weights[share]
    prefixes = [p for p in weights if p.endswith("*") and share.startswith(p[:-1])]
    return weights[max(prefixes, key=len)] if prefixes else 1.0


def may_start(job: Waiting, waiting: Sequence[Waiting], running: Mapping[str, int], slots: int,
              weights: Mapping[str, float]) -> bool:
    """Whether ``job`` (one of ``waiting``) starts now, by the rule above."""
    if running.get(job.share, 0) == 0:
        return True
    if sum(running.values()) >= slots:
        return False
    contenders = [w for w in waiting if running.get(w.share, 0) > 0]
    first = min(contenders, key=lambda w: (running.get(w.share, 0) * weight_of(w.share, weights), w.seq))
    return first == job


def weights_of_policy(template: dict[str, Any]) -> dict[str, float]:
    """The ShareDistribution of the template's fair-share scheduling policy, as identifier → weight."""
    weights: dict[str, float] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Batch::SchedulingPolicy":
            policy = resource.get("Properties", {}).get("FairsharePolicy", {})
            for entry in policy.get("ShareDistribution", []):
                weights[entry["ShareIdentifier"]] = float(entry.get("WeightFactor", 1.0))
    return weights


class FairShareSlots:
    """``with slots.slot(share):`` holds one of ``slots`` slots (or a new share's extra one)."""

    def __init__(self, slots: int, weights: Mapping[str, float] | None = None) -> None:
        self.slots = max(1, slots)
        self.weights = dict(weights or {})
        self._changed = threading.Condition()
        self._running: dict[str, int] = {}
        self._waiting: list[Waiting] = []
        self._seq = itertools.count()

    def running(self) -> dict[str, int]:
        with self._changed:
            return {share: n for share, n in self._running.items() if n}

    @contextmanager
    def slot(self, share: str) -> Iterator[None]:
        job = Waiting(share, next(self._seq))
        with self._changed:
            self._waiting.append(job)
            self._changed.notify_all()
            self._changed.wait_for(lambda: may_start(job, self._waiting, self._running, self.slots, self.weights))
            self._waiting.remove(job)
            self._running[share] = self._running.get(share, 0) + 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._running[share] -= 1
                self._changed.notify_all()
