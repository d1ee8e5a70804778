"""What the report shows, computed from the streamed accumulator and the merged file, never
from the whole P&L vector in memory."""

from __future__ import annotations

from contextlib import closing
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from scengrid import layout, s3io
from scengrid.models import load_model
from scengrid.risk import RiskSummary, TailAccumulator
from scengrid.scenario_sources import open_shocks
from scengrid.spec import RunSpec

from services.collator.report import BINS, histogram_png, render_report

COMPONENT_PREFIX = "pnl_"


def worst_with_shocks(spec: RunSpec, summary: RiskSummary) -> list[dict[str, Any]]:
    """The worst scenarios with the factor shocks that made them, read back from the run's
    scenario source as the workers read them (generated with the model's correlation, or
    read from the scenario file)."""
    factors = load_model(spec.model.name, spec.model.params).factors
    rows = []
    with closing(open_shocks(spec.scenarios, factors)) as reader:
        for worst in summary.worst:  # ten rows at most
            shocks = reader.read(int(worst["scenario_id"]), 1)[0]
            rows.append({**worst, **dict(zip(factors.names, (float(s) for s in shocks)))})
    return rows


def attribution(accumulator: TailAccumulator) -> dict[str, dict[str, float]]:
    """Per P&L component (``pnl_*`` columns): its mean and its share of ES 97.5% (its mean
    over the ES tail; the shares add up to ES when the components add up to the P&L)."""
    tail = accumulator.tail_rows(0.975)
    return {
        name[len(COMPONENT_PREFIX) :]: {
            "mean": accumulator.part_sums[name] / accumulator.count,
            "es_975": float(-accumulator.parts[name][tail].mean()),
        }
        for name in accumulator.parts
    }


def histogram(merged_path: Path, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts over BINS equal bins of [low, high], from the merged file's pnl column."""
    top = high if high > low else low + 1.0
    edges = np.linspace(low, top, BINS + 1)
    counts = np.zeros(BINS, dtype=np.int64)
    merged = pq.ParquetFile(merged_path)
    for group in range(merged.num_row_groups):  # one row group (one shard) at a time
        values = merged.read_row_group(group, columns=["pnl"]).column(0).to_numpy()
        # equal bins given by count and range: numpy bins linearly (the same counts as with
        # these edges) instead of searching the edges for every value
        counts += np.histogram(values, bins=BINS, range=(low, top))[0]
    return counts, edges


def write_report(
    run_id: str, spec: RunSpec, merged_path: Path, accumulator: TailAccumulator, metadata: dict[str, Any]
) -> None:
    summary = accumulator.summary()
    numbers = {"run_id": run_id, **summary.model_dump()}
    counts, edges = histogram(merged_path, accumulator.low, accumulator.high)
    page = render_report(
        numbers,
        counts,
        edges,
        worst_with_shocks(spec, summary),
        attribution(accumulator),
        {"scengrid": version("scengrid"), **metadata},
    )
    s3io.put_bytes(layout.report_key(run_id), page.encode(), "text/html; charset=utf-8")
    s3io.put_bytes(layout.histogram_key(run_id), histogram_png(counts, edges, numbers), "image/png")
