"""The report's histogram, counted one row group of the merged file at a time, equals numpy's
histogram of the whole P&L vector over the same edges, values on the edges included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from services.collator.report import BINS
from services.collator.reporting import histogram


def test_counts_by_row_group_equal_numpys_over_the_same_edges(tmp_path: Path) -> None:
    pnl = np.random.default_rng(3).standard_t(4, size=30_000) * 1e6
    low, high = float(pnl.min()), float(pnl.max())
    on_edges = np.linspace(low, high, BINS + 1)
    pnl = np.concatenate([pnl, on_edges, np.nextafter(on_edges, np.inf)[:-1], np.nextafter(on_edges, -np.inf)[1:]])
    merged = tmp_path / "pnl.parquet"
    with pq.ParquetWriter(merged, pa.schema([("pnl", pa.float64())])) as writer:
        for part in np.array_split(pnl, 7):  # one row group per shard
            writer.write_table(pa.table({"pnl": part}))
    counts, edges = histogram(merged, low, high)
    expected, expected_edges = np.histogram(pnl, bins=np.linspace(low, high, BINS + 1))
    assert np.array_equal(edges, expected_edges)
    assert np.array_equal(counts, expected)
    assert counts.sum() == pnl.size


def test_a_single_value_gets_one_bin_of_width_one(tmp_path: Path) -> None:
    merged = tmp_path / "pnl.parquet"
    pq.write_table(pa.table({"pnl": np.full(5, 2.5)}), merged)
    counts, edges = histogram(merged, 2.5, 2.5)
    assert edges[0] == 2.5 and edges[-1] == 3.5 and counts.sum() == 5
