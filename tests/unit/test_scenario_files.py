"""Scenario files: a Parquet file of shocks, a history (replayed or bootstrapped), named
stress scenarios; checked when a run is submitted, errors naming the column or entry, the
count filled in from the file; read by row range (locally or from S3, in ranges)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from scengrid.aws import client, reset_clients
from scengrid.errors import InvalidInput
from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from services.tracker.runs import resolve_spec
from scengrid.scenario_sources import open_shocks, resolve_source
from scengrid.settings import get_settings
from scengrid.spec import FileScenarios, HistoricalScenarios, RunSpec, StressScenarios

ROWS = 2_500


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return load_model("portfolio", {"portfolio": {"sample": {"positions": 150, "seed": 2}}})


def shock_table(model, rows: int = ROWS, seed: int = 0, ids: bool = True) -> pa.Table:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    names = [n for n in model.factors.names if n.startswith(("rate.USD", "equity", "vol", "fx", "spread"))]
    columns = {"scenario_id": np.arange(rows)} if ids else {"date": [f"2020-01-{1 + i % 28:02d}" for i in range(rows)]}
    scale = dict(zip(model.factors.names, model.factors.vols))
    columns.update({n: rng.normal(0, scale[n], rows) for n in names})
    return pa.table(columns)


def write(table: pa.Table, path: Path, row_group_size: int = 700) -> str:
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


def file_source(path: str) -> FileScenarios:
    return FileScenarios(kind="file", uri=path)


def test_a_scenario_file_is_counted_and_read_in_the_models_columns(model, tmp_path: Path) -> None:  # noqa: ANN001
    table = shock_table(model)
    source = resolve_source(file_source(write(table, tmp_path / "s.parquet")), model.factors)
    assert source.count == ROWS
    shocks = open_shocks(source, model.factors).read(1_000, 900)  # across row groups
    for name in ("equity.SPX", "rate.USD.5", "fx.EUR"):
        column = model.factors.names.index(name)
        assert np.array_equal(shocks[:, column], table.column(name).to_numpy()[1_000:1_900])
    absent = [i for i, n in enumerate(model.factors.names) if n not in table.column_names]
    assert absent and np.all(shocks[:, absent] == 0.0)  # missing factors mean no shock


def test_results_from_a_file_do_not_depend_on_the_range_asked_for(model, tmp_path: Path) -> None:  # noqa: ANN001
    source = resolve_source(file_source(write(shock_table(model), tmp_path / "s.parquet")), model.factors)
    whole = evaluate_range(model, source, 0, ROWS)["pnl"]
    for start, count in [(0, 10), (1020, 700), (2400, 100)]:
        assert np.array_equal(evaluate_range(model, source, start, count)["pnl"], whole[start : start + count])


def bad_tables(model) -> list[tuple[str, pa.Table, str]]:  # noqa: ANN001
    good = shock_table(model, rows=50)
    nan = good.column("equity.SPX").to_numpy().copy()
    nan[17] = np.nan
    inf = good.column("fx.EUR").to_numpy().copy()
    inf[3] = np.inf
    return [
        ("missing id", good.drop(["scenario_id"]), "'scenario_id' is missing"),
        ("unknown factor", good.append_column("rate.USD.5Y", pa.array(np.zeros(50))), "'rate.USD.5Y' is not a factor of the model (did you mean 'rate.USD.5'?)"),
        ("text column", good.set_column(good.column_names.index("equity.SPX"), "equity.SPX", pa.array(["x"] * 50)), "'equity.SPX' has type string"),
        ("nan", good.set_column(good.column_names.index("equity.SPX"), "equity.SPX", pa.array(nan)), "'equity.SPX' has nan in row 17"),
        ("inf", good.set_column(good.column_names.index("fx.EUR"), "fx.EUR", pa.array(inf)), "'fx.EUR' has inf in row 3"),
        ("null", good.set_column(good.column_names.index("equity.SPX"), "equity.SPX", pa.array([None] + [0.1] * 49, pa.float64())), "null) in row 0"),
        ("ids", good.set_column(0, "scenario_id", pa.array(np.arange(50) * 2)), "row 1 has 2"),
        ("float ids", good.set_column(0, "scenario_id", pa.array(np.arange(50, dtype=float))), "use integers"),
        ("empty", good.slice(0, 0), "has no rows"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_a_bad_scenario_file_is_refused_naming_what_to_fix(model, tmp_path: Path, case: int) -> None:  # noqa: ANN001
    name, table, words = bad_tables(model)[case]
    path = write(table, tmp_path / "bad.parquet")
    with pytest.raises(InvalidInput) as err:
        resolve_source(file_source(path), model.factors)
    assert err.value.field == "scenarios.uri"
    assert words in err.value.problem, name


def test_a_corrupt_or_missing_file_is_refused(model, tmp_path: Path) -> None:  # noqa: ANN001
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        resolve_source(file_source(str(corrupt)), model.factors)
    with pytest.raises(InvalidInput, match="cannot read"):
        resolve_source(file_source(str(tmp_path / "nothing.parquet")), model.factors)
    with pytest.raises(InvalidInput, match="has 2500 scenarios, not 10"):
        resolve_source(FileScenarios(kind="file", uri=write(shock_table(model), tmp_path / "s.parquet"), count=10), model.factors)


def test_a_history_is_replayed_or_bootstrapped(model, tmp_path: Path) -> None:  # noqa: ANN001
    history = shock_table(model, rows=300, ids=False)
    path = write(history, tmp_path / "history.parquet", row_group_size=128)
    replay = resolve_source(HistoricalScenarios(kind="historical", uri=path), model.factors)
    assert replay.count == 300
    column = model.factors.names.index("equity.SPX")
    assert np.array_equal(open_shocks(replay, model.factors).read(0, 300)[:, column], history.column("equity.SPX").to_numpy())
    boot = resolve_source(HistoricalScenarios(kind="historical", uri=path, bootstrap=True, count=5000, seed=3), model.factors)
    assert boot.count == 5000 and boot.rows == 300
    drawn = open_shocks(boot, model.factors).read(0, 5000)[:, column]
    assert set(drawn) <= set(history.column("equity.SPX").to_numpy()) and len(set(drawn)) > 250
    assert np.array_equal(open_shocks(boot, model.factors).read(1234, 100)[:, column], drawn[1234:1334])


def test_named_stress_scenarios_are_read_and_checked(model, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "stress.json"
    entries = [{"name": "2008", "shocks": {"equity.SPX": -0.45, "spread.BBB": 0.03}}, {"name": "taper", "shocks": {"rate.USD.10": 0.01}}]
    path.write_text(json.dumps({"scenarios": entries}))
    source = resolve_source(StressScenarios(kind="stress", uri=str(path)), model.factors)
    assert source.count == 2
    pnl = evaluate_range(model, source, 0, 2)
    assert pnl["pnl_rates"][0] == 0.0 and pnl["pnl_equity"][0] < 0 and pnl["pnl_credit"][0] < 0
    assert pnl["pnl_rates"][1] < 0 and pnl["pnl_equity"][1] == 0.0
    for content, words in [
        ({"scenarios": [{"name": "x", "shocks": {"equity.SPY": 0.1}}]}, "scenario 'x': 'equity.SPY' is not a factor"),
        ({"scenarios": entries + [entries[0]]}, "'2008' is used twice"),
        ({"scenarios": [{"name": "x", "shocks": {"equity.SPX": "big"}}]}, "scenarios.0.shocks.equity.SPX"),
    ]:
        path.write_text(json.dumps(content))
        with pytest.raises(InvalidInput) as err:
            resolve_source(StressScenarios(kind="stress", uri=str(path)), model.factors)
        assert words in err.value.problem
    path.write_text('{"scenarios": [{"name": "x", "shocks": {"equity.SPX": NaN}}]}')
    with pytest.raises(InvalidInput, match="finite"):
        resolve_source(StressScenarios(kind="stress", uri=str(path)), model.factors)


def test_submitting_fills_in_the_count_and_names_a_bad_file(model, tmp_path: Path) -> None:  # noqa: ANN001
    path = write(shock_table(model), tmp_path / "s.parquet")
    params = {"portfolio": {"sample": {"positions": 150, "seed": 2}}}
    spec = RunSpec.model_validate({"model": {"name": "portfolio", "params": params}, "scenarios": {"kind": "file", "uri": path}, "shard_size": 1000})
    resolved = resolve_spec(spec)
    assert resolved.scenarios.count == ROWS and resolved.shard_count() == 3
    big = write(shock_table(model, rows=100_001), tmp_path / "big.parquet", row_group_size=50_000)
    tiny_shards = RunSpec.model_validate({**spec.model_dump(), "shard_size": 1, "scenarios": {"kind": "file", "uri": big}})
    with pytest.raises(InvalidInput, match="use a larger one"):  # 100,001 shards: known only once the file is read
        resolve_spec(tiny_shards)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto: settings without an endpoint, fake credentials, fresh clients."""
    monkeypatch.delenv("SCENGRID_ENDPOINT_URL", raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        get_settings.cache_clear()
        reset_clients()
        yield
    get_settings.cache_clear()
    reset_clients()


def test_files_in_s3_are_read_in_ranges(model, tmp_path: Path, s3: None) -> None:  # noqa: ANN001
    table = shock_table(model)
    local = write(table, tmp_path / "s.parquet")
    s3_client = client("s3")
    s3_client.create_bucket(Bucket="scenario-files")
    s3_client.put_object(Bucket="scenario-files", Key="runs/s.parquet", Body=Path(local).read_bytes())
    source = resolve_source(file_source("s3://scenario-files/runs/s.parquet"), model.factors)
    assert source.count == ROWS
    assert np.array_equal(evaluate_range(model, source, 600, 800)["pnl"], evaluate_range(model, resolve_source(file_source(local), model.factors), 600, 800)["pnl"])
    with pytest.raises(InvalidInput, match="cannot read s3://scenario-files/missing.parquet: 404"):
        resolve_source(file_source("s3://scenario-files/missing.parquet"), model.factors)
    s3_client.put_object(Bucket="scenario-files", Key="book.json", Body=json.dumps({"sample": {"positions": 5, "seed": 1}}).encode())
    with pytest.raises(InvalidInput, match="positions"):  # a portfolio file must be a portfolio, not params
        load_model("portfolio", {"portfolio": "s3://scenario-files/book.json"})
