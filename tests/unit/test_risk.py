import math

import numpy as np
import pytest
from scipy.stats import norm

from scengrid.risk import (
    Moments,
    PnlStats,
    SmallestValues,
    TailCandidates,
    TailRows,
    batch_means,
    es_tail_size,
    expected_shortfall,
    risk_summary,
    shard_value_at_risk,
    summarise,
    tail_threshold,
    value_at_risk,
    var_tail_size,
)


def test_var_is_minus_numpys_quantile() -> None:
    pnl = np.random.default_rng(0).normal(size=10_001)
    assert value_at_risk(pnl, 0.99) == -np.quantile(pnl, 0.01)
    assert value_at_risk(pnl, 0.95) == -np.quantile(pnl, 0.05)


def test_es_is_the_mean_of_the_worst_tail() -> None:
    pnl = np.arange(1.0, 101.0)  # worst 2.5% of 100 -> ceil(2.5) = 3 scenarios: 1, 2, 3
    assert expected_shortfall(pnl, 0.975) == -2.0


def test_normal_var_and_es_match_closed_forms() -> None:
    sigma = 2.5
    n = 2_000_000
    pnl = np.random.default_rng(1).normal(scale=sigma, size=n)
    var99 = sigma * norm.ppf(0.99)
    es975 = sigma * norm.pdf(norm.ppf(0.975)) / 0.025
    assert math.isclose(value_at_risk(pnl, 0.99), var99, rel_tol=0.01)
    assert math.isclose(expected_shortfall(pnl, 0.975), es975, rel_tol=0.01)


def test_summary_lists_the_worst_scenarios_by_id() -> None:
    ids = np.arange(100, 120)
    pnl = np.linspace(-1, 1, 20)[::-1].copy()
    s = summarise(ids, pnl)
    assert s.scenarios == 20
    assert [w["scenario_id"] for w in s.worst[:3]] == [119, 118, 117]


def _collated(ids: np.ndarray, pnl: np.ndarray, parts: dict[str, np.ndarray], shards: int):
    """The collator's steps over shards of the vectors: per-shard figures, each shard's
    smallest values (its sorted head), then its rows at or below the tail threshold."""
    n = pnl.shape[0]
    keep = max(var_tail_size(n), es_tail_size(n))
    smallest = SmallestValues(keep)
    stats, sorted_shards = [], []
    for part in np.array_split(np.arange(n), shards):
        stats.append(PnlStats.of(pnl[part], {k: v[part] for k, v in parts.items()}))
        order = part[np.argsort(pnl[part], kind="stable")]  # a shard file: worst first
        sorted_shards.append(order)
        smallest.add(pnl[order][:keep])
        assert smallest.values.shape[0] <= keep  # O(tail) memory
    ordered = smallest.sorted()
    threshold = tail_threshold(ordered, n)
    candidates = [
        TailRows(pnl[rows][pnl[rows] <= threshold], ids[rows][pnl[rows] <= threshold],
                 {k: v[rows][pnl[rows] <= threshold] for k, v in parts.items()})
        for rows in sorted_shards
    ]
    tail = TailRows.worst(candidates, es_tail_size(n))
    return risk_summary(ordered, tail, Moments.of(stats)), tail, stats


@pytest.mark.parametrize("shards", [1, 7, 200])
def test_collated_var_and_es_equal_numpys_on_the_whole_vector(shards: int) -> None:
    n = 200_000
    rng = np.random.default_rng(42)
    pnl = rng.standard_t(4, size=n) * 1e5
    ids = np.arange(n)
    s, tail, stats = _collated(ids, pnl, {"pnl_x": pnl * 0.5}, shards)
    assert s.var_95 == -np.quantile(pnl, 0.05)
    assert s.var_99 == -np.quantile(pnl, 0.01)
    k = math.ceil(0.025 * n)
    assert s.es_975 == -np.sort(pnl)[:k].mean()
    assert s.mean == pytest.approx(pnl.mean(), rel=1e-12) and s.std == pytest.approx(pnl.std(ddof=1), rel=1e-12)
    assert [w["scenario_id"] for w in s.worst] == list(np.argsort(pnl, kind="stable")[:10])
    assert tail.pnl.shape[0] == k + 10
    assert tail.parts["pnl_x"][tail.es_rows(n)].mean() == pytest.approx(-s.es_975 * 0.5)
    assert Moments.of(stats).part_sums["pnl_x"] == pytest.approx((pnl * 0.5).sum(), rel=1e-12)


def test_ties_at_the_tail_threshold_fall_by_scenario_id_in_any_shard_layout() -> None:
    """Many equal P&L values straddle the ES tail's edge: the kept rows are the same whatever
    the shards, the lowest scenario ids among the equal ones."""
    n = 1_000
    pnl = np.where(np.arange(n) % 3 == 0, -5.0, np.random.default_rng(2).normal(size=n))
    ids = np.arange(n)
    tails = [_collated(ids, pnl, {}, shards)[1] for shards in (1, 3, 10)]
    for tail in tails[1:]:
        assert np.array_equal(tail.ids, tails[0].ids) and np.array_equal(tail.pnl, tails[0].pnl)
    assert list(tails[0].ids[:5]) == [0, 3, 6, 9, 12]


@pytest.mark.parametrize("n", [1, 2, 3, 19, 20, 21, 101])
def test_small_runs_match_numpy_too(n: int) -> None:
    pnl = np.random.default_rng(n).normal(size=n)
    s = summarise(np.arange(n), pnl)
    assert s.var_99 == -np.quantile(pnl, 0.01) and s.var_95 == -np.quantile(pnl, 0.05)
    assert s.es_975 == -np.sort(pnl)[: max(1, math.ceil(0.025 * n))].mean()


def test_batch_means_interval_by_hand() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    partial = batch_means(4, float(values.sum()), float((values**2).sum()))
    half = 3.182446305 * values.std(ddof=1) / 2.0  # t(3) 97.5% x sd / sqrt(4)
    assert partial.estimate == 2.5 and partial.low == pytest.approx(2.5 - half) and partial.high == pytest.approx(2.5 + half)
    assert batch_means(1, 3.0, 9.0) is None


def test_partial_var_99_interval_covers_the_normal_quantile() -> None:
    """Shards of N(0, 1) P&L: the interval from 40 shards' own VaR 99% covers the closed-form
    VaR 99% (2.3263) in about 95% of runs, small shards included."""
    rng = np.random.default_rng(12)
    runs, shards, size = 300, 40, 1_500
    pnl = rng.standard_normal((runs, shards, size))
    covered = 0
    for run in pnl:
        estimates = np.array([shard_value_at_risk(shard, 0.99) for shard in run])
        partial = batch_means(shards, float(estimates.sum()), float((estimates**2).sum()))
        covered += partial.low <= 2.326347874 <= partial.high
    assert 0.90 <= covered / runs <= 0.99


def test_tail_candidates_stay_bounded_and_keep_every_row_that_can_be_in_the_tail() -> None:
    """Fed shard after shard, the candidates hold about twice the tail, pruned at the running
    bound, and end with the same worst rows as a sort of everything; ties beyond the bound
    are all kept (and cannot loop)."""
    rng = np.random.default_rng(4)
    n, shards, size = 100_000, 50, 2_510
    pnl = rng.normal(size=n)
    pnl[:3_000] = -9.0  # more ties than the tail
    ids = np.arange(n)
    candidates = TailCandidates(size)
    for part in np.array_split(rng.permutation(n), shards):
        candidates.see(pnl[part])
        candidates.add(TailRows(pnl[part], ids[part], {"pnl_x": pnl[part] * 2}))
        assert candidates.held <= max(2 * size, 3_000) + part.shape[0]
    tail = candidates.worst()
    expected = np.lexsort((ids, pnl))[:size]
    assert np.array_equal(tail.ids, expected) and np.array_equal(tail.parts["pnl_x"], pnl[expected] * 2)
