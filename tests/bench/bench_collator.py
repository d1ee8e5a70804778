"""Collation at 1M and 10M scenarios: bytes read, requests, time and peak memory (JSON on stdout).

The shard files are written as workers write them (``scengrid.pnl_dataset``: ordered by P&L,
the worst 5% in the first row group) into an emulator running in its own process. Each
collation runs in a fresh child process, which reads the files through the same code as the
collator job (``services.collator.logic.collate``) and reports its bytes read (ranged GETs,
counted) and its peak RSS (VmHWM: its own address space's), so neither the emulator's storage,
the parent's arrays nor the other size is counted.

Goals (issue K): bytes read at 10M ≤ 1/3 of the shard bytes; peak RSS at 10M ≤ 1.5 × at 1M.
A collation whose VaR 95/99, ES 97.5, mean or worst scenario differ from numpy's on the whole
vector fails the benchmark (exit 1). Left out of the clock: generating and writing the
shards, the tracker's records (given to the child as the workers reported them), the report.

    python tests/bench/bench_collator.py [--sizes 1000000 10000000] [--shard-size 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "bench-collator"
COMPONENTS = ("rates", "credit", "equity", "options", "fx")


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "SCENGRID_ENDPOINT_URL": url, "SCENGRID_BUCKET": BUCKET, "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}


def _planned(run_id: str, scenarios: int, shard_size: int) -> list[dict]:
    return [
        {"run_id": run_id, "shard_id": f"{i:06d}", "start": s, "count": min(shard_size, scenarios - s),
         "model": {"name": "linear"}, "scenarios": {"kind": "generated", "count": scenarios}}
        for i, s in enumerate(range(0, scenarios, shard_size))
    ]


def write_shards(run_id: str, scenarios: int, shard_size: int, records: Path) -> np.ndarray:
    """The shard files and the workers' figures (written to ``records``); returns the whole P&L."""
    from scengrid import layout, pnl_dataset
    from scengrid.risk import PnlStats

    rng = np.random.default_rng(7)
    whole = np.empty(scenarios)
    stats = {}
    for shard in _planned(run_id, scenarios, shard_size):
        parts = {f"pnl_{name}": rng.standard_t(4, size=shard["count"]) * 1e5 for name in COMPONENTS}
        pnl = sum(parts.values())
        whole[shard["start"] : shard["start"] + shard["count"]] = pnl
        columns = {"pnl": pnl, **parts}
        stats[shard["shard_id"]] = PnlStats.of(pnl, parts).model_dump()
        pnl_dataset.put_shard(layout.shard_key(run_id, shard["shard_id"]), pnl_dataset.shard_table(shard["start"], columns))
    records.write_text(json.dumps(stats))
    return whole


def collate_child(run_id: str, scenarios: int, shard_size: int, records: Path) -> dict:
    """In the child: collate as the collator job does, from the workers' figures."""
    from scengrid.status import ShardRecord, Status
    from scengrid.work import ShardWork
    from services.collator.logic import collate

    planned = [ShardWork.model_validate(s) for s in _planned(run_id, scenarios, shard_size)]
    stats = json.loads(records.read_text())
    shard_records = {
        s.shard_id: ShardRecord(run_id=run_id, shard_id=s.shard_id, status=Status.COMPLETE, rows=s.count, pnl_stats=stats[s.shard_id])
        for s in planned
    }
    from scengrid.observability import peak_rss_bytes

    rss_before = peak_rss_bytes()
    started = time.perf_counter()
    collated = collate(run_id, planned, shard_records)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes_read": collated.bytes_read,
        "read_requests": collated.requests,
        "shard_bytes": collated.file_bytes,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_before_bytes": rss_before,
        "summary": collated.summary.model_dump(),
    }


def _check(summary: dict, pnl: np.ndarray) -> list[str]:
    """What differs from numpy on the whole vector (empty: exact)."""
    k = math.ceil(0.025 * pnl.shape[0])
    expected = {
        "var_95": float(-np.quantile(pnl, 0.05)),
        "var_99": float(-np.quantile(pnl, 0.01)),
        "es_975": float(-np.sort(np.partition(pnl, k - 1)[:k]).mean()),
    }
    wrong = [f"{name}: {summary[name]!r} != numpy's {value!r}" for name, value in expected.items() if summary[name] != value]
    if not math.isclose(summary["mean"], float(pnl.mean()), rel_tol=1e-9, abs_tol=1e-6):
        wrong.append(f"mean: {summary['mean']!r} != numpy's {float(pnl.mean())!r}")
    if summary["worst"][0]["scenario_id"] != int(np.argmin(pnl)):
        wrong.append(f"worst scenario {summary['worst'][0]['scenario_id']} != numpy's {int(np.argmin(pnl))}")
    return wrong


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("RUN_ID", "SCENARIOS", "RECORDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(collate_child(args.child[0], int(args.child[1]), args.shard_size, Path(args.child[2]))))
        return

    from scengrid_cli.local.emulator import free_port
    from tests.http_wait import wait_until_answering

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs, failures = [], []
    try:
        wait_until_answering(url, 30)
        os.environ.update(_env(url))
        from scengrid.aws import client

        client("s3").create_bucket(Bucket=BUCKET)
        for size in args.sizes:
            run_id = f"bench-{size}"
            records = Path(f"/tmp/scengrid-bench-collator-{os.getpid()}-{size}.json")
            pnl = write_shards(run_id, size, args.shard_size, records)
            repeats = []
            for _ in range(args.repeats):
                child = subprocess.run([sys.executable, __file__, "--child", run_id, str(size), str(records),
                                        "--shard-size", str(args.shard_size)],
                                       env=_env(url), capture_output=True, text=True, check=False, cwd=ROOT)
                if child.returncode:
                    failures.append(f"collation of {size:,} failed: {child.stderr.strip().splitlines()[-1:]}")
                    continue
                result = json.loads(child.stdout.strip().splitlines()[-1])
                failures += [f"{size:,}: {w}" for w in _check(result.pop("summary"), pnl)]
                repeats.append(result)
            records.unlink(missing_ok=True)
            if not repeats:
                runs.append({"scenarios": size, "error": failures[-1]})
                continue
            first = repeats[0]
            runs.append({
                "scenarios": size,
                "shards": math.ceil(size / args.shard_size),
                "repeats": len(repeats),
                "seconds": _spread([r["seconds"] for r in repeats]),
                "bytes_read": first["bytes_read"],
                "read_requests": first["read_requests"],
                "shard_bytes": first["shard_bytes"],
                "read_share": round(first["bytes_read"] / first["shard_bytes"], 4),
                "peak_rss_mib": _spread([r["peak_rss_bytes"] / 2**20 for r in repeats]),
                "rss_at_start_mib": _spread([r["peak_rss_before_bytes"] / 2**20 for r in repeats]),
            })
            del pnl
    finally:
        emulator.terminate()
        emulator.wait(30)
    measured = [r for r in runs if "error" not in r]
    small, large = (measured[0], measured[-1]) if measured else (None, None)
    report = {
        "benchmark": "collator",
        "shard_size": args.shard_size,
        "runs": runs,
        "read_share_largest": large["read_share"] if large else None,
        "rss_ratio_largest_to_smallest": round(large["peak_rss_mib"]["median"] / small["peak_rss_mib"]["median"], 3) if large else None,
        "goals": {"read_share_largest": "<= 0.333", "rss_ratio_largest_to_smallest": "<= 1.5"},
        "left_out_of_the_clock": "writing the shards; the tracker's records (given as the workers reported them); the report",
        "errors": failures,
    }
    print(json.dumps(report, indent=1))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
