"""What the report shows, computed from what collation kept (the tail rows, the moments, the
histogram counted shard by shard), never from the whole P&L vector in memory."""

from __future__ import annotations

from contextlib import closing
from importlib.metadata import version
from typing import Any

import numpy as np

from scengrid import layout, s3io
from scengrid.errors import UnknownModel
from scengrid.models import FactorSet, load_model
from scengrid.pnl_dataset import COMPONENT_PREFIX
from scengrid.risk import Moments, RiskSummary, TailRows
from scengrid.scenario_sources import open_shocks
from scengrid.spec import RunSpec

from services.collator.report import BINS, histogram_png, render_report


def model_factors(spec: RunSpec) -> FactorSet | None:
    """The run's model's factors; None when the model is not installed here (a user's package
    lives in the worker image only)."""
    try:
        return load_model(spec.model.name, spec.model.params).factors
    except UnknownModel:
        return None


def worst_with_shocks(spec: RunSpec, summary: RiskSummary, factors: FactorSet | None = None) -> list[dict[str, Any]]:
    """The worst scenarios with the factor shocks that made them, read back from the run's
    scenario source as the workers read them (generated with the model's correlation, or
    read from the scenario file). Without the model's factors (``model_factors``), the rows
    keep their ids and P&L only."""
    factors = factors or model_factors(spec)
    if factors is None:
        return [dict(worst) for worst in summary.worst]
    rows = []
    with closing(open_shocks(spec.scenarios, factors)) as reader:
        for worst in summary.worst:  # ten rows at most
            shocks = reader.read(int(worst["scenario_id"]), 1)[0]
            rows.append({**worst, **dict(zip(factors.names, (float(s) for s in shocks)))})
    return rows


def attribution(tail: TailRows, moments: Moments) -> dict[str, dict[str, float]]:
    """Per P&L component (``pnl_*`` columns): its mean and its share of ES 97.5% (its mean
    over the ES tail; the shares add up to ES when the components add up to the P&L)."""
    rows = tail.es_rows(moments.count)
    return {
        name[len(COMPONENT_PREFIX) :]: {
            "mean": moments.part_sums[name] / moments.count,
            "es_975": float(-tail.parts[name][rows].mean()),
        }
        for name in tail.parts
    }


def histogram_edges(low: float, high: float) -> np.ndarray:
    """BINS equal bins over [low, high] (one bin of width one when all values are equal)."""
    return np.linspace(low, high if high > low else low + 1.0, BINS + 1)


def histogram_counts(pnl: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of one shard's values over ``edges``: summed over the shards, numpy's histogram
    of the whole P&L. numpy bins equal bins given by count and range linearly, instead of
    searching the edges for every value."""
    return np.histogram(pnl, bins=BINS, range=(float(edges[0]), float(edges[-1])))[0]


def write_report(
    run_id: str,
    spec: RunSpec,
    summary: RiskSummary,
    histogram: tuple[np.ndarray, np.ndarray],
    attributed: dict[str, dict[str, float]],
    metadata: dict[str, Any],
    factors: FactorSet | None = None,
) -> None:
    numbers = {"run_id": run_id, **summary.model_dump()}
    counts, edges = histogram
    page = render_report(
        numbers, counts, edges, worst_with_shocks(spec, summary, factors), attributed, {"scengrid": version("scengrid"), **metadata}
    )
    s3io.put_bytes(layout.report_key(run_id), page.encode(), "text/html; charset=utf-8")
    s3io.put_bytes(layout.histogram_key(run_id), histogram_png(counts, edges, numbers), "image/png")
