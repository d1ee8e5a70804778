"""Many runs at once on one local stack, through its API: each run's latency beside 19 others
against the same run alone, and the status API's latency while a client polls it. JSON on stdout.

Each repeat has two phases on the same stack:
- alone: the 20 runs one after another (each the only run on the stack);
- together: the 20 runs submitted at once (one thread each), while a client polls
  ``GET /runs/{id}`` round the runs at ``--poll-rps`` requests per second.

A run's latency is from just before its POST /runs to its all-done (the run's ``finished_at``).
Every run must end COMPLETE in both phases, with the same P&L bits (SHA-256 of the P&L column),
every scenario once (the shards' rows add up to the run's count) and no shard counted twice;
otherwise the benchmark reports what went wrong and exits 1. A request of the poller that fails
is counted and reported, not dropped.

Left out of the clock: starting the stack (once), and reading the results back to check them.
On the clock: everything else, the poller's own CPU included (it shares the machine's cores
with the runs, as a dashboard would).

    .venv/bin/python tests/bench/bench_concurrency.py [--repeats 3] [--poll-rps 50] [--scale 1]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scengrid import layout, pnl_dataset, s3io  # noqa: E402
from scengrid.spec import GeneratedScenarios, ModelRef, RunSpec  # noqa: E402
from scengrid.status import Status, read_run, read_shards  # noqa: E402
from scengrid_cli.local.stack import LocalStack  # noqa: E402

# 20 runs of mixed sizes, two models: (model, scenarios)
MIX = [
    *[("portfolio", 10_000)] * 4, *[("linear", 10_000)] * 2,
    *[("portfolio", 30_000)] * 2, *[("linear", 30_000)] * 2,
    *[("portfolio", 100_000)] * 2, *[("linear", 100_000)] * 2,
    ("portfolio", 300_000), ("linear", 300_000), ("portfolio", 300_000),
    ("portfolio", 1_000_000),
    ("portfolio", 2_000_000), ("linear", 2_000_000),
]
ENDED = (Status.COMPLETE, Status.FAILED, Status.CANCELLED)


def specs(scale: float) -> list[RunSpec]:
    return [
        RunSpec(scenarios=GeneratedScenarios(count=max(1_000, int(count * scale)), seed=1_000 + i),
                **({"model": ModelRef(name=model, params={})} if model != "portfolio" else {}))
        for i, (model, count) in enumerate(MIX)
    ]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def wait_all(run_ids: list[str], timeout_s: float) -> dict[str, Any]:
    """The runs' records once each has ended. A latency is read from the record's finished_at,
    not from when this loop saw it, so it looks twice a second: a tighter loop would only add
    its own reads to the stack it measures."""
    deadline = time.monotonic() + timeout_s
    pending, ended = set(run_ids), {}
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            record = read_run(run_id)
            if record is not None and record.status in ENDED:
                ended[run_id] = record
                pending.discard(run_id)
        time.sleep(0.5)
    return {**ended, **{run_id: read_run(run_id) for run_id in pending}}


def check(run_id: str, spec: RunSpec, record: Any) -> tuple[dict[str, Any], list[str]]:
    """The run's figures and what is wrong with it (nothing, for a good run)."""
    problems: list[str] = []
    if record is None or record.status is not Status.COMPLETE:
        return {}, [f"{run_id}: ended {getattr(record, 'status', 'never')}: {getattr(record, 'reason', '')}"]
    shards = read_shards(run_id)
    rows = sum(s.rows or 0 for s in shards)
    if rows != spec.scenarios.count or record.shards_done != record.shards_total or len(shards) != record.shards_total:
        problems.append(f"{run_id}: {rows} rows in {len(shards)} shards for {spec.scenarios.count} scenarios, "
                        f"{record.shards_done}/{record.shards_total} done")
    pnl = pnl_dataset.read_run(run_id, ["pnl"]).column("pnl").to_numpy()
    if len(pnl) != spec.scenarios.count:
        problems.append(f"{run_id}: {len(pnl)} P&L rows for {spec.scenarios.count} scenarios")
    return {"digest": hashlib.sha256(pnl.tobytes()).hexdigest(), "duplicates_refused": record.duplicates}, problems


class Poller:
    """GET /runs/{id} round the runs at ``rps`` requests per second: each of ``THREADS`` threads
    keeps its own schedule, so that a slow answer delays only its own thread's next request
    (the rate offered holds while answers take up to THREADS / rps seconds)."""

    THREADS = 16

    def __init__(self, stack: LocalStack, run_ids: list[str], rps: float) -> None:
        self.stack, self.run_ids, self.rps = stack, run_ids, rps
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(n,), daemon=True) for n in range(self.THREADS)]

    def _poll(self, n: int) -> None:
        api = self.stack.api_client()
        period, next_at, i = self.THREADS / self.rps, time.monotonic() + n / self.rps, n
        while not self._stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += period
            started = time.perf_counter()
            try:
                response = api.request("GET", f"/runs/{self.run_ids[i % len(self.run_ids)]}")
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code}: {response.text[:200]}")
            except Exception as exc:  # noqa: BLE001 - reported with the figures
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.latencies.append(time.perf_counter() - started)
            i += self.THREADS

    def __enter__(self) -> Poller:
        self.started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.elapsed = time.perf_counter() - self.started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def repeat(stack: LocalStack, runs: list[RunSpec], poll_rps: float, timeout_s: float) -> dict[str, Any]:
    api = stack.api_client()
    problems: list[str] = []
    alone: list[dict[str, Any]] = []
    for spec in runs:
        submitted = time.time()
        run_id = api.submit(spec.model_dump(mode="json"))["run_id"]
        record = wait_all([run_id], timeout_s)[run_id]
        figures, wrong = check(run_id, spec, record)
        problems += wrong
        alone.append({"run_id": run_id, "latency_s": _epoch(record.finished_at) - submitted if not wrong else None, **figures})

    submitted_at: dict[int, float] = {}

    def submit(i: int) -> str:
        submitted_at[i] = time.time()
        return api.submit(runs[i].model_dump(mode="json"))["run_id"]

    with ThreadPoolExecutor(len(runs)) as pool:
        together_ids = list(pool.map(submit, range(len(runs))))
    with Poller(stack, together_ids, poll_rps) as poller:
        ended = wait_all(together_ids, timeout_s)
    together = []
    for i, run_id in enumerate(together_ids):
        figures, wrong = check(run_id, runs[i], ended[run_id])
        problems += wrong
        if figures and alone[i].get("digest") and figures["digest"] != alone[i]["digest"]:
            problems.append(f"{run_id}: P&L differs from the same run alone ({alone[i]['run_id']})")
        latency = _epoch(ended[run_id].finished_at) - submitted_at[i] if not wrong else None
        together.append({"run_id": run_id, "latency_s": latency, **figures})
    return {
        "alone": alone,
        "together": together,
        "status_api": {
            "requests": len(poller.latencies),
            "achieved_rps": round(len(poller.latencies) / poller.elapsed, 1),
            "p50_ms": round(1000 * percentile(poller.latencies, 0.50), 1),
            "p99_ms": round(1000 * percentile(poller.latencies, 0.99), 1),
            "errors": len(poller.errors),
            "first_errors": poller.errors[:3],
        },
        "problems": problems,
    }


def spread(values: list[float]) -> dict[str, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-rps", type=float, default=50.0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every run's scenarios (a quick look: 0.1)")
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--work-dir", type=Path, help="keep the stack's job logs here (default: a temporary folder)")
    args = parser.parse_args()
    runs = specs(args.scale)
    started = time.perf_counter()
    # stdout is the report's: what the in-process services print (their metrics) goes to stderr
    with contextlib.redirect_stdout(sys.stderr), LocalStack(work_dir=args.work_dir) as stack:
        stack_start_s = time.perf_counter() - started
        repeats = []
        for number in range(1, args.repeats + 1):
            print(f"repeat {number}/{args.repeats}: 20 runs alone, then together", file=sys.stderr, flush=True)
            repeats.append(repeat(stack, runs, args.poll_rps, args.timeout_s))
    per_run = []
    for i, spec in enumerate(runs):
        alone = [r["alone"][i]["latency_s"] for r in repeats]
        together = [r["together"][i]["latency_s"] for r in repeats]
        ratios = [t / a for t, a in zip(together, alone) if t is not None and a]
        per_run.append({"model": spec.model.name, "scenarios": spec.scenarios.count,
                        "alone_s": spread(alone), "together_s": spread(together), "ratio": spread(ratios)})
    smallest = min(spec.scenarios.count for spec in runs)
    small_ratios = [r["ratio"]["median"] for r in per_run if r["scenarios"] == smallest and r["ratio"]["median"] is not None]
    problems = [p for r in repeats for p in r["problems"]]
    report = {
        "benchmark": "concurrency",
        "runs": len(runs),
        "scenarios_total": sum(s.scenarios.count for s in runs),
        "repeats": args.repeats,
        "poll_rps": args.poll_rps,
        "small_run_scenarios": smallest,
        "small_run_ratio_median": round(statistics.median(small_ratios), 3) if small_ratios else None,
        "small_run_ratio_max": round(max(small_ratios), 3) if small_ratios else None,
        "small_run_ratio_goal": 3.0,
        "all_runs_ratio": spread([r["ratio"]["median"] for r in per_run]),
        "status_api_p50_ms": spread([r["status_api"]["p50_ms"] for r in repeats]),
        "status_api_p99_ms": spread([r["status_api"]["p99_ms"] for r in repeats]),
        "status_api_achieved_rps": spread([r["status_api"]["achieved_rps"] for r in repeats]),
        "status_api_errors": sum(r["status_api"]["errors"] for r in repeats),
        "status_api_first_errors": [e for r in repeats for e in r["status_api"]["first_errors"]][:3],
        "per_run": per_run,
        "problems": problems,
        "ok": not problems,
        "left_out_of_clock": {"stack_start_s": round(stack_start_s, 2), "checking_results": "reading shards and P&L back"},
    }
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
