"""What only real worker tasks show, each with the worker as a local process and as a container
of its image (``--containers``): the model pool, the SIGTERM grace of a Spot reclaim, the
visibility heartbeat, and a shard that kills its worker.

The tests use the session's local stack and swap how its Batch runner starts jobs: new
interpreters (which find the test models of tests/plugins on their PYTHONPATH; the stack's warm
template was forked before they were on it) or containers of the stack's images, with the
test models mounted. The container cases skip, saying why, without an engine or the images
(and fail instead with SCENGRID_REQUIRE_IMAGES=1, as CI sets it after `make images`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scengrid import layout, pnl_dataset
from scengrid.aws import client
from scengrid.models import registry
from scengrid.settings import get_settings
from scengrid.spec import DEFAULT_MODEL, DEFAULT_MODEL_PARAMS, GeneratedScenarios, ModelRef, RunSpec
from scengrid.status import Status, read_run, read_shards
from scengrid_cli.local.batch_runner import JobOutcome, Process, ProcessLauncher, reclaim, retry_decision
from scengrid_cli.local.container_jobs import ContainerEngineMissing, ContainerLauncher, container_engine, image_exists
from scengrid_cli.local.demo import RunOutcome, retry_on_stack, run_on_stack
from scengrid_cli.local.moto_gaps import LocalJob
from scengrid_cli.local.stack import LocalStack, job_environment
from tests.containers.engine import unavailable
from tests.plugins import plugin_path

pytestmark = pytest.mark.e2e
IMAGES = [f"scengrid-{service}:local" for service in ("sharder", "worker", "collator")]
MODES = ["process", "container"]
RECLAIM_GRACE_S = 60.0  # far longer than the shard in flight: it must finish, not be killed


def container_skip_reason() -> str | None:
    try:
        engine = container_engine()
    except ContainerEngineMissing as exc:
        return str(exc)
    missing = [image for image in IMAGES if not image_exists(engine, image)]
    return f"{', '.join(missing)} missing: build them with `make images`" if missing else None


@pytest.fixture(scope="module")
def test_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The test-only models, importable here (the API validates a run's model) and in jobs."""
    path = plugin_path(tmp_path_factory.mktemp("test-models"))
    sys.path.insert(0, str(path))
    registry._registered.cache_clear()
    yield path
    sys.path.remove(str(path))
    registry._registered.cache_clear()


@dataclass
class Tasks:
    stack: LocalStack
    mode: str

    @property
    def env(self) -> dict[str, str]:
        """What every job gets; a test may add to it."""
        assert self.stack.runner is not None
        return self.stack.runner.host_env

    def run(self, spec: RunSpec, tmp_path: Path, timeout_s: float = 600) -> RunOutcome:
        return run_on_stack(self.stack, spec, tmp_path / f"run-{time.monotonic_ns()}", timeout_s)

    def worker_logs(self, run_id: str) -> str:
        return "".join(p.read_text() for p in sorted((self.stack.work_dir / "jobs").glob(f"scengrid-work-{run_id}-*.log")))

    def worker_outcomes(self, run_id: str) -> list[JobOutcome]:
        assert self.stack.runner is not None
        return [o for o in self.stack.runner.outcomes if o.name.startswith(f"scengrid-work-{run_id}-")]


@pytest.fixture(params=MODES)
def tasks(request: pytest.FixtureRequest, local_stack: LocalStack, test_models: Path) -> Iterator[Tasks]:
    runner = local_stack.runner
    assert runner is not None and local_stack.settings is not None
    saved = (runner.launcher, dict(runner.host_env), runner.interrupter)
    if request.param == "container":
        reason = container_skip_reason()
        if reason:
            unavailable(f"container mode: {reason}")
        runner.launcher = ContainerLauncher.for_stack([f"{test_models}:{test_models}:ro"])
        runner.host_env = job_environment(local_stack.settings, containers=True)
    else:
        runner.launcher = ProcessLauncher()  # new interpreters, which read the test models' entry points
    runner.host_env["PYTHONPATH"] = str(test_models)
    try:
        yield Tasks(local_stack, request.param)
    finally:
        runner.launcher.close()
        runner.launcher, runner.host_env, runner.interrupter = saved


def pnl_bits(outcome: RunOutcome, scenarios: int) -> np.ndarray:
    assert outcome.record.status is Status.COMPLETE, outcome.record.reason
    assert outcome.results_dir is not None
    table = pnl_dataset.read_local(outcome.results_dir / "pnl")
    assert np.array_equal(table.column("scenario_id").to_numpy(), np.arange(scenarios))
    return table.column("pnl").to_numpy().view(np.uint64)


def object_versions(key: str) -> int:
    listed = client("s3").list_object_versions(Bucket=get_settings().bucket, Prefix=key).get("Versions", [])
    return sum(1 for v in listed if v["Key"] == key)


# ---------------------------------------------------------------- the model pool
def test_a_pool_of_model_processes_gives_the_bits_of_one(tasks: Tasks, tmp_path: Path) -> None:
    """1 model process vs N per worker task: in a container N is its vCPUs (--cpus 2, read
    from the cgroup quota: the machine may have more CPUs)."""
    spec = RunSpec(
        model=ModelRef(name=DEFAULT_MODEL, params=DEFAULT_MODEL_PARAMS),
        scenarios=GeneratedScenarios(count=20_000, seed=5),
        shard_size=5_000,
        workers=2,
    )
    tasks.env["SCENGRID_WORKER_PROCESSES"] = "1"
    one = tasks.run(spec, tmp_path)
    assert '"model_processes":1' in tasks.worker_logs(one.run_id)
    if tasks.mode == "container":
        del tasks.env["SCENGRID_WORKER_PROCESSES"]  # one per vCPU of the task
    else:
        tasks.env["SCENGRID_WORKER_PROCESSES"] = "2"
    many = tasks.run(spec, tmp_path)
    logs = tasks.worker_logs(many.run_id)
    assert '"model_processes":2' in logs
    assert re.search(r'"task_id":"[0-9a-f-]+:[01]"', logs)  # AWS_BATCH_JOB_ID of an array child
    if tasks.mode == "container":  # what AWS Batch sets, passed by name
        for name in ("AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT", "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JQ_NAME", "AWS_BATCH_CE_NAME"):
            assert f"--env {name} " in logs
    assert np.array_equal(pnl_bits(one, 20_000), pnl_bits(many, 20_000))


# ---------------------------------------------------------------- SIGTERM grace
class ReclaimOnceTheShardStarts:
    """An interrupter: a worker's first attempt is reclaimed (SIGTERM, SIGKILL after the grace;
    ``<engine> stop -t GRACE`` for a container) once its run's worker log shows a shard in flight."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self.reclaimed = threading.Event()
        self.retry_strategy: dict = {}

    def __call__(self, job: LocalJob, attempt: int) -> Callable[[Process], str] | None:
        if attempt != 1 or "services.worker.main" not in job.command:
            return None
        run_id = job.environment["SCENGRID_RUN_ID"]
        self.retry_strategy = job.retry_strategy

        def interrupt(proc: Process) -> str:
            if not self.reclaimed.is_set() and '"shard started"' in self.tasks.worker_logs(run_id):
                self.reclaimed.set()
                reclaim(proc, RECLAIM_GRACE_S)
            return ""

        return interrupt


def test_a_reclaimed_worker_finishes_its_shard_once_and_exits_143_which_batch_retries(tasks: Tasks, tmp_path: Path) -> None:
    spec = RunSpec(
        model=ModelRef(name="test-slow", params={"seconds_per_block": 2.0}),
        scenarios=GeneratedScenarios(count=3_072, seed=3),  # one shard of three blocks: 4-6 s
        shard_size=3_072,
        workers=1,
    )
    interrupter = ReclaimOnceTheShardStarts(tasks)
    assert tasks.stack.runner is not None
    tasks.stack.runner.interrupter = interrupter
    outcome = tasks.run(spec, tmp_path)
    assert interrupter.reclaimed.is_set()
    assert outcome.record.status is Status.COMPLETE, outcome.record.reason
    (worker,) = tasks.worker_outcomes(outcome.run_id)
    # the task exited 143; the job definition's evaluateOnExit said RETRY, and the runner ran a
    # second attempt, which found the queue drained
    assert [a.exit_code for a in worker.attempts] == [143, 0]
    assert retry_decision(interrupter.retry_strategy, worker.attempts[0]) == "RETRY"
    (shard,) = read_shards(outcome.run_id)
    assert shard.status is Status.COMPLETE and shard.attempt == 1
    assert object_versions(layout.shard_key(outcome.run_id, shard.shard_id)) == 1  # written once
    run = read_run(outcome.run_id)
    assert run is not None and run.shards_done == 1 and run.duplicates == 0  # one shard-done applied
    assert tasks.worker_logs(outcome.run_id).count('"shard started"') == 1


# ---------------------------------------------------------------- heartbeat
def test_a_shard_longer_than_the_visibility_timeout_is_not_redelivered_while_its_worker_lives(tasks: Tasks, tmp_path: Path) -> None:
    """Visibility 5 s; shard 000000 takes 12-24 s while the other worker, done with the short
    shard 000001, keeps looking at the queue: without the heartbeat it would take 000000 again."""
    tasks.env["SCENGRID_VISIBILITY_TIMEOUT_S"] = "5"
    spec = RunSpec(
        model=ModelRef(name="test-slow", params={"seconds_per_block": 6.0}),
        scenarios=GeneratedScenarios(count=5_120, seed=4),
        shard_size=4_096,  # 000000: four blocks; 000001: one
        workers=2,
    )
    outcome = tasks.run(spec, tmp_path)
    assert outcome.record.status is Status.COMPLETE, outcome.record.reason
    assert outcome.timings["stages_s"]["Evaluate"] > 2 * 5
    shards = {s.shard_id: s for s in read_shards(outcome.run_id)}
    assert shards["000000"].attempt == 1 and shards["000000"].duration_s > 2 * 5  # received once, ran long
    logs = tasks.worker_logs(outcome.run_id)
    assert logs.count('"shard started"') == 2  # one evaluation per shard
    assert object_versions(layout.shard_key(outcome.run_id, "000000")) == 1
    run = read_run(outcome.run_id)
    assert run is not None and run.duplicates == 0


# ---------------------------------------------------------------- a shard that kills its worker
DIED_ON_EACH_DELIVERY = re.escape("its worker died on each of 3 deliveries")
# A broken pool names how each of its ended processes ended: the poisoned one's end, and maybe
# those of the others, which the pool tears down (their codes depend on timing).
POOL_DIED = re.escape("a model process died while evaluating the shard (") + r"[^)]*?"
POISON_CASES = [
    # (mode, model processes per worker, how the model dies, a pattern of what the shard's error says).
    # A local process has no --memory: the memory cases run in containers only.
    ("process", "1", "exit", DIED_ON_EACH_DELIVERY),  # the worker process itself dies (exit 3): the dead-letter queue
    ("process", "2", "exit", POOL_DIED + r"\bexit code 3\b"),  # BrokenProcessPool
    ("container", "", "exit", POOL_DIED + r"\bexit code 3\b"),  # BrokenProcessPool
    ("container", "", "memory", POOL_DIED + re.escape("killed by SIGKILL (out of memory?)")),
    ("container", "1", "exit", DIED_ON_EACH_DELIVERY),  # the task's PID 1 dies: exit 3
    ("container", "1", "memory", DIED_ON_EACH_DELIVERY),  # the task runs out of --memory: 137
]


@pytest.mark.parametrize(
    ("tasks", "processes", "how", "error"),
    POISON_CASES,
    ids=[f"{c[0]}-{c[1] or 'vcpus'}-processes-{c[2]}" for c in POISON_CASES],
    indirect=["tasks"],
)
def test_a_shard_that_kills_its_worker_fails_by_name_in_bounded_time_and_a_retry_runs_it_alone(
    tasks: Tasks, tmp_path: Path, processes: str, how: str, error: str
) -> None:
    spec = RunSpec(
        model=ModelRef(name="test-crash", params={}),
        scenarios=GeneratedScenarios(count=10_000, seed=6),  # 000003 holds the run's short last block
        shard_size=3_000,
        workers=2,
    )
    tasks.env.update({"SCENGRID_TEST_CRASH": how, "SCENGRID_TEST_CRASH_MIB": "6144"})  # the worker task has 4096 MiB
    if processes:
        tasks.env["SCENGRID_WORKER_PROCESSES"] = processes
    else:
        tasks.env.pop("SCENGRID_WORKER_PROCESSES", None)
    failed = tasks.run(spec, tmp_path)
    assert failed.record.status is Status.FAILED and failed.record.failed_shards == ["000003"]
    assert "000003" in (failed.record.reason or "") and re.search(error, failed.record.reason or ""), failed.record.reason
    assert failed.wall_s < 180  # about maxReceiveCount x the visibility timeout (10 s locally), plus restarts
    shards = {s.shard_id: s for s in read_shards(failed.run_id)}
    assert shards["000003"].status is Status.FAILED and re.search(error, shards["000003"].error or ""), shards["000003"].error
    assert {s.status for k, s in shards.items() if k != "000003"} == {Status.COMPLETE}

    del tasks.env["SCENGRID_TEST_CRASH"]  # the cause is gone
    retried = retry_on_stack(tasks.stack, failed.run_id, tmp_path / "retried", timeout_s=300)
    assert retried.record.status is Status.COMPLETE and retried.record.round == 2
    assert {s.shard_id: s.round for s in read_shards(failed.run_id)} == {"000000": 1, "000001": 1, "000002": 1, "000003": 2}


# ---------------------------------------------------------------- acceptance
def demo(tmp_path: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", "demo", "--scenarios", "20000", "--out", str(tmp_path), "--json", *extra],
        capture_output=True, text=True, timeout=1200, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_demo_in_containers_is_complete_and_bit_identical_to_the_demo_in_processes(tmp_path: Path) -> None:
    reason = container_skip_reason()
    if reason:
        unavailable(f"container mode: {reason}")
    processes = demo(tmp_path / "processes")
    containers = demo(tmp_path / "containers", "--containers")
    for result in (processes, containers):
        assert result["status"] == "COMPLETE" and result["shard_statuses"] == {"COMPLETE": result["shards"]}
    a = pnl_dataset.read_local(Path(processes["results_dir"]) / "pnl").column("pnl").to_numpy()
    b = pnl_dataset.read_local(Path(containers["results_dir"]) / "pnl").column("pnl").to_numpy()
    assert len(a) == 20_000 and np.array_equal(a.view(np.uint64), b.view(np.uint64))
