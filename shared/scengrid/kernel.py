"""Evaluate a model over a range of scenarios: the hot path, all array code.

The worker, ``scengrid model eval`` and the benchmarks call this same function."""

from __future__ import annotations

from contextlib import closing
from functools import lru_cache

import numpy as np
import pyarrow as pa
from threadpoolctl import ThreadpoolController

from scengrid.models.base import ScenarioModel
from scengrid.scenario_sources import open_shocks
from scengrid.spec import ScenarioSource, scenario_count

CHUNK = 1_024


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def evaluate_range(
    model: ScenarioModel, source: ScenarioSource, start: int, count: int, chunk: int = CHUNK
) -> dict[str, np.ndarray]:
    """Per-scenario result columns for scenarios ``start .. start+count-1``.

    Scenarios are evaluated in blocks aligned on the whole run: block k holds scenarios
    ``k*chunk .. (k+1)*chunk-1`` (the last one ends at the source's count). A scenario is thus
    always computed in the same block, with the same array shapes, whatever the shard or the
    slice that asks for it: BLAS results depend on the shapes, and this keeps every scenario's
    result bit-identical whatever the shard size. Memory stays bounded by one block.

    BLAS runs on one thread meanwhile: parallelism is by processes (a worker runs one per
    vCPU), BLAS threads on top of them oversubscribe the cores, and one block's matrices are
    too small to gain from threads."""
    total = scenario_count(source)
    if count < 1 or start < 0 or start + count > total:
        raise ValueError(f"scenarios {start}..{start + count - 1} are not within 0..{total - 1}")
    parts: list[dict[str, np.ndarray]] = []
    with closing(open_shocks(source, model.factors)) as reader, _blas().limit(limits=1, user_api="blas"):
        for block in range(start - start % chunk, start + count, chunk):
            size = min(chunk, total - block)
            columns = model.evaluate_block(reader.read(block, size), block)
            keep = slice(max(start, block) - block, min(start + count, block + size) - block)
            parts.append({name: values[keep] for name, values in columns.items()})
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


RESULT_METADATA_PREFIX = "scengrid."


def results_table(start: int, columns: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> pa.Table:
    """The shard output: ``scenario_id`` then the model's columns, in scenario order; what the
    model records with them (``model_version``) goes into the schema's metadata, as ``scengrid.<name>``."""
    count = len(next(iter(columns.values())))
    data = {"scenario_id": np.arange(start, start + count, dtype=np.int64)}
    data.update({name: np.asarray(values, dtype=np.float64) for name, values in columns.items()})
    table = pa.table(data)
    if metadata:
        table = table.replace_schema_metadata({f"{RESULT_METADATA_PREFIX}{k}": v for k, v in metadata.items()})
    return table


def result_metadata(schema: pa.Schema) -> dict[str, str]:
    """What ``results_table`` recorded in a shard output's schema."""
    return {
        key.decode().removeprefix(RESULT_METADATA_PREFIX): value.decode()
        for key, value in (schema.metadata or {}).items()
        if key.decode().startswith(RESULT_METADATA_PREFIX)
    }
