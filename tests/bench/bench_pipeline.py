"""Pipeline benchmark: scengrid's whole local pipeline against the kernel alone and its peers.

On the same cores, the same sample portfolio (the default ``portfolio`` model) and the same
shards, it times:

- (a) scengrid: the local stack as ``scengrid demo`` runs it, from submit to COMPLETE; its
  shard layout is the one the sharder chose (``auto``) unless ``--shard-size`` fixes it, and
  every other system then gets the same shards;
- (b) the kernel alone: a ProcessPoolExecutor over the shards, no I/O;
- (c) Dask's local cluster, (d) Ray local, (e) Lithops' localhost backend.

Each system runs in its own process, ``--repeats`` times, the systems interleaved (a, b, c, d,
e, then again), so that the machine's drift falls on every system alike. A process starts the
system, then runs the work twice:

- **cold** = start-up (stack, cluster, pool) + the first run: what a user waits for from nothing;
- **warm** = the second run, the system already started: what each further run costs.

Figures are the median over the repeats with their min and max, and the ratios a/b and
a/best peer for both, as medians of the ratios measured in the same repeat. Every run's
checksum over its result columns (in scenario order) must equal the process pool's: a
mismatch fails the benchmark (exit 1). A system that errors is reported under ``errors`` with
its last words; the ratios are then over the systems that ran, and ``peers_measured`` says which.

Left out of every clock: computing the checksums, reading scengrid's P&L dataset back for it.

    make bench      # or: .venv/bin/python tests/bench/bench_pipeline.py --scenarios 1000000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PEERS = ("dask", "ray", "lithops")
SYSTEMS = ("scengrid", "process_pool", *PEERS)
LABELS = {"scengrid": "a_scengrid", "process_pool": "b_process_pool", "dask": "c_dask", "ray": "d_ray", "lithops": "e_lithops"}
TIMEOUT_S = 1800  # per system process, start-up included


def run_system(system: str, scenarios: int, cores: int, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.bench.pipeline_systems", system,
               "--scenarios", str(scenarios), "--cores", str(cores), "--runs", "2", *extra]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the system's own helper processes too
            proc.communicate()
            return {"error": [f"no result within {TIMEOUT_S} s"]}
    if proc.returncode != 0:
        return {"error": (stderr or stdout).strip().splitlines()[-3:]}
    return json.loads(stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def ratios(results: list[dict[str, dict[str, Any]]], figure: str) -> dict[str, Any]:
    """a/b and a/best peer in each repeat (both measured in that repeat), then their median and spread."""
    a_b, a_peers = [], []
    for repeat in results:
        a = repeat["scengrid"].get(figure)
        b = repeat["process_pool"].get(figure)
        peers = [repeat[p][figure] for p in PEERS if repeat[p].get(figure) is not None]
        if a is not None and b:
            a_b.append(a / b)
        if a is not None and peers:
            a_peers.append(a / min(peers))
    return {"a_b": spread(a_b), "a_min_peers": spread(a_peers)}


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """A system process's cold (start-up + first run) and warm (second run) seconds."""
    if "error" in result:
        return result
    walls = result["walls_s"]
    return {**result, "cold": result["startup_s"] + walls[0], "warm": walls[1] if len(walls) > 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1_000_000, help="scenarios of the run (default %(default)s)")
    parser.add_argument("--shard-size", type=int, help="a fixed shard size (default: the sharder's auto choice)")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="cores for every system")
    parser.add_argument("--repeats", type=int, default=3, help="processes per system (default %(default)s)")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS),
                        help="systems to run (scengrid and process_pool always run)")
    parser.add_argument("--json", action="store_true", help="one compact JSON line instead of an indented object")
    args = parser.parse_args()
    systems = [s for s in SYSTEMS if s in {"scengrid", "process_pool", *args.systems}]

    repeats: list[dict[str, dict[str, Any]]] = []
    shards: list[list[int]] | None = None
    errors: dict[str, list[str]] = {}
    mismatches: list[str] = []
    for repeat in range(args.repeats):
        results: dict[str, dict[str, Any]] = {}
        for system in systems:
            if system == "scengrid":
                extra = ["--shard-size", str(args.shard_size)] if args.shard_size else []
            elif shards is None:
                results[system] = {"error": ["scengrid's run failed, so its shard layout is unknown"]}
                continue
            else:
                extra = ["--shards", json.dumps(shards)]
            results[system] = figures(run_system(system, args.scenarios, args.cores, extra))
            if system == "scengrid" and "shards" in results[system]:
                shards = results[system]["shards"]
            print(f"repeat {repeat + 1}/{args.repeats} {system}: "
                  f"{ {k: results[system].get(k) for k in ('cold', 'warm', 'error')} }", file=sys.stderr)
        for name in SYSTEMS:
            results.setdefault(name, {"error": ["not run (--systems)"]})
        reference = results["process_pool"].get("checksums", [None])[0]
        for name, result in results.items():
            if "error" in result:
                if result["error"] != ["not run (--systems)"]:
                    errors.setdefault(name, []).append(" | ".join(result["error"]))
                continue
            wrong = [i for i, digest in enumerate(result["checksums"]) if digest != reference]
            if reference is None or wrong:
                mismatches.append(f"repeat {repeat + 1}: {name}'s run(s) {wrong} differ from the process pool's results")
        repeats.append(results)

    def per_system(figure: str) -> dict[str, Any]:
        return {LABELS[name]: spread([r[name][figure] for r in repeats if r[name].get(figure) is not None]) for name in SYSTEMS}

    warm, cold = ratios(repeats, "warm"), ratios(repeats, "cold")
    last = next((r["scengrid"] for r in reversed(repeats) if "error" not in r["scengrid"]), {})
    report = {
        "scenarios": args.scenarios,
        "cores": args.cores,
        "repeats": args.repeats,
        "shards": len(shards or []),
        "shard_size": max((count for _, count in shards or []), default=None),
        "workers": last.get("workers"),
        "warm_s": per_system("warm"),
        "cold_s": per_system("cold"),
        "startup_s": per_system("startup_s"),
        "ratio_a_b": warm["a_b"]["median"] if warm["a_b"] else None,
        "ratio_a_min_peers": warm["a_min_peers"]["median"] if warm["a_min_peers"] else None,
        "warm_ratios": warm,
        "cold_ratios": cold,
        "goals": {"ratio_a_b": "<= 1.10 (warm)", "ratio_a_min_peers": "<= 1.0 (warm)"},
        "peers_measured": [p for p in PEERS if any("error" not in r[p] for r in repeats)],
        "scengrid_stages_s": last.get("stages_s"),
        "scengrid_worker_time": last.get("worker_time"),
        "scengrid_collation": last.get("collation"),
        "checksums_match_b": not mismatches,
        "mismatches": mismatches,
        "errors": errors,
        "left_out_of_the_clock": "the checksums; reading scengrid's P&L dataset back for them",
    }
    report = json.loads(json.dumps(report), parse_float=lambda text: round(float(text), 3))
    print(json.dumps(report, indent=None if args.json else 1))
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
