"""The report's histogram, counted one shard at a time over edges fixed by the run's extremes
(from the workers' figures), equals numpy's histogram of the whole P&L vector over the same
edges, values on the edges included."""

from __future__ import annotations

import numpy as np

from services.collator.report import BINS
from services.collator.reporting import histogram_counts, histogram_edges


def test_counts_by_shard_equal_numpys_over_the_same_edges() -> None:
    pnl = np.random.default_rng(3).standard_t(4, size=30_000) * 1e6
    low, high = float(pnl.min()), float(pnl.max())
    on_edges = np.linspace(low, high, BINS + 1)
    pnl = np.concatenate([pnl, on_edges, np.nextafter(on_edges, np.inf)[:-1], np.nextafter(on_edges, -np.inf)[1:]])
    edges = histogram_edges(low, high)
    counts = sum(histogram_counts(np.sort(part), edges) for part in np.array_split(pnl, 7))  # shards, sorted as stored
    expected, expected_edges = np.histogram(pnl, bins=np.linspace(low, high, BINS + 1))
    assert np.array_equal(edges, expected_edges)
    assert np.array_equal(counts, expected)
    assert counts.sum() == pnl.size


def test_a_single_value_gets_one_bin_of_width_one() -> None:
    edges = histogram_edges(2.5, 2.5)
    counts = histogram_counts(np.full(5, 2.5), edges)
    assert edges[0] == 2.5 and edges[-1] == 3.5 and counts.sum() == 5
