"""Risk measures of a P&L distribution, exact, from a stream of batches in O(tail) memory.

VaR is a loss (positive when the quantile is a loss): ``var_X = -quantile(pnl, 1 - X)`` with
numpy's default (linear) quantile, reproduced here step for step so that the streamed value
equals ``-numpy.quantile`` of the whole vector. ES 97.5% is minus the mean of the worst
ceil(2.5% · n) scenarios. Both need only the smallest ~5% of the values (``SmallestValues``),
and the worst ~2.5% rows with their scenario ids and P&L components (``TailRows``); the
moments combine per-shard figures (``PnlStats``). A run is summarised from those alone, in
memory that grows with its tail, not with its scenarios."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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


class PnlStats(BaseModel):
    """A shard's P&L figures, computed by its worker over the shard's scenarios (shard-done
    carries them): the count, the sum, the sum of squared deviations from the shard's mean,
    the extremes, and each P&L component's sum. Runs combine them exactly, in shard order."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=1)
    sum: float
    m2: float = Field(ge=0, description="sum of squared deviations from the shard's mean")
    low: float
    high: float
    part_sums: dict[str, float] = Field(default_factory=dict, description="per P&L component column (pnl_*): its sum")

    @classmethod
    def of(cls, pnl: np.ndarray, parts: dict[str, np.ndarray] | None = None) -> PnlStats:
        mean = pnl.mean()
        return cls(
            count=int(pnl.shape[0]),
            sum=float(pnl.sum()),
            m2=float(((pnl - mean) ** 2).sum()),
            low=float(pnl.min()),
            high=float(pnl.max()),
            part_sums={name: float(values.sum()) for name, values in (parts or {}).items()},
        )


@dataclass
class Moments:
    """A run's count, mean, standard deviation, extremes and component sums."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    part_sums: dict[str, float] = field(default_factory=dict)

    def add(self, shard: PnlStats) -> None:
        """Chan's pairwise update with one shard's figures."""
        n_b, mean_b = shard.count, shard.sum / shard.count
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += shard.m2 + delta * delta * self.count * n_b / n
        self.count = n
        self.low, self.high = min(self.low, shard.low), max(self.high, shard.high)
        for name, total in shard.part_sums.items():
            self.part_sums[name] = self.part_sums.get(name, 0.0) + total

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    @classmethod
    def of(cls, shards: list[PnlStats]) -> Moments:
        moments = cls()
        for shard in shards:
            moments.add(shard)
        return moments


def var_tail_size(n: int) -> int:
    """The smallest values VaR 95% and 99% need (numpy's interpolation reads two of them)."""
    return min(n, math.ceil(KEPT_TAIL * n) + 2)


def es_tail_size(n: int) -> int:
    """The worst rows kept with their ids and components: the ES 97.5% tail, and the worst ten."""
    return min(n, _es_count(n, 0.975) + WORST_N)


class SmallestValues:
    """The ``size`` smallest values of a stream of batches, in O(size) memory. A batch is first
    cut to the values that can still enter, so feeding a sorted shard's head is cheap."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values = np.empty(0)

    def add(self, values: np.ndarray) -> None:
        if self.values.shape[0] >= self.size:
            values = values[values <= self.values.max()]
        merged = np.concatenate([self.values, values])
        self.values = np.partition(merged, self.size - 1)[: self.size] if merged.shape[0] > self.size else merged

    def sorted(self) -> np.ndarray:
        return np.sort(self.values)


@dataclass
class TailRows:
    """Rows of the run's tail: P&L, scenario ids and P&L components, worst first."""

    pnl: np.ndarray
    ids: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def worst(cls, candidates: list[TailRows], size: int) -> TailRows:
        """The ``size`` worst of the candidate rows, by (P&L, scenario id): ties fall the same
        way in every shard layout."""
        pnl = np.concatenate([c.pnl for c in candidates])
        ids = np.concatenate([c.ids for c in candidates])
        names = candidates[0].parts.keys() if candidates else ()
        parts = {name: np.concatenate([c.parts[name] for c in candidates]) for name in names}
        order = np.lexsort((ids, pnl))[:size]
        return cls(pnl[order], ids[order], {name: values[order] for name, values in parts.items()})

    def take(self, rows: np.ndarray | slice) -> TailRows:
        """These rows (a mask, or a slice)."""
        return TailRows(self.pnl[rows], self.ids[rows], {name: values[rows] for name, values in self.parts.items()})

    def es_rows(self, n: int, level: float = 0.975) -> slice:
        """The rows ES at ``level`` averages over: the worst ceil((1 - level) · n)."""
        return slice(0, _es_count(n, level))


class TailCandidates:
    """Rows that may still be among a run's ``size`` worst, fed shard by shard: those at or
    below the ``size``-th smallest P&L value seen so far (every value seen feeds that bound,
    rows or not). Memory: about twice the tail, whatever the run's size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.bound = SmallestValues(size)
        self.rows: list[TailRows] = []
        self.held = 0

    def see(self, values: np.ndarray) -> None:
        """P&L values seen (a shard's smallest): they tighten the bound."""
        self.bound.add(values)

    def limit(self) -> float:
        return float(self.bound.values.max()) if self.bound.values.shape[0] >= self.size else math.inf

    def add(self, rows: TailRows) -> None:
        inside = rows.pnl <= self.limit()
        if inside.any():
            self.rows.append(rows.take(inside))
            self.held += int(inside.sum())
        if self.held > 2 * self.size:
            self._prune()

    def _prune(self) -> None:
        """One block of the rows still at or below the bound (more than ``size`` only with ties)."""
        merged = TailRows.worst(self.rows, self.held)
        kept = int(np.searchsorted(merged.pnl, self.limit(), side="right"))
        self.rows, self.held = [merged.take(slice(0, kept))], kept

    def worst(self) -> TailRows:
        return TailRows.worst(self.rows, self.size)


def tail_threshold(smallest: np.ndarray, n: int) -> float:
    """The P&L at or below which every row of the kept ES tail lies (``smallest`` ascending,
    at least ``es_tail_size(n)`` long)."""
    return float(smallest[es_tail_size(n) - 1])


def risk_summary(smallest: np.ndarray, tail: TailRows, moments: Moments) -> RiskSummary:
    """The exact figures from a run's smallest P&L values (ascending), its ES tail rows and its
    moments."""
    n = moments.count
    return RiskSummary(
        scenarios=n,
        var_95=-quantile_from_smallest(smallest, n, _tail(0.95)),
        var_99=-quantile_from_smallest(smallest, n, _tail(0.99)),
        es_975=float(-tail.pnl[tail.es_rows(n)].mean()),
        mean=moments.mean,
        std=moments.std,
        worst=[{"scenario_id": int(i), "pnl": float(p)} for i, p in zip(tail.ids[:WORST_N], tail.pnl[:WORST_N])],
    )


def summarise(scenario_ids: np.ndarray, pnl: np.ndarray) -> RiskSummary:
    """The risk summary of a whole P&L vector in memory, by the same steps as a run's."""
    n = int(pnl.shape[0])
    smallest = SmallestValues(max(var_tail_size(n), es_tail_size(n)))
    smallest.add(pnl)
    ordered = smallest.sorted()
    inside = pnl <= tail_threshold(ordered, n)
    tail = TailRows.worst([TailRows(pnl[inside], scenario_ids[inside])], es_tail_size(n))
    return risk_summary(ordered, tail, Moments.of([PnlStats.of(pnl)]))


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
