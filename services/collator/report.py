"""The run report: one self-contained HTML file (inline SVG and CSS, no network) and a PNG
of the P&L histogram."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 60
WIDTH, HEIGHT, PAD = 760, 300, 40
LINES = (("VaR 95%", "var_95", "#e69f00"), ("VaR 99%", "var_99", "#d55e00"), ("ES 97.5%", "es_975", "#7b3294"))


@dataclass(frozen=True)
class Chart:
    """The histogram's geometry in a WIDTH x HEIGHT box, shared by the SVG and the PNG so that
    the two cannot differ: a bar per bin, a line per risk measure (at -VaR / -ES on the P&L
    axis), and the axis' labels."""

    bars: list[tuple[float, float, float, float, str]]  # x0, y0, x1, y1, the bin's range and count
    marks: list[tuple[float, str, str]]  # x, label, colour
    low: str
    high: str
    top: int  # the tallest bar's count

    @classmethod
    def of(cls, counts: np.ndarray, edges: np.ndarray, summary: dict[str, Any]) -> Chart:
        lo, hi = float(edges[0]), float(edges[-1])
        span = hi - lo or 1.0
        top = counts.max() or 1

        def x(value: float) -> float:
            return PAD + (value - lo) / span * (WIDTH - 2 * PAD)

        bar_w = (WIDTH - 2 * PAD) / BINS
        bars = [
            (x(edges[i]), HEIGHT - PAD - c / top * (HEIGHT - 2 * PAD), x(edges[i]) + bar_w - 1, HEIGHT - PAD,
             f"{edges[i]:,.0f} to {edges[i + 1]:,.0f}: {c}")
            for i, c in enumerate(counts)
        ]
        marks = [(x(-summary[key]), f"{label} {summary[key]:,.0f}", color) for label, key, color in LINES]
        return cls(bars, marks, f"{lo:,.0f}", f"{hi:,.0f}", int(top))


def histogram_svg(counts: np.ndarray, edges: np.ndarray, summary: dict[str, Any]) -> str:
    """The P&L histogram with the VaR and ES losses marked (at -VaR / -ES on the P&L axis)."""
    chart = Chart.of(counts, edges, summary)
    bars = "".join(
        f'<rect class="bar" x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}"><title>{title}</title></rect>'
        for x0, y0, x1, y1, title in chart.bars
    )
    marks = "".join(
        f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{PAD - 10}" y2="{HEIGHT - PAD}" stroke="{color}"/>'
        f'<text x="{x + 3:.1f}" y="{PAD - 12 + 12 * n}" fill="{color}">{html.escape(label)}</text>'
        for n, (x, label, color) in enumerate(chart.marks)
    )
    axis = (
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<text x="{PAD}" y="{HEIGHT - 12}">{chart.low}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" text-anchor="end">{chart.high}</text>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">P&amp;L</text>'
    )
    return (
        f'<svg id="histogram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="P&amp;L histogram">{bars}{marks}{axis}</svg>'
    )


PNG_SCALE = 1.25  # the PNG is the SVG's drawing at 950 x 375 pixels


def histogram_png(counts: np.ndarray, edges: np.ndarray, summary: dict[str, Any]) -> bytes:
    """The same chart as a PNG, drawn with Pillow (10 ms; a plotting library took 100-200 ms on
    the critical path of every run's collation)."""
    from PIL import Image, ImageDraw, ImageFont

    chart = Chart.of(counts, edges, summary)
    k = PNG_SCALE
    image = Image.new("RGB", (round(WIDTH * k), round(HEIGHT * k)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=round(11 * k))
    for x0, y0, x1, y1, _ in chart.bars:
        if y1 - y0 > 0:
            draw.rectangle((x0 * k, y0 * k, x1 * k, y1 * k), fill="#4c78a8")
    for n, (x, label, color) in enumerate(chart.marks):  # the lines, and their legend at the top right
        draw.line((x * k, (PAD - 10) * k, x * k, (HEIGHT - PAD) * k), fill=color, width=2)
        y = (14 + 14 * n) * k
        draw.line(((WIDTH - 30) * k, y - 4 * k, (WIDTH - 8) * k, y - 4 * k), fill=color, width=2)
        draw.text(((WIDTH - 34) * k, y), label, fill=color, font=font, anchor="rs")
    draw.text((8 * k, 14 * k), f"tallest bin: {chart.top:,} scenarios", fill="#222222", font=font, anchor="ls")
    base = (HEIGHT - PAD) * k
    draw.line((PAD * k, base, (WIDTH - PAD) * k, base), fill="#333333", width=1)
    draw.text((PAD * k, (HEIGHT - 12) * k), chart.low, fill="#222222", font=font, anchor="ls")
    draw.text(((WIDTH - PAD) * k, (HEIGHT - 12) * k), chart.high, fill="#222222", font=font, anchor="rs")
    draw.text((WIDTH / 2 * k, (HEIGHT - 12) * k), "P&L", fill="#222222", font=font, anchor="ms")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
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
