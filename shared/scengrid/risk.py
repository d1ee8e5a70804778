"""Risk measures of a P&L distribution, exact, from a stream of batches in O(tail) memory.

VaR is a loss (positive when the quantile is a loss): ``var_X = -quantile(pnl, 1 - X)`` with
numpy's default (linear) quantile, reproduced here step for step so that the streamed value
equals ``-numpy.quantile`` of the whole vector. ES 97.5% is minus the mean of the worst
ceil(2.5% · n) scenarios. Both need only the smallest ~5% of the values, which is all the
accumulator keeps, with their scenario ids and P&L components."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

WORST_N = 10
KEPT_TAIL = 0.05  # the deepest quantile reported (VaR 95%) decides how much tail is kept


class RiskSummary(BaseModel):
    scenarios: int
    var_95: float
    var_99: float
    es_975: float
    mean: float
    std: float
    worst: list[dict[str, float | int]]


def _tail(level: float) -> float:
    """1 - level as the probability a user writes (0.01 for 0.99, not 0.010000000000000009)."""
    return round(1.0 - level, 12)


def _es_count(n: int, level: float) -> int:
    return max(1, math.ceil(_tail(level) * n - 1e-9))


def quantile_from_smallest(smallest: np.ndarray, n: int, q: float) -> float:
    """numpy's linear quantile of an n-vector, from its smallest values in ascending order."""
    virtual = (n - 1) * np.asarray(q, dtype=np.float64)  # numpy: (n - 1) * quantiles
    if virtual >= n - 1:  # numpy takes the largest value
        if smallest.shape[0] < n:
            raise ValueError("the quantile lies beyond the kept tail")
        return float(smallest[n - 1])
    previous = int(np.floor(virtual))
    following = previous + 1
    if following >= smallest.shape[0]:
        raise ValueError("the kept tail is too short for this quantile")
    gamma = virtual - np.float64(previous)
    a, b = smallest[previous], smallest[following]
    diff = b - a
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


def value_at_risk(pnl: np.ndarray, level: float) -> float:
    """Loss not exceeded with probability ``level``: minus numpy's (linear) quantile at 1 - level."""
    return float(-np.quantile(pnl, _tail(level)))


def expected_shortfall(pnl: np.ndarray, level: float) -> float:
    """Mean loss over the worst ceil((1 - level) * n) scenarios (summed in ascending order)."""
    k = _es_count(pnl.shape[0], level)
    return float(-np.sort(np.partition(pnl, k - 1)[:k]).mean())


@dataclass
class TailAccumulator:
    """Feed batches of (scenario ids, P&L, components); get the exact risk summary.

    ``total`` is the number of scenarios that will be fed (it decides the tail kept)."""

    total: int
    count: int = 0
    _mean: float = 0.0
    _m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    pnl: np.ndarray = field(default_factory=lambda: np.empty(0))
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    part_sums: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return min(self.total, math.ceil(KEPT_TAIL * self.total) + 2)

    def add(self, ids: np.ndarray, pnl: np.ndarray, parts: dict[str, np.ndarray] | None = None) -> None:
        if pnl.shape[0] == 0:
            return
        self._add_moments(pnl)
        parts = parts or {}
        for name, values in parts.items():
            self.part_sums[name] = self.part_sums.get(name, 0.0) + float(values.sum())
        ids = np.concatenate([self.ids, ids])
        values = np.concatenate([self.pnl, pnl])
        merged = {k: np.concatenate([self.parts.get(k, np.empty(0)), v]) for k, v in parts.items()}
        if values.shape[0] > self.kept:
            keep = np.argpartition(values, self.kept - 1)[: self.kept]
            ids, values, merged = ids[keep], values[keep], {k: v[keep] for k, v in merged.items()}
        self.ids, self.pnl, self.parts = ids, values, merged

    def _add_moments(self, pnl: np.ndarray) -> None:
        """Chan's pairwise update of count, mean and sum of squared deviations."""
        n_b = pnl.shape[0]
        mean_b = float(pnl.mean())
        m2_b = float(((pnl - mean_b) ** 2).sum())
        n = self.count + n_b
        delta = mean_b - self._mean
        self._mean += delta * n_b / n
        self._m2 += m2_b + delta * delta * self.count * n_b / n
        self.count = n
        self.low, self.high = min(self.low, float(pnl.min())), max(self.high, float(pnl.max()))

    def _ordered(self) -> np.ndarray:
        """Tail positions by (P&L, scenario id): ties fall the same way in every shard layout."""
        return np.lexsort((self.ids, self.pnl))

    def tail_rows(self, level: float) -> np.ndarray:
        """Positions, in the kept tail, of the worst ceil((1 - level) · n) scenarios."""
        return self._ordered()[: _es_count(self.count, level)]

    def summary(self) -> RiskSummary:
        if self.count != self.total:
            raise ValueError(f"{self.count} scenarios were fed, {self.total} expected")
        order = self._ordered()
        smallest = self.pnl[order]
        es_tail = smallest[: _es_count(self.count, 0.975)]
        return RiskSummary(
            scenarios=self.count,
            var_95=-quantile_from_smallest(smallest, self.count, _tail(0.95)),
            var_99=-quantile_from_smallest(smallest, self.count, _tail(0.99)),
            es_975=float(-es_tail.mean()),
            mean=self._mean,
            std=math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0,
            worst=[{"scenario_id": int(self.ids[i]), "pnl": float(self.pnl[i])} for i in order[:WORST_N]],
        )


def summarise(scenario_ids: np.ndarray, pnl: np.ndarray) -> RiskSummary:
    accumulator = TailAccumulator(total=int(pnl.shape[0]))
    accumulator.add(scenario_ids, pnl)
    return accumulator.summary()


def tail_indices(pnl: np.ndarray, level: float) -> np.ndarray:
    """Indices of the worst ceil((1 - level) * n) scenarios: the tail ES averages over."""
    k = _es_count(pnl.shape[0], level)
    return np.argpartition(pnl, k - 1)[:k]
