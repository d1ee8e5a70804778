"""Pipeline benchmark: scengrid's whole local pipeline against the kernel alone and its peers.

On the same cores, the same sample portfolio (the default ``portfolio`` model) and the same
shards, it times:

- (a) scengrid: the local stack as ``scengrid demo`` runs it, from submit to COMPLETE (stack
  start-up reported apart); its shard layout is the one the sharder chose (``auto``) unless
  ``--shard-size`` fixes it, and every other system then gets the same shards;
- (b) the kernel alone: a ProcessPoolExecutor over the shards, no I/O;
- (c) Dask's local cluster, (d) Ray local, (e) Lithops' localhost backend.

Each system runs in its own process, one after the other, and computes the same per-shard
result columns; their checksums are compared with (b)'s. Prints one JSON object with each
wall time and the ratios a/b and a/min(c, d, e). Figures, not asserts.

    make bench      # or: .venv/bin/python tests/bench/bench_pipeline.py --scenarios 1000000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PEERS = ("dask", "ray", "lithops")
TIMEOUT_S = 900  # per system, start-up included


def run_system(system: str, scenarios: int, cores: int, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.bench.pipeline_systems", system,
               "--scenarios", str(scenarios), "--cores", str(cores), *extra]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the system's own helper processes too
            proc.communicate()
            return {"error": [f"no result within {TIMEOUT_S} s"]}
    if proc.returncode != 0:
        return {"error": (stderr or stdout).strip().splitlines()[-1:]}
    return json.loads(stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1_000_000, help="scenarios of the run (default %(default)s)")
    parser.add_argument("--shard-size", type=int, help="a fixed shard size (default: the sharder's auto choice)")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="cores for every system")
    parser.add_argument("--json", action="store_true", help="one compact JSON line instead of an indented object")
    args = parser.parse_args()

    scengrid = run_system("scengrid", args.scenarios, args.cores,
                          ["--shard-size", str(args.shard_size)] if args.shard_size else [])
    if "error" in scengrid:
        raise SystemExit(f"scengrid's run failed: {scengrid['error']}")
    shards = ["--shards", json.dumps(scengrid["shards"])]
    results = {"scengrid": scengrid}
    for system in ("process_pool", *PEERS):
        results[system] = run_system(system, args.scenarios, args.cores, shards)

    reference = results["process_pool"].get("checksum")
    walls = {name: r.get("wall_s") for name, r in results.items()}
    peers = [walls[p] for p in PEERS if walls[p] is not None]
    report = {
        "scenarios": args.scenarios,
        "cores": args.cores,
        "shards": len(scengrid["shards"]),
        "shard_size": max(count for _, count in scengrid["shards"]),
        "workers": scengrid["workers"],
        "wall_s": {
            "a_scengrid": walls["scengrid"],
            "b_process_pool": walls["process_pool"],
            "c_dask": walls["dask"],
            "d_ray": walls["ray"],
            "e_lithops": walls["lithops"],
        },
        "ratio_a_b": walls["scengrid"] / walls["process_pool"] if walls["process_pool"] else None,
        "ratio_a_min_peers": walls["scengrid"] / min(peers) if peers else None,
        "startup_s": {name: r.get("startup_s") for name, r in results.items()},
        "scengrid_stages_s": scengrid["stages_s"],
        "scengrid_worker_time": scengrid["worker_time"],
        "checksums_match_b": {
            name: r["checksum"] == reference if "checksum" in r else None for name, r in results.items() if name != "process_pool"
        },
        "errors": {name: r["error"] for name, r in results.items() if "error" in r},
    }
    report = json.loads(json.dumps(report), parse_float=lambda text: round(float(text), 3))
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
