"""Evaluate a model over a range of generated scenarios: the hot path, all array code.

The worker, ``scengrid model eval`` and the benchmarks call this same function."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from scengrid.models.base import ScenarioModel
from scengrid.scenarios import generate
from scengrid.spec import GeneratedScenarios

CHUNK = 65_536


def evaluate_range(
    model: ScenarioModel, source: GeneratedScenarios, start: int, count: int, chunk: int = CHUNK
) -> dict[str, np.ndarray]:
    """Per-scenario result columns for scenarios ``start .. start+count-1``.

    Works in chunks so that memory stays bounded by ``chunk`` scenarios of factors."""
    parts: list[dict[str, np.ndarray]] = []
    vols = model.factors.vols
    for offset in range(0, count, chunk):
        n = min(chunk, count - offset)
        parts.append(model.evaluate(generate(source, vols, start + offset, n)))
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def results_table(start: int, columns: dict[str, np.ndarray]) -> pa.Table:
    """The shard output: ``scenario_id`` then the model's columns, in scenario order."""
    count = len(next(iter(columns.values())))
    data = {"scenario_id": np.arange(start, start + count, dtype=np.int64)}
    data.update({name: np.asarray(values, dtype=np.float64) for name, values in columns.items()})
    return pa.table(data)
