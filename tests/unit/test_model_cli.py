"""``scengrid sample-portfolio`` and ``scengrid model eval``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scengrid_cli.cli import main
from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.spec import GeneratedScenarios


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.json"
    assert main(["sample-portfolio", "--positions", "80", "--seed", "4", "--out", str(path)]) == 0
    return path


def test_sample_portfolio_is_the_same_file_for_the_same_seed(book: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sample-portfolio", "--positions", "80", "--seed", "4"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(book.read_text())
    other = tmp_path / "other.json"
    main(["sample-portfolio", "--positions", "80", "--seed", "5", "--out", str(other)])
    assert other.read_text() != book.read_text()
    assert len(json.loads(book.read_text())["positions"]) == 80


def test_model_eval_writes_what_the_worker_kernel_computes(book: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = load_model("portfolio", {"portfolio": str(book)})
    shocks = np.random.default_rng(1).normal(0, 1, (3000, len(model.factors.names))) * model.factors.vols
    table = pa.table({"scenario_id": np.arange(3000), **{n: shocks[:, i] for i, n in enumerate(model.factors.names)}})
    pq.write_table(table, tmp_path / "s.parquet", row_group_size=1000)
    out = tmp_path / "r" / "results.parquet"
    assert main(["model", "eval", "--portfolio", str(book), "--scenarios", str(tmp_path / "s.parquet"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    result = pq.read_table(out)
    assert result.column_names == ["scenario_id", "pnl", "pnl_rates", "pnl_credit", "pnl_equity", "pnl_options", "pnl_fx"]
    assert np.array_equal(result.column("scenario_id").to_numpy(), np.arange(3000))
    expected = model.evaluate(shocks)["pnl"]
    assert np.allclose(result.column("pnl").to_numpy(), expected, rtol=1e-12, atol=1e-6)
    assert summary["scenarios"] == 3000 and summary["var_99"] == pytest.approx(-np.quantile(expected, 0.01), rel=1e-9)


def test_model_eval_generates_and_names_stress_scenarios(book: Path, tmp_path: Path) -> None:
    out = tmp_path / "mc.parquet"
    assert main(["model", "eval", "--portfolio", str(book), "--generate", "2000", "--seed", "9", "--student-t", "4", "--out", str(out)]) == 0
    model = load_model("portfolio", {"portfolio": str(book)})
    direct = evaluate_range(model, GeneratedScenarios(count=2000, seed=9, distribution="student_t", df=4), 0, 2000)["pnl"]
    assert np.array_equal(pq.read_table(out).column("pnl").to_numpy(), direct)
    stress = tmp_path / "stress.json"
    stress.write_text(json.dumps({"scenarios": [{"name": "crash", "shocks": {"equity.SPX": -0.3}}, {"name": "calm", "shocks": {}}]}))
    assert main(["model", "eval", "--portfolio", str(book), "--scenarios", str(stress), "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["scenario_name"] for r in rows] == ["crash", "calm"] and rows[1]["pnl"] == 0.0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scenarios", "missing.parquet"], "scenarios.uri: cannot read missing.parquet"),
        (["--generate", "0"], "--generate or --bootstrap"),
        (["--generate", "10", "--student-t", "1.5"], "--student-t"),
        (["--generate", "10", "--historical"], "--generate"),
    ],
)
def test_model_eval_errors_say_what_to_fix(book: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], words: str) -> None:
    code = main(["model", "eval", "--portfolio", str(book), *args, "--out", str(tmp_path / "r.parquet")])
    assert code == 2
    assert words in capsys.readouterr().err


def test_a_bad_portfolio_file_names_the_position(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.json"
    main(["sample-portfolio", "--positions", "5", "--out", str(bad)])
    portfolio = json.loads(bad.read_text())
    portfolio["positions"][0]["notional"] = -1
    bad.write_text(json.dumps(portfolio))
    assert main(["model", "eval", "--portfolio", str(bad), "--generate", "10", "--out", str(tmp_path / "r.parquet")]) == 2
    assert "model.params.portfolio.positions[b00000].notional" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["model", "eval"], ["sample-portfolio"]])
def test_every_command_has_help_with_an_example(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text and f"scengrid {command[0]}" in text
