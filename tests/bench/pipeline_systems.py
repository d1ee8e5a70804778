"""The five systems of the pipeline benchmark, each run in its own process by bench_pipeline.py.

Every system evaluates the same shards (scenario ranges) of the same run: the default
``portfolio`` model on generated scenarios, through ``scengrid.kernel.evaluate_range``. Each
returns the per-shard result columns to where its results live (the driver for the peers, S3
for scengrid); the checksum of those columns, in scenario order, is compared against the
plain process pool's afterwards, outside the timed part.

A system's long-lived parts (the local stack; a Dask or Ray cluster, warmed up with the
imports and the model on each worker) start before the clock and are reported as
``startup_s``. Per-run costs (worker start-up, model preparation, moving results) count.

    python -m tests.bench.pipeline_systems SYSTEM --scenarios N --cores C [--shards JSON] [--shard-size S]
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


def timed(run: Callable[[], Sequence[Columns]]) -> tuple[float, Columns]:
    started = time.perf_counter()
    parts = run()
    return time.perf_counter() - started, merge(parts)


# ------------------------------------------------------------------ (a) scengrid
def run_scengrid(scenarios: int, cores: int, shard_size: int | None) -> dict[str, Any]:
    """The local stack as ``scengrid demo`` runs it; the clock runs from submit to COMPLETE
    (the runs item final and the execution SUCCEEDED)."""
    from scengrid import layout, s3io
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
    with LocalStack(job_slots=cores) as stack:
        assert stack.settings is not None
        started = time.perf_counter()
        run_id = stack.api_client().submit(spec.model_dump(mode="json"))["run_id"]  # POST /runs, as scengrid demo
        arn = execution_arn(stack.settings.state_machine_arn, run_id, 1)
        record, execution = watch_run(run_id, arn, 3600, lambda record: None)
        wall = time.perf_counter() - started
        if record.status is not Status.COMPLETE:
            raise RuntimeError(f"run {run_id} ended {record.status}: {record.reason or execution}")
        manifest = s3io.get_json(layout.manifest_key(run_id))
        table = s3io.get_table(layout.pnl_key(run_id))
        columns = {name: table.column(name).to_numpy() for name in table.column_names if name != "scenario_id"}
        return {
            "wall_s": wall,
            "startup_s": stack.startup_s,
            "shards": [[s["start"], s["count"]] for s in manifest["shards"]],
            "workers": manifest["sizing"]["workers"],
            "stages_s": stage_seconds(arn),
            "worker_time": shard_seconds(run_id),
            "checksum": checksum(columns),
        }


# ------------------------------------------------------------------ (b) the kernel alone
def run_process_pool(scenarios: int, cores: int, shards: list[Shard]) -> dict[str, Any]:
    """A ProcessPoolExecutor over the shards, no I/O: the pool starts inside the clock, as a
    script using one would."""

    def run() -> list[Columns]:
        with ProcessPoolExecutor(cores) as pool:
            futures = [pool.submit(evaluate_shard, scenarios, start, count) for start, count in shards]
            return [f.result() for f in futures]

    wall, columns = timed(run)
    return {"wall_s": wall, "startup_s": 0.0, "checksum": checksum(columns)}


# ------------------------------------------------------------------ (c) Dask
def run_dask(scenarios: int, cores: int, shards: list[Shard]) -> dict[str, Any]:
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(warm_up)
        startup = time.perf_counter() - started

        def run() -> list[Columns]:
            futures = [client.submit(evaluate_shard, scenarios, start, count, pure=False) for start, count in shards]
            return client.gather(futures)

        wall, columns = timed(run)
    return {"wall_s": wall, "startup_s": startup, "checksum": checksum(columns)}


# ------------------------------------------------------------------ (d) Ray
def run_ray(scenarios: int, cores: int, shards: list[Shard]) -> dict[str, Any]:
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

        wall, columns = timed(run)
    finally:
        ray.shutdown()
    return {"wall_s": wall, "startup_s": startup, "checksum": checksum(columns)}


# ------------------------------------------------------------------ (e) Lithops
def run_lithops(scenarios: int, cores: int, shards: list[Shard]) -> dict[str, Any]:
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
        wall, columns = timed(run)
    finally:
        executor.clean()
    return {"wall_s": wall, "startup_s": startup, "checksum": checksum(columns)}


PEERS: dict[str, Callable[[int, int, list[Shard]], dict[str, Any]]] = {
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
    args = parser.parse_args()
    if args.system == "scengrid":
        result = run_scengrid(args.scenarios, args.cores, args.shard_size)
    else:
        shards = [(int(start), int(count)) for start, count in json.loads(args.shards)]
        result = PEERS[args.system](args.scenarios, args.cores, shards)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    # Run from the module's importable name, so that Dask, Ray and Lithops send the shard
    # function by reference (and each worker process keeps its prepared model).
    from tests.bench.pipeline_systems import main as imported_main

    imported_main()
