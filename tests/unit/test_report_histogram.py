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


def test_the_png_draws_the_svgs_bars_and_lines_where_the_svg_does() -> None:
    import io
    import re

    from PIL import Image

    from services.collator.report import HEIGHT, PAD, PNG_SCALE, WIDTH, Chart, histogram_png, histogram_svg

    pnl = np.random.default_rng(8).normal(size=20_000) * 1e6
    edges = histogram_edges(float(pnl.min()), float(pnl.max()))
    counts = histogram_counts(pnl, edges)
    summary = {"var_95": 1.6e6, "var_99": 2.3e6, "es_975": 2.4e6}
    chart = Chart.of(counts, edges, summary)
    svg = histogram_svg(counts, edges, summary)
    assert len(re.findall(r'<rect class="bar"', svg)) == len(chart.bars) == BINS
    image = Image.open(io.BytesIO(histogram_png(counts, edges, summary))).convert("RGB")
    assert image.size == (round(WIDTH * PNG_SCALE), round(HEIGHT * PNG_SCALE))
    x0, y0, x1, y1, _ = max(chart.bars, key=lambda bar: bar[3] - bar[1])  # the tallest bar
    assert image.getpixel((round((x0 + x1) / 2 * PNG_SCALE), round((y0 + y1) / 2 * PNG_SCALE))) == (0x4C, 0x78, 0xA8)
    x, _, color = chart.marks[1]  # VaR 99%'s line, halfway down
    assert image.getpixel((round(x * PNG_SCALE), round(HEIGHT / 2 * PNG_SCALE))) == tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    assert image.getpixel((round(WIDTH / 2 * PNG_SCALE), round((HEIGHT - PAD) * PNG_SCALE))) == (0x33, 0x33, 0x33)  # the axis
