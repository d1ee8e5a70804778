"""The report's worst scenarios carry the shocks that made them: read back from the run's
source as the workers read it, so that revaluing those shocks gives the same P&L, for a
correlated generated source and for a scenario file alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.risk import summarise
from scengrid.spec import FileScenarios, GeneratedScenarios, ModelRef, RunSpec, ScenarioSource

from services.collator.reporting import worst_with_shocks

MODEL = ModelRef(name="portfolio", params={"portfolio": {"sample": {"positions": 60, "seed": 4}}})
COUNT = 3_000


def _worst_rows_reprice(source: ScenarioSource) -> None:
    model = load_model(MODEL.name, MODEL.params)
    pnl = evaluate_range(model, source, 0, COUNT)["pnl"]
    spec = RunSpec(model=MODEL, scenarios=source, shard_size=1_000)
    rows = worst_with_shocks(spec, summarise(np.arange(COUNT), pnl))
    assert len(rows) == 10
    shocks = np.array([[row[name] for name in model.factors.names] for row in rows])
    assert np.isfinite(shocks).all() and np.abs(shocks).max() > 0
    repriced = model.evaluate(shocks)["pnl"]
    np.testing.assert_allclose(repriced, [row["pnl"] for row in rows], rtol=1e-9)
    np.testing.assert_array_equal([row["pnl"] for row in rows], np.sort(pnl)[:10])


def test_generated_correlated_shocks_reprice_to_the_worst_pnl() -> None:
    model = load_model(MODEL.name, MODEL.params)
    assert model.factors.correlation is not None  # the sample's factors are correlated
    _worst_rows_reprice(GeneratedScenarios(count=COUNT, seed=11))


def test_scenario_file_shocks_reprice_to_the_worst_pnl(tmp_path: Path) -> None:
    model = load_model(MODEL.name, MODEL.params)
    rng = np.random.default_rng(5)
    columns = {"scenario_id": np.arange(COUNT)}
    columns.update({n: rng.normal(0.0, v, COUNT) for n, v in zip(model.factors.names, model.factors.vols)})
    path = tmp_path / "shocks.parquet"
    pq.write_table(pa.table(columns), path)
    _worst_rows_reprice(FileScenarios(kind="file", uri=str(path), count=COUNT))


def test_rows_keep_the_summary_fields() -> None:
    pnl = np.linspace(-5.0, 5.0, COUNT)
    spec = RunSpec(model=MODEL, scenarios=GeneratedScenarios(count=COUNT, seed=1), shard_size=1_000)
    rows = worst_with_shocks(spec, summarise(np.arange(COUNT), pnl))
    assert [row["scenario_id"] for row in rows] == list(range(10)) and rows[0]["pnl"] == -5.0
