"""Invalid portfolios and params are refused with an error that names the position (by its id)
and the field, through the registry as a run's params would be."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from scengrid.errors import InvalidInput
from scengrid.models import load_model
from scengrid.models.portfolio import parse_portfolio, sample_portfolio
from tests.portfolio_data import GOOD



def broken(position: int | None = None, **changes: object) -> dict:
    data = copy.deepcopy(GOOD)
    target = data if position is None else data["positions"][position]
    target.update(changes)
    return data


def refusal(raw: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        load_model("portfolio", {"portfolio": raw})
    return err.value


def test_the_good_portfolio_loads() -> None:
    model = load_model("portfolio", {"portfolio": GOOD})
    assert "rate.USD.5" in model.factors.names and "fx.EUR" in model.factors.names


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (broken(0, notional=-1e6), "positions[b1].notional", "greater than 0"),
        (broken(0, rating="CCC"), "positions[b1].rating", "unknown rating 'CCC'"),
        (broken(0, currency="JPY"), "positions[b1].currency", "no curve for JPY"),
        (broken(0, coupon=math.nan), "positions[b1].coupon", "finite"),
        (broken(2, strike=math.inf), "positions[o1].strike", "finite"),
        (broken(2, expiry=0), "positions[o1].expiry", "greater than 0"),
        (broken(2, kind="straddle"), "positions[o1].kind", "call"),
        (broken(1, underlying="NDX"), "positions[e1].underlying", "unknown underlying 'NDX'"),
        (broken(3, currency="GBP"), "positions[f1].currency", "no fx rate for GBP"),
        (broken(3, id="b1"), "positions[b1].id", "unique"),
        (broken(0, type="swap"), "positions[b1].type", "swap"),
        (broken(0, frequency=3), "positions[b1].frequency", "1, 2, 4 or 12"),
        (broken(0, surprise=1), "positions[b1].surprise", "not permitted"),
    ],
)
def test_a_bad_position_is_named_by_its_id_and_field(raw: dict, field: str, words: str) -> None:
    error = refusal(raw)
    assert error.field == f"model.params.portfolio.{field}"
    assert words in error.problem


def test_a_position_without_an_id_is_named_by_its_index() -> None:
    raw = copy.deepcopy(GOOD)
    del raw["positions"][1]["id"]
    assert refusal(raw).field == "model.params.portfolio.positions[#1].id"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"curves": {"USD": {"tenors": [5, 1], "zero_rates": [0.04, 0.05]}}}, "curves.USD", "increasing"),
        ({"curves": {"USD": {"tenors": [1, 5], "zero_rates": [0.04]}}}, "curves.USD", "one rate per tenor"),
        ({"curves": {"USD": {"tenors": [1, 5], "zero_rates": [0.04, math.nan]}}}, "curves.USD.zero_rates.1", "finite"),
        ({"fx": {"USD": 1.0, "EUR": 1.08}}, "fx", "base currency"),
        ({"spreads": {"AAA": 0.004, "BBB": math.nan}}, "spreads.BBB", "finite"),
        ({"equities": {"SPX": {"spot": 5000, "vol": 0.18, "currency": "CHF"}}}, "equities.SPX.currency", "no fx rate for CHF"),
        ({"positions": []}, "positions", "at least 1"),
    ],
)
def test_bad_market_data_is_named_by_its_path(changes: dict, field: str, words: str) -> None:
    error = refusal(broken(**changes))
    assert error.field == f"model.params.portfolio.{field}"
    assert words in error.problem


def test_every_problem_is_listed_after_the_first() -> None:
    raw = broken(0, notional=-1, rating="CCC")
    raw["positions"][2]["strike"] = -5
    error = refusal(raw)
    assert "positions[b1]" in error.field
    assert "positions[o1].strike" in error.problem


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"portfolio": {"sample": {"positions": 0, "seed": 1}}}, "model.params.portfolio.sample.positions"),
        ({"portfolio": {"sample": {"positions": 10}}}, "model.params.portfolio.sample.seed"),
        ({"portfolio": 42}, "model.params.portfolio"),
        ({"portfolio": "/no/such/book.json"}, "model.params.portfolio"),
        ({"book": "x"}, "model.params.book"),
    ],
)
def test_bad_params_are_named(params: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        load_model("portfolio", params)
    assert err.value.field == field


def test_a_portfolio_file_is_read_from_a_path_and_checked(tmp_path: Path) -> None:
    book = tmp_path / "book.json"
    book.write_text(json.dumps(GOOD))
    assert load_model("portfolio", {"portfolio": str(book)}).portfolio == parse_portfolio(GOOD)
    book.write_text('{"base_currency": "USD", "curves": {}, "positions": [{"id": "x", "type": "fx", "currency": "EUR", "amount": NaN}]}')
    assert "positions[x].amount" in refusal(str(book)).field  # type: ignore[arg-type]
    book.write_text("{not json")
    assert "not JSON" in refusal(str(book)).problem  # type: ignore[arg-type]


def test_the_sample_portfolio_is_deterministic_valid_and_mixed() -> None:
    first, again, other = sample_portfolio(500, 7), sample_portfolio(500, 7), sample_portfolio(500, 8)
    assert first == again and first != other
    portfolio = parse_portfolio(first)
    assert len(portfolio.positions) == 500
    bonds = portfolio.bonds()
    assert {b.currency for b in bonds} == {"USD", "EUR"} and {b.rating for b in bonds} == set(portfolio.spreads)
    assert min(b.maturity for b in bonds) < 2 and max(b.maturity for b in bonds) > 20
    assert portfolio.options() and portfolio.equity_positions() and portfolio.fx_positions()
    assert {o.kind for o in portfolio.options()} == {"call", "put"}
