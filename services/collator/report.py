"""The run report: one self-contained HTML file (inline SVG and CSS, no network) and a PNG
of the P&L histogram."""

from __future__ import annotations

import html
import io
from typing import Any

import numpy as np

BINS = 60
WIDTH, HEIGHT, PAD = 760, 300, 40
LINES = (("VaR 95%", "var_95", "#e69f00"), ("VaR 99%", "var_99", "#d55e00"), ("ES 97.5%", "es_975", "#7b3294"))


def histogram_svg(counts: np.ndarray, edges: np.ndarray, summary: dict[str, Any]) -> str:
    """The P&L histogram with the VaR and ES losses marked (at -VaR / -ES on the P&L axis)."""
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo or 1.0
    top = counts.max() or 1

    def x(value: float) -> float:
        return PAD + (value - lo) / span * (WIDTH - 2 * PAD)

    bar_w = (WIDTH - 2 * PAD) / BINS
    bars = "".join(
        f'<rect class="bar" x="{x(edges[i]):.1f}" y="{HEIGHT - PAD - c / top * (HEIGHT - 2 * PAD):.1f}" '
        f'width="{bar_w - 1:.1f}" height="{c / top * (HEIGHT - 2 * PAD):.1f}"><title>{edges[i]:,.0f} to {edges[i + 1]:,.0f}: {c}</title></rect>'
        for i, c in enumerate(counts)
    )
    marks = "".join(
        f'<line class="mark" x1="{x(-summary[key]):.1f}" x2="{x(-summary[key]):.1f}" y1="{PAD - 10}" y2="{HEIGHT - PAD}" stroke="{color}"/>'
        f'<text x="{x(-summary[key]) + 3:.1f}" y="{PAD - 12 + 12 * n}" fill="{color}">{label} {summary[key]:,.0f}</text>'
        for n, (label, key, color) in enumerate(LINES)
    )
    axis = (
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<text x="{PAD}" y="{HEIGHT - 12}">{lo:,.0f}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" text-anchor="end">{hi:,.0f}</text>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">P&amp;L</text>'
    )
    return (
        f'<svg id="histogram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="P&amp;L histogram">{bars}{marks}{axis}</svg>'
    )


def histogram_png(counts: np.ndarray, edges: np.ndarray, summary: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    ax.stairs(counts, edges, fill=True, color="#4c78a8")
    for label, key, color in LINES:
        ax.axvline(-summary[key], color=color, linewidth=1.5, label=f"{label} {summary[key]:,.0f}")
    ax.set_xlabel("P&L")
    ax.set_ylabel("scenarios")
    ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.95)  # fixed margins: tight_layout measures every label (a third of the drawing time)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:60rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3}.wide{overflow-x:auto}.bar{fill:#4c78a8}svg{width:100%;height:auto;font-size:11px}
"""


def render_report(
    summary: dict[str, Any],
    counts: np.ndarray,
    edges: np.ndarray,
    worst: list[dict[str, Any]],
    attribution: dict[str, dict[str, float]],
    metadata: dict[str, Any],
) -> str:
    """``worst``: rows of scenario_id, pnl and the factor shocks; ``attribution``: per P&L
    component, its mean and its contribution to ES 97.5% (the mean over the ES tail)."""
    measures = _table(
        ["measure", "value"],
        [["scenarios", summary["scenarios"]], ["VaR 95%", summary["var_95"]], ["VaR 99%", summary["var_99"]],
         ["ES 97.5%", summary["es_975"]], ["mean P&L", summary["mean"]], ["std P&L", summary["std"]]],
        "measures",
    )
    factor_names = [k for k in worst[0] if k not in ("scenario_id", "pnl")] if worst else []
    worst_table = _table(
        ["scenario", "P&L", *factor_names],
        [[w["scenario_id"], w["pnl"], *(w[f] for f in factor_names)] for w in worst],
        "worst",
    )
    attribution_table = (
        _table(["component", "mean", "ES 97.5% contribution"], [[k, v["mean"], v["es_975"]] for k, v in attribution.items()], "attribution")
        if attribution
        else "<p>The model reports no P&amp;L components.</p>"
    )
    meta_table = _table(["field", "value"], [[k, v] for k, v in metadata.items()], "metadata")
    title = f"scengrid run {html.escape(summary['run_id'])}"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f"<h2>P&amp;L distribution</h2>{histogram_svg(counts, edges, summary)}{measures}"
        f'<h2>Worst scenarios</h2><div class="wide">{worst_table}</div>'
        f"<h2>Attribution by asset class</h2>{attribution_table}"
        f"<h2>Run</h2>{meta_table}</body></html>"
    )
