"""Model evaluation inside one worker task: a process pool over slices of a shard."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from scengrid.kernel import evaluate_range
from scengrid.models import ScenarioModel, load_model
from scengrid.models.base import ShardOutput
from scengrid.spec import ModelRef, ScenarioSource
from scengrid.work import ShardWork

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


class ShardEvaluator:
    """Evaluates shards with ``processes`` model processes (1 = in this process)."""

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None
        if self.processes > 1:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("forkserver"))

    def evaluate(self, work: ShardWork) -> ShardOutput:
        """The shard's columns, then the model's once-per-shard step (one batched PD request
        for the credit overlay), here in the main process."""
        return _model(work.model).finish_shard(self._columns(work))

    def _columns(self, work: ShardWork) -> dict[str, np.ndarray]:
        if self._pool is None or work.count < 2 * self.processes:
            return _evaluate_slice(work.model, work.scenarios, work.start, work.count)
        bounds = np.linspace(work.start, work.start + work.count, self.processes + 1).astype(np.int64)
        futures = [
            self._pool.submit(_evaluate_slice, work.model, work.scenarios, int(a), int(b - a))
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        parts = [f.result() for f in futures]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
