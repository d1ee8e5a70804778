"""The five systems of the pipeline benchmark, each run in its own process by bench_pipeline.py.

Every system evaluates the same shards (scenario ranges) of the same run: the default
``portfolio`` model on generated scenarios, through ``scengrid.kernel.evaluate_range``. Each
returns the per-shard result columns to where its results live (the driver for the peers, S3
for scengrid); the checksum of those columns, in scenario order, is compared against the
plain process pool's afterwards, outside the timed part.

A system's long-lived parts (the local stack; a Dask or Ray cluster, warmed up with the
imports and the model on each worker; a warm process pool) start before the clock and are
reported as ``startup_s``. Per-run costs (worker start-up, model preparation, moving results)
count. The process runs the same work ``--runs`` times: the first run is the cold one (the
cold figure adds the start-up), the others are warm.

    python -m tests.bench.pipeline_systems SYSTEM --scenarios N --cores C --runs R [--shards JSON] [--shard-size S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from scengrid.kernel import evaluate_range
from scengrid.models import ScenarioModel, load_model
from scengrid.spec import DEFAULT_MODEL, DEFAULT_MODEL_PARAMS, GeneratedScenarios, ModelRef, RunSpec

SEED = 42
Shard = tuple[int, int]  # (start, count)
Columns = dict[str, np.ndarray]

_models: dict[int, ScenarioModel] = {}  # per process, as the worker prepares its model once


def source(scenarios: int) -> GeneratedScenarios:
    return GeneratedScenarios(count=scenarios, seed=SEED)


def evaluate_shard(scenarios: int, start: int, count: int) -> Columns:
    """One shard's result columns: what every system computes, on whichever process runs it."""
    model = _models.get(0)
    if model is None:
        model = _models[0] = load_model(DEFAULT_MODEL, DEFAULT_MODEL_PARAMS)
    return evaluate_range(model, source(scenarios), start, count)


def warm_up() -> int:
    """Imports and the model, on a peer's long-lived worker (not timed)."""
    evaluate_shard(1_024, 0, 1_024)
    return os.getpid()


def checksum(columns: Columns) -> str:
    """sha256 over the result columns (sorted by name), each over every scenario in order."""
    digest = hashlib.sha256()
    for name in sorted(columns):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(columns[name], dtype=np.float64).tobytes())
    return digest.hexdigest()


def merge(parts: Sequence[Columns]) -> Columns:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def timed(run: Callable[[], Sequence[Columns]]) -> tuple[float, str]:
    """One run's wall time and its results' checksum (computed off the clock)."""
    started = time.perf_counter()
    parts = run()
    return time.perf_counter() - started, checksum(merge(parts))


def runs_of(run: Callable[[], tuple[float, str]], runs: int, startup: float) -> dict[str, Any]:
    """``runs`` runs one after the other: the first is the cold one (with ``startup`` it is the
    cold figure), the others are warm."""
    walls, sums = [], []
    for _ in range(runs):
        wall, digest = run()
        walls.append(wall)
        sums.append(digest)
    return {"startup_s": startup, "walls_s": walls, "checksums": sums}


# ------------------------------------------------------------------ (a) scengrid
def run_scengrid(scenarios: int, cores: int, shard_size: int | None, runs: int) -> dict[str, Any]:
    """The local stack as ``scengrid demo`` runs it; the clock runs from submit to COMPLETE
    (the runs item final and the execution SUCCEEDED). Reading the P&L dataset back for the
    checksum is off the clock."""
    from scengrid import layout, pnl_dataset, s3io
    from scengrid_cli.local.demo import watch_run
    from scengrid_cli.local.pollers import execution_arn
    from scengrid_cli.local.results import shard_seconds, stage_seconds
    from scengrid_cli.local.stack import LocalStack
    from scengrid.status import Status

    spec = RunSpec(
        model=ModelRef(name=DEFAULT_MODEL, params=DEFAULT_MODEL_PARAMS),
        scenarios=source(scenarios),
        shard_size=shard_size or "auto",
    )
    details: list[dict[str, Any]] = []
    started = time.perf_counter()
    with LocalStack(job_slots=cores) as stack:
        assert stack.settings is not None
        startup = time.perf_counter() - started

        def run() -> tuple[float, str]:
            started = time.perf_counter()
            run_id = stack.api_client().submit(spec.model_dump(mode="json"))["run_id"]  # POST /runs, as scengrid demo
            arn = execution_arn(stack.settings.state_machine_arn, run_id, 1)
            record, execution = watch_run(run_id, arn, 3600, lambda record: None)
            wall = time.perf_counter() - started
            if record.status is not Status.COMPLETE:
                raise RuntimeError(f"run {run_id} ended {record.status}: {record.reason or execution}")
            table = pnl_dataset.read_run(run_id)
            columns = {name: table.column(name).to_numpy() for name in table.column_names if name != "scenario_id"}
            manifest = s3io.get_json(layout.manifest_key(run_id))
            collation = s3io.get_json(layout.summary_key(run_id))["collation"]
            details.append({"manifest": manifest, "stages_s": stage_seconds(arn), "worker_time": shard_seconds(run_id),
                            "collation": collation})
            return wall, checksum(columns)

        result = runs_of(run, runs, startup)
    manifest = details[-1]["manifest"]
    return {
        **result,
        "shards": [[s["start"], s["count"]] for s in manifest["shards"]],
        "workers": manifest["sizing"]["workers"],
        "stages_s": [d["stages_s"] for d in details],
        "worker_time": [d["worker_time"] for d in details],
        "collation": [d["collation"] for d in details],
    }


# ------------------------------------------------------------------ (b) the kernel alone
def run_process_pool(scenarios: int, cores: int, shards: list[Shard], runs: int) -> dict[str, Any]:
    """A ProcessPoolExecutor over the shards, no I/O. Cold: the pool starts inside the clock,
    as a script using one would. Warm: a pool already started, its processes warmed up."""

    def cold() -> tuple[float, str]:
        def run() -> list[Columns]:
            with ProcessPoolExecutor(cores) as pool:
                return [f.result() for f in [pool.submit(evaluate_shard, scenarios, a, n) for a, n in shards]]

        return timed(run)

    first = runs_of(cold, 1, 0.0)
    with ProcessPoolExecutor(cores) as pool:
        for process in [pool.submit(warm_up) for _ in range(2 * cores)]:
            process.result()

        def warm() -> tuple[float, str]:
            return timed(lambda: [f.result() for f in [pool.submit(evaluate_shard, scenarios, a, n) for a, n in shards]])

        rest = runs_of(warm, runs - 1, 0.0)
    return {"startup_s": 0.0, "walls_s": first["walls_s"] + rest["walls_s"], "checksums": first["checksums"] + rest["checksums"]}


# ------------------------------------------------------------------ (c) Dask
def run_dask(scenarios: int, cores: int, shards: list[Shard], runs: int) -> dict[str, Any]:
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(warm_up)
        startup = time.perf_counter() - started

        def run() -> list[Columns]:
            futures = [client.submit(evaluate_shard, scenarios, start, count, pure=False) for start, count in shards]
            return client.gather(futures)

        return runs_of(lambda: timed(run), runs, startup)


# ------------------------------------------------------------------ (d) Ray
def run_ray(scenarios: int, cores: int, shards: list[Shard], runs: int) -> dict[str, Any]:
    # Under `uv run` (make bench), Ray would start its workers through `uv run` with a copy of
    # the working directory; they run this interpreter, as every other system's do.
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        task = ray.remote(num_cpus=1)(evaluate_shard)
        warm = ray.remote(num_cpus=1)(warm_up)
        ray.get([warm.remote() for _ in range(2 * cores)])
        startup = time.perf_counter() - started

        def run() -> list[Columns]:
            return ray.get([task.remote(scenarios, start, count) for start, count in shards])

        return runs_of(lambda: timed(run), runs, startup)
    finally:
        ray.shutdown()


# ------------------------------------------------------------------ (e) Lithops
def run_lithops(scenarios: int, cores: int, shards: list[Shard], runs: int) -> dict[str, Any]:
    """Lithops' localhost backend: each call runs in a fresh process (its design), with its
    localhost storage for inputs and results."""
    import lithops

    started = time.perf_counter()
    executor = lithops.LocalhostExecutor(log_level=None, worker_processes=cores, runtime=sys.executable)
    startup = time.perf_counter() - started

    def run() -> list[Columns]:
        futures = executor.map(evaluate_shard, [(scenarios, start, count) for start, count in shards])
        return executor.get_result(futures)

    try:
        return runs_of(lambda: timed(run), runs, startup)
    finally:
        executor.clean()


PEERS: dict[str, Callable[[int, int, list[Shard], int], dict[str, Any]]] = {
    "process_pool": run_process_pool,
    "dask": run_dask,
    "ray": run_ray,
    "lithops": run_lithops,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="run one system of the pipeline benchmark; prints one JSON line")
    parser.add_argument("system", choices=["scengrid", *PEERS])
    parser.add_argument("--scenarios", type=int, required=True)
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--shards", help="JSON list of [start, count] (the peers)")
    parser.add_argument("--shard-size", type=int, help="scengrid: a fixed shard size instead of auto")
    parser.add_argument("--runs", type=int, default=2, help="runs in this process: the first cold, the others warm")
    args = parser.parse_args()
    if args.system == "scengrid":
        result = run_scengrid(args.scenarios, args.cores, args.shard_size, args.runs)
    else:
        shards = [(int(start), int(count)) for start, count in json.loads(args.shards)]
        result = PEERS[args.system](args.scenarios, args.cores, shards, args.runs)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    # Run from the module's importable name, so that Dask, Ray and Lithops send the shard
    # function by reference (and each worker process keeps its prepared model).
    from tests.bench.pipeline_systems import main as imported_main

    imported_main()
