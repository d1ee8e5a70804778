"""Peak memory of collation at 1M and 10M scenarios (JSON on stdout).

The shard outputs live in an emulator running in its own process; each collation runs in a
fresh child process whose peak RSS is read back, so neither the emulator's storage nor the
other size's run is counted. The goal: peak RSS at 10M ≤ 1.5 × peak RSS at 1M (O(tail) memory).

    python tests/bench/bench_collator.py [--sizes 1000000 10000000] [--shard-size 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BUCKET = "bench-collator"


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "SCENGRID_ENDPOINT_URL": url, "SCENGRID_BUCKET": BUCKET, "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}


def _planned(run_id: str, scenarios: int, shard_size: int) -> list[dict]:
    return [
        {"run_id": run_id, "shard_id": f"{i:06d}", "start": s, "count": min(shard_size, scenarios - s),
         "model": {"name": "linear"}, "scenarios": {"kind": "generated", "count": scenarios}}
        for i, s in enumerate(range(0, scenarios, shard_size))
    ]


def write_shards(run_id: str, scenarios: int, shard_size: int) -> None:
    from scengrid import layout, s3io

    rng = np.random.default_rng(7)
    for shard in _planned(run_id, scenarios, shard_size):
        pnl = rng.normal(scale=1e5, size=shard["count"])
        table = pa.table({
            "scenario_id": np.arange(shard["start"], shard["start"] + shard["count"], dtype=np.int64),
            "pnl": pnl, "pnl_rates": pnl * 0.4, "pnl_equity": pnl * 0.6,
        })
        s3io.put_table(layout.shard_key(run_id, shard["shard_id"]), table)


def collate_child(run_id: str, scenarios: int, shard_size: int) -> dict:
    """In the child: stream the shards, summarise, histogram; report time and peak RSS."""
    from scengrid.work import ShardWork
    from services.collator.logic import stream_outputs
    from services.collator.reporting import attribution, histogram

    planned = [ShardWork.model_validate(s) for s in _planned(run_id, scenarios, shard_size)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        merged = Path(scratch) / "pnl.parquet"
        accumulator = stream_outputs(run_id, planned, merged)
        after_stream = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        summary = accumulator.summary()
        histogram(merged, accumulator.low, accumulator.high)
        attribution(accumulator)
    return {
        "scenarios": scenarios,
        "seconds": round(time.perf_counter() - started, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_after_merge_mib": round(after_stream, 1),
        "arrow_pool": pa.default_memory_pool().backend_name,
        "arrow_max_mib": round(pa.default_memory_pool().max_memory() / 2**20, 1),
        "var_99": summary.var_99,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, metavar=("RUN_ID", "SCENARIOS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(collate_child(args.child[0], int(args.child[1]), args.shard_size)))
        return

    from scengrid_cli.local.emulator import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        os.environ.update(_env(url))
        from scengrid.aws import client

        client("s3").create_bucket(Bucket=BUCKET)
        results = []
        for size in args.sizes:
            run_id = f"bench-{size}"
            write_shards(run_id, size, args.shard_size)
            child = subprocess.run([sys.executable, __file__, "--child", run_id, str(size), "--shard-size", str(args.shard_size)],
                                   env=_env(url), capture_output=True, text=True, check=False)
            if child.returncode:
                raise SystemExit(f"collation of {size} failed:\n{child.stderr[-3000:]}")
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        small, large = results[0], results[-1]
        print(json.dumps({
            "benchmark": "collator_peak_rss",
            "shard_size": args.shard_size,
            "runs": results,
            "rss_ratio_largest_to_smallest": round(large["peak_rss_mib"] / small["peak_rss_mib"], 3),
            "goal": "<= 1.5",
        }, indent=2))
    finally:
        emulator.terminate()


if __name__ == "__main__":
    main()
