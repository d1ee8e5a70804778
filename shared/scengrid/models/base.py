"""What a model is: prepared once per process, then evaluated on whole batches of scenarios."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FactorSet:
    """The risk factors a model is shocked on, with the scenario generator's default vols and,
    optionally, their correlation (independent factors when it is None)."""

    names: tuple[str, ...]
    vols: np.ndarray
    correlation: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.names) != self.vols.shape[0]:
            raise ValueError("one vol per factor is needed")
        if self.correlation is not None and self.correlation.shape != (len(self.names),) * 2:
            raise ValueError("the correlation must be F x F, one row and column per factor")


@dataclass
class ShardOutput:
    """A shard's result columns, and what to record with them (e.g. ``model_version``)."""

    columns: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)


class ScenarioModel(ABC):
    """A vectorised model. Subclasses are registered by name under ``scengrid.models``.

    ``__init__`` validates the params and prepares everything that does not depend on the
    scenarios; ``evaluate`` takes a (n, F) array of factor shocks and returns per-scenario
    columns, at least ``pnl``, each of length n. No per-scenario Python."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    @property
    @abstractmethod
    def factors(self) -> FactorSet: ...

    @abstractmethod
    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]: ...

    def evaluate_block(self, shocks: np.ndarray, first: int) -> dict[str, np.ndarray]:
        """The kernel's call, for scenarios ``first .. first+n-1``: ``evaluate`` by default. A
        model that names scenarios in its errors (the per-scenario adapter) uses ``first``."""
        return self.evaluate(shocks)

    def finish_shard(self, columns: dict[str, np.ndarray]) -> ShardOutput:
        """Once per shard, on the columns of all its scenarios, in the worker's main process:
        where a model makes one batched call for the whole shard (the credit overlay asks the
        inference function for every scenario's PDs at once). By default, nothing to do."""
        return ShardOutput(columns)
