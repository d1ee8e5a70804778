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


class _Tail:
    """The ``size`` smallest P&L values seen, with (optionally) their ids and components.
    A batch is first cut down to the values that can still enter, so merging stays small."""

    def __init__(self, size: int, with_rows: bool) -> None:
        self.size = size
        self.with_rows = with_rows
        self.pnl = np.empty(0)
        self.ids = np.empty(0, dtype=np.int64)
        self.parts: dict[str, np.ndarray] = {}

    def add(self, ids: np.ndarray, pnl: np.ndarray, parts: dict[str, np.ndarray]) -> None:
        if self.pnl.shape[0] >= self.size:
            entering = pnl <= self.pnl.max()
            ids, pnl, parts = ids[entering], pnl[entering], {k: v[entering] for k, v in parts.items()}
        values = np.concatenate([self.pnl, pnl])
        if not self.with_rows:
            self.pnl = np.partition(values, self.size - 1)[: self.size] if values.shape[0] > self.size else values
            return
        ids = np.concatenate([self.ids, ids])
        parts = {k: np.concatenate([self.parts.get(k, np.empty(0)), v]) for k, v in parts.items()}
        if values.shape[0] > self.size:
            keep = np.argpartition(values, self.size - 1)[: self.size]
            values, ids, parts = values[keep], ids[keep], {k: v[keep] for k, v in parts.items()}
        self.pnl, self.ids, self.parts = values, ids, parts


@dataclass
class TailAccumulator:
    """Feed batches of (scenario ids, P&L, components); get the exact risk summary.

    ``total`` is the number of scenarios that will be fed: it sizes the two tails kept, the
    VaR tail (the smallest ~5% P&L values) and the ES tail (the worst ~2.5%, with their ids
    and components, for the worst scenarios and the attribution)."""

    total: int
    count: int = 0
    _mean: float = 0.0
    _m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    part_sums: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._var = _Tail(min(self.total, math.ceil(KEPT_TAIL * self.total) + 2), with_rows=False)
        self._es = _Tail(min(self.total, _es_count(self.total, 0.975) + WORST_N), with_rows=True)

    @property
    def kept(self) -> int:
        """Values held at most: the VaR tail plus the ES tail's rows."""
        return self._var.size + self._es.size

    @property
    def parts(self) -> dict[str, np.ndarray]:
        return self._es.parts

    def add(self, ids: np.ndarray, pnl: np.ndarray, parts: dict[str, np.ndarray] | None = None) -> None:
        if pnl.shape[0] == 0:
            return
        parts = parts or {}
        self._add_moments(pnl)
        for name, values in parts.items():
            self.part_sums[name] = self.part_sums.get(name, 0.0) + float(values.sum())
        self._var.add(ids, pnl, {})
        self._es.add(ids, pnl, parts)

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

    def _es_order(self) -> np.ndarray:
        """ES-tail positions by (P&L, scenario id): ties fall the same way in every shard layout."""
        return np.lexsort((self._es.ids, self._es.pnl))

    def tail_rows(self, level: float) -> np.ndarray:
        """Positions, in the ES tail, of the worst ceil((1 - level) · n) scenarios."""
        return self._es_order()[: _es_count(self.count, level)]

    def summary(self) -> RiskSummary:
        if self.count != self.total:
            raise ValueError(f"{self.count} scenarios were fed, {self.total} expected")
        smallest = np.sort(self._var.pnl)
        order = self._es_order()
        es_tail = self._es.pnl[order][: _es_count(self.count, 0.975)]
        return RiskSummary(
            scenarios=self.count,
            var_95=-quantile_from_smallest(smallest, self.count, _tail(0.95)),
            var_99=-quantile_from_smallest(smallest, self.count, _tail(0.99)),
            es_975=float(-es_tail.mean()),
            mean=self._mean,
            std=math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0,
            worst=[{"scenario_id": int(self._es.ids[i]), "pnl": float(self._es.pnl[i])} for i in order[:WORST_N]],
        )


def summarise(scenario_ids: np.ndarray, pnl: np.ndarray) -> RiskSummary:
    accumulator = TailAccumulator(total=int(pnl.shape[0]))
    accumulator.add(scenario_ids, pnl)
    return accumulator.summary()


def tail_indices(pnl: np.ndarray, level: float) -> np.ndarray:
    """Indices of the worst ceil((1 - level) * n) scenarios: the tail ES averages over."""
    k = _es_count(pnl.shape[0], level)
    return np.argpartition(pnl, k - 1)[:k]


def shard_value_at_risk(pnl: np.ndarray, level: float) -> float:
    """A shard's own VaR estimate for the run's partial figure: the approximately
    median-unbiased sample quantile (Hyndman-Fan type 8). The linear quantile of the final
    figure sits a fraction of an order statistic toward the centre, which is nothing over a
    whole run but, averaged over many small shards, a bias as large as the interval."""
    return float(-np.quantile(pnl, _tail(level), method="median_unbiased"))


class PartialEstimate(BaseModel):
    """A risk measure estimated from the shards done so far: the mean of the shards' own
    estimates, with a Student-t interval over them (batch means). It assumes the shards are
    exchangeable samples of the run's scenarios, as generated scenarios are; for a file in
    date order it is only indicative."""

    estimate: float
    low: float
    high: float
    confidence: float
    shards: int


def batch_means(count: int, total: float, total_squares: float, confidence: float = 0.95) -> PartialEstimate | None:
    """The interval from ``count`` per-shard estimates given by their sum and sum of squares
    (None under two shards: no spread to measure yet)."""
    if count < 2:
        return None
    from scipy.special import stdtrit

    mean = total / count
    variance = max(0.0, (total_squares - count * mean * mean) / (count - 1))
    half = float(stdtrit(count - 1, 0.5 + confidence / 2)) * math.sqrt(variance / count)
    return PartialEstimate(estimate=mean, low=mean - half, high=mean + half, confidence=confidence, shards=count)
