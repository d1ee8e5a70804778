"""Start-to-first-shard latency of a worker task: a worker container (``--containers``) against a
forked worker process (the default). JSON on stdout, no asserts.

For each mode, one local stack runs ``--runs`` runs of one shard and one worker; from the
worker's job log it takes the attempt's start (the runner's header line, written just before
it starts the process or ``<engine> run``) to the worker's ``shard started`` line (its first
shard's evaluation starts) and to its ``shard done`` line, and reports the median and the range.
Each mode runs in its own interpreter (a process holds one local stack).

    .venv/bin/python tests/bench/bench_worker_start.py [--runs 5] [--modes process container]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r"^--- attempt 1 started (\S+)$", re.M)


def _stamp(line: str) -> float:
    """A Powertools log line's timestamp ("2026-11-30 01:42:38,277+0000"), as epoch seconds."""
    value = json.loads(line)["timestamp"]
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S,%f%z").timestamp()


def latencies(log: str) -> dict[str, float]:
    start = datetime.fromisoformat(HEADER.search(log).group(1)).timestamp()  # type: ignore[union-attr]
    lines = [line for line in log.splitlines() if line.startswith("{")]
    first = {message: next(_stamp(line) for line in lines if f'"message":"{message}"' in line) for message in ("shard started", "shard done")}
    return {"to_first_shard_start_s": round(first["shard started"] - start, 3), "to_first_shard_done_s": round(first["shard done"] - start, 3)}


def measure(mode: str, runs: int) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from scengrid.spec import DEFAULT_MODEL, DEFAULT_MODEL_PARAMS, GeneratedScenarios, ModelRef, RunSpec
    from scengrid_cli.local.demo import run_on_stack
    from scengrid_cli.local.stack import LocalStack

    spec = RunSpec(
        model=ModelRef(name=DEFAULT_MODEL, params=DEFAULT_MODEL_PARAMS),
        scenarios=GeneratedScenarios(count=5_000, seed=1),
        shard_size=5_000,
        workers=1,
    )
    samples = []
    with LocalStack(containers=mode == "container") as stack:
        for _ in range(runs):
            outcome = run_on_stack(stack, spec, None, timeout_s=600)
            assert outcome.record.status.value == "COMPLETE", outcome.record.reason
            (log,) = (stack.work_dir / "jobs").glob(f"scengrid-work-{outcome.run_id}-*.log")
            samples.append(latencies(log.read_text()))
            time.sleep(1)
    summary: dict[str, object] = {"mode": mode, "runs": runs}
    for key in ("to_first_shard_start_s", "to_first_shard_done_s"):
        values = [s[key] for s in samples]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=["process", "container"], choices=["process", "container"])
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # one mode, in this interpreter
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.runs)))
        return
    results = []
    for mode in args.modes:
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--runs", str(args.runs)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            results.append({"mode": mode, "error": out.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    with open("/proc/loadavg") as load:
        machine = {"cpus": len(__import__("os").sched_getaffinity(0)), "loadavg": load.read().split()[:3]}
    print(json.dumps({"worker_start": results, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
