"""``@scenario_function``: a per-scenario function as a scengrid model, through the worker's
kernel (run-aligned blocks) and its process pool."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from scengrid.errors import InvalidInput, ModelFailure
from scengrid.kernel import evaluate_range
from scengrid.models import scenario_function
from scengrid.models.function import function_model_class
from scengrid.kernel import CHUNK
from scengrid.scenario_sources import open_shocks
from scengrid.spec import GeneratedScenarios

FACTORS = {"rate.USD.5": 0.001, "equity.SPX": 0.012}
SOURCE = GeneratedScenarios(count=5000, seed=3)


@scenario_function(factors=FACTORS)
def book(shock: Mapping[str, float]) -> Mapping[str, float]:
    rates = -4.5e6 * shock["rate.USD.5"]
    equity = 1e6 * math.expm1(shock["equity.SPX"])
    return {"pnl_rates": rates, "pnl": rates + equity, "pnl_equity": equity}


@scenario_function(factors=FACTORS)
def pnl_only(shock: Mapping[str, float]) -> float:
    return 1e6 * shock["equity.SPX"] - 4.5e6 * shock["rate.USD.5"]


class Notional(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notional: float = 1e6


@scenario_function(factors=FACTORS, correlation=[[1, -0.3], [-0.3, 1]], params=Notional)
def scaled(shock: Mapping[str, float], params: Notional) -> float:
    return params.notional * shock["equity.SPX"]


def model(fn, params=None):  # noqa: ANN001, ANN201
    return function_model_class(fn)(params or {})


def generate_shocks(source: GeneratedScenarios, factors, start: int, count: int) -> np.ndarray:  # noqa: ANN001
    """The shocks the kernel reads, in its run-aligned blocks."""
    reader = open_shocks(source, factors)
    blocks = [reader.read(b, min(CHUNK, source.count - b)) for b in range(start - start % CHUNK, start + count, CHUNK)]
    return np.concatenate(blocks)[start % CHUNK : start % CHUNK + count]


def test_the_function_is_called_once_per_scenario_with_its_shocks_and_its_columns_come_back() -> None:
    columns = evaluate_range(model(book), SOURCE, 0, SOURCE.count)
    assert list(columns) == ["pnl", "pnl_rates", "pnl_equity"]  # pnl first, then the function's order
    shocks = generate_shocks(SOURCE, model(book).factors, 0, SOURCE.count)
    expected = [book(dict(zip(FACTORS, row)))["pnl"] for row in shocks.tolist()]
    assert columns["pnl"].dtype == np.float64 and columns["pnl"].tolist() == expected
    assert evaluate_range(model(pnl_only), SOURCE, 0, 10).keys() == {"pnl"}


def test_the_results_are_the_same_bits_whatever_the_slice() -> None:
    whole = evaluate_range(model(book), SOURCE, 0, SOURCE.count)
    for start, count in ((0, 1), (700, 1800), (1023, 2), (4999, 1)):
        part = evaluate_range(model(book), SOURCE, start, count)
        for name, values in part.items():
            assert values.tobytes() == whole[name][start : start + count].tobytes()


def test_errors_name_the_scenario_id() -> None:
    @scenario_function(factors=FACTORS)
    def fails_on_one(shock: Mapping[str, float]) -> float:
        if shock["equity.SPX"] == target:
            raise ZeroDivisionError("the curve bootstrap did not converge")
        return 0.0

    shocks = generate_shocks(SOURCE, model(book).factors, 0, SOURCE.count)
    target = shocks[3333, 1]
    with pytest.raises(ModelFailure, match=r"fails_on_one failed on scenario 3333: ZeroDivisionError: the curve bootstrap"):
        evaluate_range(model(fails_on_one), SOURCE, 2048, 2000)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("1.5", r"returned str '1.5' for scenario 0: return a float"),
        ({"value": 1.0}, r"without 'pnl' for scenario 0 \(keys: value\)"),
        ({"pnl": None}, r"returned NoneType None as 'pnl' for scenario 0"),
    ],
)
def test_what_the_function_returns_is_checked_naming_the_scenario(result: object, message: str) -> None:
    @scenario_function(factors=FACTORS)
    def wrong(shock: Mapping[str, float]) -> object:
        return result

    with pytest.raises(ModelFailure, match=message):
        evaluate_range(model(wrong), SOURCE, 0, 10)


def test_a_mapping_must_keep_its_keys_from_scenario_to_scenario() -> None:
    calls = iter(range(10**6))

    @scenario_function(factors=FACTORS)
    def drifting(shock: Mapping[str, float]) -> Mapping[str, float]:
        return {"pnl": 1.0} if next(calls) != 5 else {"pnl": 1.0, "extra": 2.0}

    with pytest.raises(ModelFailure, match=r"columns pnl, extra for scenario 5, but pnl before it"):
        evaluate_range(model(drifting), SOURCE, 0, 10)


def test_params_and_correlation_follow_the_class_apis_rules() -> None:
    assert model(scaled, {"notional": 2.0}).factors.correlation.tolist() == [[1, -0.3], [-0.3, 1]]
    assert evaluate_range(model(scaled, {"notional": 2.0}), SOURCE, 0, 4)["pnl"].tolist() == [
        2.0 * r[1] for r in generate_shocks(SOURCE, model(scaled).factors, 0, 4).tolist()]
    with pytest.raises(InvalidInput, match=r"model.params.notionl: Extra inputs are not permitted"):
        model(scaled, {"notionl": 2.0})
    with pytest.raises(InvalidInput, match=r"model.params: this model takes no params, but got x"):
        model(book, {"x": 1})
    with pytest.raises(ValueError, match="unit diagonal"):
        scenario_function(factors=FACTORS, correlation=[[2, 0], [0, 1]])
    with pytest.raises(ValueError, match="positive semi-definite"):
        scenario_function(factors={"a.x": 1, "b.x": 1, "c.x": 1}, correlation=[[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]])
    with pytest.raises(ValueError, match="vol must be positive"):
        scenario_function(factors={"equity.SPX": 0.0})
    assert book(dict.fromkeys(FACTORS, 0.0))["pnl"] == 0.0  # the function itself is unchanged


def test_the_adapter_runs_in_the_workers_model_processes(tmp_path) -> None:  # noqa: ANN001
    """Through the worker's process pool, with the model registered by an entry point."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.plugins import plugin_path

    root = Path(__file__).resolve().parents[2]
    script = (
        "import numpy as np\n"
        "from services.worker.evaluator import ShardEvaluator\n"
        "from scengrid.spec import ModelRef, GeneratedScenarios\n"
        "from scengrid.work import ShardWork\n"
        "from scengrid.kernel import evaluate_range\n"
        "from scengrid.models import load_model\n"
        "src = GeneratedScenarios(count=6000, seed=1)\n"
        "ev = ShardEvaluator(2)\n"
        "work = ShardWork(run_id='r', shard_id='000001', start=1000, count=4000, model=ModelRef(name='test-nan'), scenarios=src)\n"
        "out = ev.evaluate(work)\n"
        "ev.close()\n"
        "direct = evaluate_range(load_model('test-nan', {}), src, 1000, 4000)['pnl']\n"
        "print(out.columns['pnl'].tobytes() == direct.tobytes(), out.metadata['model_package'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path(tmp_path / "p")), str(root)])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "scengrid-test-models", "0.1.0"]
