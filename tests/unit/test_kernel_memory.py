"""A shard's memory is bounded by one block of the kernel, not by the shard: a shard of 50,000
scenarios of a 1,000-position portfolio must stay far under 2 GiB. Measured with tracemalloc,
which sees every NumPy array allocation (the sizes of the arrays actually made)."""

from __future__ import annotations

import tracemalloc

from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.spec import GeneratedScenarios

GIB = 2**30
SHARD = 50_000


def peak_bytes(model, count: int) -> int:  # noqa: ANN001
    tracemalloc.start()
    try:
        columns = evaluate_range(model, GeneratedScenarios(count=count, seed=1), 0, count)
        assert len(columns["pnl"]) == count
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_shard_of_50000_scenarios_and_1000_positions_needs_far_less_than_2_gib() -> None:
    model = load_model("portfolio", {"portfolio": {"sample": {"positions": 1000, "seed": 7}}})
    peak = peak_bytes(model, SHARD)
    outputs = 6 * SHARD * 8  # the six result columns, kept for the whole shard
    print(f"peak traced memory of a {SHARD:,} x 1,000 shard: {peak / 2**20:.1f} MiB")
    assert peak < 2 * GIB
    assert peak < 3 * outputs + 16 * 2**20  # the outputs (and their concatenation) plus one block's work
