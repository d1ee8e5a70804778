"""Benchmark of the kernel on the reference model; prints one JSON object.

- scenarios/s of ``evaluate_range`` (the worker's code) for a 1,000-position sample portfolio,
  with generated (correlated normal) scenarios, in one process; where the time goes;
- achieved GFLOP/s (the model's own count of its floating-point work, exp and normal CDF
  counted as one each) against a numpy matmul measured in the same run, on one BLAS thread
  like the kernel;
- the speed-up over a straightforward per-scenario Python loop on the same inputs (run on a
  subset and scaled), whose P&L is also checked against the kernel's;
- the peak RSS of a shard of 50,000 scenarios x 1,000 positions, in a fresh process.

Run: ``make bench`` or ``.venv/bin/python tests/bench/bench_kernel.py [--scenarios N]``.
Figures, not asserts: the machine decides the numbers."""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from scengrid.kernel import CHUNK, evaluate_range
from scengrid.models import load_model
from scengrid.models.portfolio import PortfolioModel
from scengrid.scenario_sources import open_shocks
from scengrid.spec import GeneratedScenarios

POSITIONS = 1_000
PARAMS = {"portfolio": {"sample": {"positions": POSITIONS, "seed": 7}}}
SHARD = 50_000


def best_seconds(run, repeats: int) -> float:  # noqa: ANN001
    """The fastest of a few runs: the machine's other load only ever slows a run down."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def matmul_gflops(size: int = 2048) -> float:
    a, b = np.random.default_rng(0).random((2, size, size))
    with threadpool_limits(limits=1, user_api="blas"):
        seconds = best_seconds(lambda: a @ b, 3)
    return 2 * size**3 / seconds / 1e9


def time_split(model: PortfolioModel, source: GeneratedScenarios) -> dict[str, float]:
    """Microseconds per scenario of each part, on one block."""
    reader = open_shocks(source, model.factors)
    shocks = reader.read(0, CHUNK)
    parts = {
        "generate": lambda: reader.read(0, CHUNK),
        "bonds": lambda: model.bonds.pnl(shocks),
        "options": lambda: model.options.pnl(shocks),
        "equities": lambda: model.equities.pnl(shocks),
        "whole_model": lambda: model.evaluate(shocks),
    }
    with threadpool_limits(limits=1, user_api="blas"):
        return {name: round(best_seconds(run, 7) / CHUNK * 1e6, 3) for name, run in parts.items()}


def python_loop_pnl(model: PortfolioModel, shocks: np.ndarray) -> np.ndarray:
    """The straightforward way: for each scenario, for each position, price it with the
    contract's formulas in plain Python, then subtract the base value."""
    names = {name: i for i, name in enumerate(model.factors.names)}
    p = model.portfolio

    def curve_rate(ccy: str, t: float, row: np.ndarray | None) -> float:
        curve = p.curves[ccy]
        rates = [z + (0.0 if row is None else row[names[f"rate.{ccy}.{label}"]]) for z, label in zip(curve.zero_rates, labels[ccy])]
        tenors = curve.tenors
        if t <= tenors[0]:
            return rates[0]
        if t >= tenors[-1]:
            return rates[-1]
        j = bisect.bisect_right(tenors, t)
        w = (t - tenors[j - 1]) / (tenors[j] - tenors[j - 1])
        return rates[j - 1] * (1 - w) + rates[j] * w

    def value(row: np.ndarray | None) -> float:
        def shock(name: str) -> float:
            return 0.0 if row is None else float(row[names[name]])

        total = 0.0
        for pos in p.positions:
            if pos.type == "bond":
                spread = p.spreads[pos.rating] + shock(f"spread.{pos.rating}")
                k, local = 0, 0.0
                while (t := pos.maturity - k / pos.frequency) > 1e-9:
                    flow = pos.notional * pos.coupon / pos.frequency + (pos.notional if k == 0 else 0.0)
                    local += flow * math.exp(-(curve_rate(pos.currency, t, row) + spread) * t)
                    k += 1
                ccy = pos.currency
            elif pos.type in ("equity", "option"):
                eq = p.equities[pos.underlying]
                spot = eq.spot * math.exp(shock(f"equity.{pos.underlying}"))
                ccy = eq.currency
                if pos.type == "equity":
                    local = pos.quantity * spot
                else:
                    vol = max(eq.vol + shock(f"vol.{pos.underlying}"), 1e-4)
                    r, q, t, k = curve_rate(ccy, pos.expiry, row), eq.dividend_yield, pos.expiry, pos.strike
                    d1 = (math.log(spot / k) + (r - q + vol * vol / 2) * t) / (vol * math.sqrt(t))
                    d2 = d1 - vol * math.sqrt(t)
                    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
                    sign = 1.0 if pos.kind == "call" else -1.0
                    price = sign * (spot * math.exp(-q * t) * cdf(sign * d1) - k * math.exp(-r * t) * cdf(sign * d2))
                    local = pos.quantity * price
            else:
                local, ccy = pos.amount, pos.currency
            fx = p.fx_rate(ccy) * math.exp(shock(f"fx.{ccy}") if ccy != p.base_currency else 0.0)
            total += local * fx
        return total

    labels = {ccy: [n.split(".", 2)[2] for n in model.factors.names if n.startswith(f"rate.{ccy}.")] for ccy in p.curves}
    base = value(None)
    return np.array([value(row) - base for row in shocks])


def peak_rss_of_a_shard() -> dict[str, float]:
    """In a fresh process: RSS after loading the model, then the peak over a 50,000-scenario
    shard of the 1,000-position portfolio (ru_maxrss, KiB on Linux)."""
    code = f"""
import json, resource, time
from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.spec import GeneratedScenarios
model = load_model("portfolio", {PARAMS!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
columns = evaluate_range(model, GeneratedScenarios(count={SHARD}, seed=3), 0, {SHARD})
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rss_after_imports_and_model_mib": before / 1024, "peak_rss_mib": peak / 1024, "seconds": seconds}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return {key: round(value, 2) for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=100_000, help="scenarios per timed run (default %(default)s)")
    parser.add_argument("--loop-scenarios", type=int, default=20, help="scenarios of the Python loop (default %(default)s)")
    args = parser.parse_args()
    model = load_model("portfolio", PARAMS)
    source = GeneratedScenarios(count=args.scenarios, seed=1)
    evaluate_range(model, source, 0, min(args.scenarios, 4 * CHUNK))  # warm up
    seconds = best_seconds(lambda: evaluate_range(model, source, 0, args.scenarios), 3)
    rate = args.scenarios / seconds
    work = model.work()
    flops = sum(work.values())
    peak = matmul_gflops()

    shocks = open_shocks(source, model.factors).read(0, args.loop_scenarios)
    started = time.perf_counter()
    loop_pnl = python_loop_pnl(model, shocks)
    loop_rate = args.loop_scenarios / (time.perf_counter() - started)
    kernel_pnl = evaluate_range(model, source, 0, args.loop_scenarios)["pnl"]
    p = model.portfolio
    print(json.dumps({
        "portfolio": {"positions": POSITIONS, "bonds": len(p.bonds()), "options": len(p.options()),
                      "equities": len(p.equity_positions()), "fx": len(p.fx_positions()), "factors": len(model.factors.names)},
        "cpus": os.cpu_count(),
        "scenarios": args.scenarios,
        "chunk": CHUNK,
        "seconds": round(seconds, 4),
        "scenarios_per_s": round(rate),
        "us_per_scenario": time_split(model, source),
        "flops_per_scenario": work,
        "achieved_gflops": round(flops * rate / 1e9, 3),
        "numpy_matmul_gflops_1_thread": round(peak, 2),
        "share_of_matmul": round(flops * rate / 1e9 / peak, 4),
        "python_loop": {"scenarios": args.loop_scenarios, "scenarios_per_s": round(loop_rate, 2),
                        "max_abs_pnl_difference": float(np.max(np.abs(loop_pnl - kernel_pnl))),
                        "portfolio_value": round(model.base_value, 2)},
        "speedup_vs_python_loop": round(rate / loop_rate),
        "shard_50k_x_1000": peak_rss_of_a_shard(),
    }, indent=1))


if __name__ == "__main__":
    main()
