"""Model evaluation inside one worker task: a process pool over slices of a shard."""

from __future__ import annotations

import multiprocessing
import signal
from importlib.metadata import entry_points
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from scengrid.errors import ModelFailure
from scengrid.kernel import evaluate_range
from scengrid.models import ENTRY_POINT_GROUP, ScenarioModel, load_model
from scengrid.models.base import ShardOutput
from scengrid.spec import ModelRef, ScenarioSource
from scengrid.work import ShardWork
from services.worker.provenance import provenance

_models: dict[str, ScenarioModel] = {}


def _model(ref: ModelRef) -> ScenarioModel:
    """Prepared once per process and model."""
    key = ref.model_dump_json()
    found = _models.get(key)
    if found is None:
        found = _models[key] = load_model(ref.name, ref.params)
    return found


def _evaluate_slice(ref: ModelRef, source: ScenarioSource, start: int, count: int) -> dict[str, np.ndarray]:
    return evaluate_range(_model(ref), source, start, count)


def _ready() -> None:
    """Nothing: submitted once per model process, so that the pool starts them at once."""


def _model_modules() -> list[str]:
    """The modules of the registered models (their entry points), imported once by the server
    that forks the model processes."""
    return sorted({ep.module for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"killed by {name}" + (" (out of memory?)" if exitcode == -signal.SIGKILL else "")
    return f"exit code {exitcode}"


class ShardEvaluator:
    """Evaluates shards with ``processes`` model processes (1 = in this process).

    A model process that dies (the model ends its process, or the kernel kills it for memory)
    breaks the pool: the shard attempt fails with a ModelFailure that says so, and a new pool
    takes the next shard."""

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None
        if self.processes > 1:
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        """The model processes, started now rather than at the first shard. They fork from a
        server that imported this module (numpy, the kernel) and the registered models' code
        once, instead of each importing them anew."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__, *_model_modules()])
        pool = ProcessPoolExecutor(self.processes, mp_context=context)
        for _ in range(self.processes):
            pool.submit(_ready)
        return pool

    def evaluate(self, work: ShardWork) -> ShardOutput:
        """The shard's columns, then the model's once-per-shard step (one batched PD request
        for the credit overlay), here in the main process; the output records the model's
        package and the image (services/worker/provenance.py)."""
        output = _model(work.model).finish_shard(self._columns(work))
        for key, value in provenance(work.model.name).items():
            output.metadata.setdefault(key, value)
        return output

    def _columns(self, work: ShardWork) -> dict[str, np.ndarray]:
        if self._pool is None or work.count < 2 * self.processes:
            return _evaluate_slice(work.model, work.scenarios, work.start, work.count)
        bounds = np.linspace(work.start, work.start + work.count, self.processes + 1).astype(np.int64)
        try:
            futures = [
                self._pool.submit(_evaluate_slice, work.model, work.scenarios, int(a), int(b - a))
                for a, b in zip(bounds[:-1], bounds[1:])
            ]
            parts = [f.result() for f in futures]
        except BrokenProcessPool:
            raise self._replace_broken_pool() from None
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def _replace_broken_pool(self) -> ModelFailure:
        """A new pool for the next shard; the error that fails this one, saying how its model
        process ended."""
        assert self._pool is not None
        ended = [p.exitcode for p in (getattr(self._pool, "_processes", None) or {}).values() if p.exitcode not in (None, 0)]
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()
        how = ", ".join(sorted({_how_it_ended(code) for code in ended})) or "how is unknown"
        return ModelFailure(f"a model process died while evaluating the shard ({how})")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
