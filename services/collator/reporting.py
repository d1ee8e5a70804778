"""What the report shows, computed from the merged outputs and the run's spec."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
import pyarrow as pa

from scengrid import layout, s3io
from scengrid.models import load_model
from scengrid.risk import RiskSummary, tail_indices
from scengrid.scenarios import generate
from scengrid.spec import RunSpec

from services.collator.report import histogram_png, render_report

COMPONENT_PREFIX = "pnl_"


def worst_with_shocks(spec: RunSpec, summary: RiskSummary) -> list[dict[str, Any]]:
    """The worst scenarios with the factor shocks that made them (regenerated: scenario i
    depends only on (seed, i))."""
    factors = load_model(spec.model.name, spec.model.params).factors
    rows = []
    for worst in summary.worst:
        shocks = generate(spec.scenarios, factors.vols, int(worst["scenario_id"]), 1)[0]
        rows.append({**worst, **dict(zip(factors.names, (float(s) for s in shocks)))})
    return rows


def attribution(merged: pa.Table, pnl: np.ndarray) -> dict[str, dict[str, float]]:
    """Per P&L component (``pnl_*`` columns): its mean and its share of ES 97.5% (its mean
    over the ES tail; the shares add up to ES when the components add up to the P&L)."""
    tail = tail_indices(pnl, 0.975)
    out = {}
    for name in merged.column_names:
        if name.startswith(COMPONENT_PREFIX):
            values = merged.column(name).to_numpy()
            out[name[len(COMPONENT_PREFIX):]] = {"mean": float(values.mean()), "es_975": float(-values[tail].mean())}
    return out


def write_report(run_id: str, spec: RunSpec, merged: pa.Table, summary: RiskSummary, metadata: dict[str, Any]) -> None:
    pnl = merged.column("pnl").to_numpy()
    numbers = {"run_id": run_id, **summary.model_dump()}
    page = render_report(
        numbers,
        pnl,
        worst_with_shocks(spec, summary),
        attribution(merged, pnl),
        {"scengrid": version("scengrid"), **metadata},
    )
    s3io.put_bytes(layout.report_key(run_id), page.encode(), "text/html; charset=utf-8")
    s3io.put_bytes(layout.histogram_key(run_id), histogram_png(pnl, numbers), "image/png")
