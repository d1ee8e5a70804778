"""Every scenario source behind one interface: the factor shocks of scenarios ``start ..
start+count-1`` in the model's factor order, and ``resolve_source``, which checks a source
against a model before a run starts and fills in its ``count``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from scengrid.errors import InvalidInput
from scengrid.models.base import FactorSet
from scengrid.scenario_files import ParquetShocks, check_parquet_file, read_stress_file
from scengrid.scenarios import bootstrap_rows, correlated_shocks, covariance_for
from scengrid.spec import (
    FileScenarios,
    GeneratedScenarios,
    HistoricalScenarios,
    ScenarioSource,
    StressScenarios,
)


class ShockReader(Protocol):
    def read(self, start: int, count: int) -> np.ndarray: ...

    def close(self) -> None: ...


class GeneratedShocks:
    def __init__(self, source: GeneratedScenarios, factors: FactorSet) -> None:
        self._source = source
        self._covariance = covariance_for(source, factors)
        self._width = len(factors.names)

    def read(self, start: int, count: int) -> np.ndarray:
        return correlated_shocks(self._source, self._covariance, self._width, start, count)

    def close(self) -> None:
        pass


class BootstrappedShocks:
    """Scenario i replays the history row that a counter-based draw keyed by (seed, i) picks."""

    def __init__(self, source: HistoricalScenarios, factors: FactorSet) -> None:
        history = ParquetShocks(source.uri, factors.names, id_column=False)
        try:
            self._history = history.read_all()
        finally:
            history.close()
        self._seed = source.seed

    def read(self, start: int, count: int) -> np.ndarray:
        return self._history[bootstrap_rows(self._seed, start, count, self._history.shape[0])]

    def close(self) -> None:
        pass


class StressShocks:
    def __init__(self, source: StressScenarios, factors: FactorSet) -> None:
        self.names, self._shocks = read_stress_file(source.uri, factors.names)

    def read(self, start: int, count: int) -> np.ndarray:
        return self._shocks[start : start + count].copy()

    def close(self) -> None:
        pass


def open_shocks(source: ScenarioSource, factors: FactorSet) -> ShockReader:
    """A reader of the source's shocks in the model's factor order. Close it when done."""
    if isinstance(source, GeneratedScenarios):
        return GeneratedShocks(source, factors)
    if isinstance(source, FileScenarios):
        return ParquetShocks(source.uri, factors.names, id_column=True)
    if isinstance(source, HistoricalScenarios):
        if source.bootstrap:
            return BootstrappedShocks(source, factors)
        return ParquetShocks(source.uri, factors.names, id_column=False)
    return StressShocks(source, factors)


def resolve_source(source: ScenarioSource, factors: FactorSet) -> ScenarioSource:
    """Check the source against the model's factors and return it with ``count`` (and, for a
    bootstrap, ``rows``) filled in from the file. Raises InvalidInput naming what to fix: an
    unreadable or corrupt file, a missing ``scenario_id``, a column that is not a factor, a
    non-numeric column, a NaN or infinite shock, a matrix that is not a covariance."""
    if isinstance(source, GeneratedScenarios):
        covariance_for(source, factors)
        return source
    if isinstance(source, StressScenarios):
        names, _ = read_stress_file(source.uri, factors.names)
        return _with_count(source, len(names))
    rows = check_parquet_file(source.uri, factors.names, id_column=isinstance(source, FileScenarios))
    if isinstance(source, HistoricalScenarios) and source.bootstrap:
        return source.model_copy(update={"rows": rows})
    return _with_count(source, rows)


def _with_count(source: ScenarioSource, rows: int) -> ScenarioSource:
    if source.count is not None and source.count != rows:
        raise InvalidInput("scenarios.count", f"{source.uri} has {rows} scenarios, not {source.count}; leave count out")
    return source.model_copy(update={"count": rows})
