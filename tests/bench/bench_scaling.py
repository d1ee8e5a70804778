"""Scaling benchmark: scengrid's whole local pipeline and the process pool at 100k, 1M and 10M
scenarios. Prints JSON and draws one PNG: wall time and the overhead ratio against n.

At each size both systems evaluate the same shards (scengrid's ``auto`` layout) of the default
portfolio model, each in its own process (``tests/bench/pipeline_systems.py``). A repeat is a
process that starts the system and then runs the work twice; the second (warm) run is the
figure, except with ``--runs 1`` (the default at the largest size, where a run takes minutes):
then it is the first run, start-up still excluded. Sizes and systems are interleaved.

scengrid's overhead, ``a - b`` (its warm wall time minus the pool's), is fitted as
``fixed + per_scenario * n`` by least squares over every repeat of every size; the per-scenario
part is also given as a fraction of the kernel's own cost per scenario (the slope of ``b``).
Each size also reports the collator's bytes read against the dataset's bytes, and its peak RSS.

A run whose results differ from the pool's (checksums) fails the benchmark (exit 1); a system
that errors is reported under ``errors`` and left out of the fit. Left out of every clock: the
checksums and reading scengrid's dataset back for them; the stack's and the pool's start-up.

    .venv/bin/python tests/bench/bench_scaling.py [--sizes 100000 1000000 10000000] [--png build/bench/scaling.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_pipeline import run_system  # noqa: E402


def measure(size: int, cores: int, runs: int) -> dict[str, Any]:
    """One repeat at one size: scengrid, then the pool on scengrid's shards."""
    a = run_system("scengrid", size, cores, ["--runs", str(runs)])
    if "error" in a:
        return {"scenarios": size, "error": {"scengrid": a["error"]}}
    b = run_system("process_pool", size, cores, ["--shards", json.dumps(a["shards"]), "--runs", str(runs)])
    if "error" in b:
        return {"scenarios": size, "error": {"process_pool": b["error"]}}
    wrong = [i for i, digest in enumerate(a["checksums"] + b["checksums"]) if digest != b["checksums"][0]]
    return {
        "scenarios": size,
        "shards": len(a["shards"]),
        "a_s": a["walls_s"][-1],
        "b_s": b["walls_s"][-1],
        "stages_s": a["stages_s"][-1],
        "collation": a["collation"][-1],
        "mismatch": bool(wrong),
    }


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares of y = c0 + c1 * n."""
    n = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    c1, c0 = np.polyfit(n, y, 1)
    return float(c0), float(c1)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def draw(sizes: list[dict[str, Any]], fitted: dict[str, float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = [s["scenarios"] for s in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for key, label, color in (("a_s", "scengrid (local stack)", "#4c78a8"), ("b_s", "process pool (kernel only)", "#f58518")):
        median = [s[key]["median"] for s in sizes]
        low = [s[key]["median"] - s[key]["min"] for s in sizes]
        high = [s[key]["max"] - s[key]["median"] for s in sizes]
        left.errorbar(n, median, yerr=[low, high], marker="o", capsize=3, label=label, color=color)
    grid = np.geomspace(min(n), max(n), 50)
    b0, b1 = fitted["b_fixed_s"], fitted["b_per_scenario_s"]
    left.plot(grid, b0 + b1 * grid + fitted["fixed_s"] + fitted["per_scenario_s"] * grid, "--", color="#4c78a8",
              linewidth=0.8, label="pool + fitted overhead")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("scenarios")
    left.set_ylabel("wall time (s)")
    left.legend(fontsize=8)
    ratio = [s["ratio_a_b"]["median"] for s in sizes]
    right.plot(n, ratio, marker="o", color="#4c78a8")
    right.axhline(1.10, color="#d55e00", linewidth=1, linestyle=":", label="goal a/b = 1.10")
    right.set_xscale("log")
    right.set_xlabel("scenarios")
    right.set_ylabel("overhead ratio a/b (warm)")
    right.legend(fontsize=8)
    fig.suptitle(f"fixed overhead {fitted['fixed_s']:.2f} s, per scenario {fitted['per_scenario_of_kernel']:.1%} of the kernel", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.88, wspace=0.25)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every size but the largest (default %(default)s)")
    parser.add_argument("--repeats-largest", type=int, default=1, help="repeats of the largest size (default %(default)s)")
    parser.add_argument("--runs-largest", type=int, default=1, help="runs per process at the largest size (default %(default)s)")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--png", type=Path, default=ROOT / "build" / "bench" / "scaling.png")
    args = parser.parse_args()

    largest = max(args.sizes)
    results: list[dict[str, Any]] = []
    for repeat in range(max(args.repeats, args.repeats_largest)):
        for size in sorted(args.sizes):
            if repeat >= (args.repeats_largest if size == largest else args.repeats):
                continue
            result = measure(size, args.cores, args.runs_largest if size == largest else 2)
            print(f"{size:,} repeat {repeat + 1}: {result.get('a_s')} s vs {result.get('b_s')} s {result.get('error', '')}", file=sys.stderr)
            results.append(result)

    measured = [r for r in results if "error" not in r]
    errors = [r for r in results if "error" in r]
    mismatches = [r["scenarios"] for r in measured if r["mismatch"]]
    sizes = []
    for size in sorted(args.sizes):
        mine = [r for r in measured if r["scenarios"] == size]
        if not mine:
            continue
        last = mine[-1]["collation"]
        sizes.append({
            "scenarios": size,
            "shards": mine[0]["shards"],
            "repeats": len(mine),
            "a_s": spread([r["a_s"] for r in mine]),
            "b_s": spread([r["b_s"] for r in mine]),
            "ratio_a_b": spread([r["a_s"] / r["b_s"] for r in mine]),
            "stages_s": mine[-1]["stages_s"],
            "collate_share_of_evaluate": round(mine[-1]["stages_s"]["Collate"] / mine[-1]["stages_s"]["Evaluate"], 4),
            "collator_read_share": last["share_of_dataset_read"],
            "collator_bytes_read": last["bytes_read"],
            "collator_peak_rss_mib": round(last["peak_rss_bytes"] / 2**20, 1),
        })
    report: dict[str, Any] = {"benchmark": "scaling", "cores": args.cores, "sizes": sizes}
    if len({r["scenarios"] for r in measured}) >= 2:
        c0, c1 = fit([(r["scenarios"], r["a_s"] - r["b_s"]) for r in measured])
        b0, b1 = fit([(r["scenarios"], r["b_s"]) for r in measured])
        fitted = {"fixed_s": c0, "per_scenario_s": c1, "b_fixed_s": b0, "b_per_scenario_s": b1,
                  "per_scenario_of_kernel": c1 / b1 if b1 > 0 else None}
        report["overhead_fit"] = fitted
        if sizes[-1]["scenarios"] != sizes[0]["scenarios"]:
            report["collator_rss_ratio_largest_to_smallest"] = round(
                sizes[-1]["collator_peak_rss_mib"] / sizes[0]["collator_peak_rss_mib"], 3)
        draw(sizes, fitted, args.png)
        report["png"] = str(args.png)
    report["errors"] = [{"scenarios": r["scenarios"], **r["error"]} for r in errors]
    report["mismatches"] = mismatches
    report["left_out_of_the_clock"] = "start-up of the stack and the pool; the checksums and reading the dataset back"
    print(json.dumps(json.loads(json.dumps(report), parse_float=lambda t: float(f"{float(t):.6g}")), indent=1))  # 6 significant digits
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
