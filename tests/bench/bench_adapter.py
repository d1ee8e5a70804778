"""What ``@scenario_function`` costs per call, on a trivial function; prints one JSON object.

The function returns the P&L of two factors (one multiply-add). Per scenario, over repeats:
- ``direct``: the function called in a plain loop over the same shocks, each scenario's dict
  built the same way (``dict(zip(names, row))`` of ``shocks.tolist()``), results into a list
  and then an array: what a quant's own loop would cost;
- ``adapter``: the adapter's ``evaluate_block`` on the same (n, F) block (what the kernel calls);
- ``bare_calls``: only the calls, with one dict made once (the function's own cost);
- ``mapping_result``: the adapter when the function returns a dict with pnl and two more columns;
and the kernel's ``evaluate_range`` through the adapter, on generated scenarios (shocks included).
Each figure: median and spread (min, max) of µs per call over the repeats, the runs interleaved.

Run: ``.venv/bin/python tests/bench/bench_adapter.py [--scenarios N] [--repeats R] [--factors F]``.
Figures, not asserts: the machine decides the numbers."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Mapping

import numpy as np

from scengrid.kernel import CHUNK, evaluate_range
from scengrid.models import scenario_function
from scengrid.models.function import function_model_class
from scengrid.spec import GeneratedScenarios


def per_call_us(runs: dict[str, Callable[[], object]], calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """Each run ``repeats`` times, interleaved (one of each per round, in a shuffled order), so
    that a change in the machine's load, or what the run before left in the allocator, touches
    every figure alike."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm
    order = random.Random(0)
    for _ in range(repeats):
        names = list(runs)
        order.shuffle(names)
        for name in names:
            run = runs[name]
            started = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: {"median": round(statistics.median(v), 4), "min": round(min(v), 4), "max": round(max(v), 4)}
            for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=CHUNK * 64, help="scenarios per repeat (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=15, help="repeats of each measurement (default %(default)s)")
    parser.add_argument("--factors", type=int, default=2, help="factors per scenario (default %(default)s)")
    args = parser.parse_args()

    factors = {"equity.SPX": 0.012, "rate.USD.5": 0.0007, **{f"equity.X{i}": 0.01 for i in range(args.factors - 2)}}
    names = tuple(factors)

    @scenario_function(factors=factors)
    def trivial(shock: Mapping[str, float]) -> float:
        return 1e6 * shock["equity.SPX"] - 4.5e7 * shock["rate.USD.5"]

    @scenario_function(factors=factors)
    def columns(shock: Mapping[str, float]) -> Mapping[str, float]:
        equity, rates = 1e6 * shock["equity.SPX"], -4.5e7 * shock["rate.USD.5"]
        return {"pnl": equity + rates, "pnl_equity": equity, "pnl_rates": rates}

    n = args.scenarios
    shocks = np.random.default_rng(0).normal(0.0, 0.01, (n, len(names)))
    adapter, mapping = function_model_class(trivial)({}), function_model_class(columns)({})

    def direct() -> np.ndarray:
        out = [trivial(dict(zip(names, row))) for row in shocks.tolist()]
        return np.array(out, dtype=np.float64)

    def bare() -> None:
        one = dict(zip(names, shocks[0].tolist()))
        for _ in range(n):
            trivial(one)

    def blocks(model) -> Callable[[], None]:  # noqa: ANN001
        def run() -> None:
            for start in range(0, n, CHUNK):
                model.evaluate_block(shocks[start : start + CHUNK], start)
        return run

    assert np.array_equal(np.concatenate([adapter.evaluate_block(shocks[s : s + CHUNK], s)["pnl"] for s in range(0, n, CHUNK)]), direct())
    source = GeneratedScenarios(count=n, seed=1)
    figures = per_call_us({
        "direct": direct,
        "adapter": blocks(adapter),
        "bare_calls": bare,
        "mapping_result": blocks(mapping),
        "kernel_evaluate_range": lambda: evaluate_range(adapter, source, 0, n),
    }, n, args.repeats)
    result = {
        "benchmark": "adapter_per_call_us",
        "scenarios_per_repeat": n, "repeats": args.repeats, "factors": len(names),
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # another process on the cores shows in the spread
        "per_call_us": figures,
        "adapter_overhead_us": round(figures["adapter"]["median"] - figures["direct"]["median"], 4),
        "adapter_over_direct": round(figures["adapter"]["median"] / figures["direct"]["median"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
