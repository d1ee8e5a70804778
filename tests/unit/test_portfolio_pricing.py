"""The portfolio model against QuantLib 1.44, position by position, at the base market and
under shocks (through ``evaluate``, the code the worker runs); put-call parity; zero shocks
give a zero P&L; the attribution columns add up and split as the contract says."""

from __future__ import annotations

import copy
import math

import numpy as np
import QuantLib as ql
import pytest

from scengrid.models.portfolio import PortfolioModel
from tests.unit.quantlib_reference import Market, bond_value, option_value

TENORS = [0.25, 0.5, 1, 2, 3, 5, 7, 10, 20, 30]
MARKET = {
    "base_currency": "USD",
    "curves": {
        "USD": {"tenors": TENORS, "zero_rates": [0.053, 0.0525, 0.0505, 0.047, 0.045, 0.0435, 0.0437, 0.0442, 0.0468, 0.046]},
        "EUR": {"tenors": TENORS, "zero_rates": [0.0385, 0.0378, 0.0355, 0.0318, 0.03, 0.029, 0.0295, 0.0305, 0.0318, 0.0305]},
    },
    "spreads": {"AAA": 0.004, "A": 0.009, "BBB": 0.016, "BB": 0.035, "B": 0.06},
    "equities": {
        "SPX": {"spot": 5000.0, "vol": 0.18, "dividend_yield": 0.015, "currency": "USD"},
        "SX5E": {"spot": 4900.0, "vol": 0.17, "dividend_yield": 0.03, "currency": "EUR"},
    },
    "fx": {"EUR": 1.08},
}
BONDS = [  # currency, notional, coupon, frequency, maturity, rating
    ("USD", 1e6, 0.045, 2, 7.25, "BBB"),
    ("USD", 5e6, 0.0, 1, 3.0, "AAA"),
    ("USD", 2e6, 0.06, 4, 0.2, "B"),  # inside the first tenor: flat
    ("USD", 1e6, 0.05, 12, 35.0, "BB"),  # beyond the last tenor: flat
    ("USD", 1e6, 0.03, 2, 12.5, "A"),
    ("USD", 3e6, 0.07, 1, 30.0, "BBB"),
    ("USD", 1e6, 0.04, 2, 0.1, "A"),  # one cashflow
    ("EUR", 1e6, 0.025, 1, 9.75, "A"),
    ("EUR", 2e6, 0.035, 4, 0.75, "AAA"),
]
OPTIONS = [  # underlying, kind, strike, expiry
    ("SPX", "call", 5100.0, 0.5),
    ("SPX", "put", 4800.0, 1 / 12),
    ("SPX", "call", 4000.0, 2.75),
    ("SPX", "put", 6000.0, 0.2),
    ("SPX", "call", 5000.0, 40.0),  # expiry beyond the curve
    ("SX5E", "call", 4900.0, 1.0),
    ("SX5E", "put", 4500.0, 0.25),
]
TOLERANCE = 1e-8


def portfolio(*positions: dict) -> dict:
    return {**copy.deepcopy(MARKET), "positions": list(positions)}


def bond(i: int) -> dict:
    ccy, notional, coupon, frequency, maturity, rating = BONDS[i]
    return {"id": f"b{i}", "type": "bond", "currency": ccy, "notional": notional, "coupon": coupon,
            "frequency": frequency, "maturity": maturity, "rating": rating}


def option(i: int, quantity: float = 1.0) -> dict:
    underlying, kind, strike, expiry = OPTIONS[i]
    return {"id": f"o{i}", "type": "option", "underlying": underlying, "kind": kind, "strike": strike, "expiry": expiry, "quantity": quantity}


def scenarios(model: PortfolioModel) -> dict[str, dict[str, float]]:
    """Named shocks: none, a typical day (random, seeded), a crisis, and a vol crash with
    negative rates (the vol is floored)."""
    names = model.factors.names
    rng = np.random.default_rng(2024)
    scale = {"rate": 0.002, "spread": 0.003, "equity": 0.05, "vol": 0.03, "fx": 0.01}
    typical = {n: float(rng.normal(0, scale[n.split(".")[0]])) for n in names}
    crisis = {n: {"rate": 0.015, "spread": 0.03, "equity": -0.35, "vol": 0.25, "fx": -0.1}[n.split(".")[0]] for n in names}
    crash = {n: {"rate": -0.08, "spread": -0.003, "equity": 0.2, "vol": -0.5, "fx": 0.05}[n.split(".")[0]] for n in names}
    return {"none": {}, "typical": typical, "crisis": crisis, "vol crash": crash}


def shock_matrix(model: PortfolioModel, shocks: dict[str, float]) -> np.ndarray:
    return np.array([[shocks.get(name, 0.0) for name in model.factors.names]])


def shocked_market(ccy: str, shocks: dict[str, float]) -> Market:
    curve = MARKET["curves"][ccy]
    labels = [f"{t:g}" for t in curve["tenors"]]
    return Market(list(curve["tenors"]), [z + shocks.get(f"rate.{ccy}.{label}", 0.0) for z, label in zip(curve["zero_rates"], labels)])


def fx_factor(ccy: str, shocks: dict[str, float]) -> float:
    return 1.0 if ccy == "USD" else MARKET["fx"][ccy] * math.exp(shocks.get(f"fx.{ccy}", 0.0))


def model_value(model: PortfolioModel, shocks: dict[str, float]) -> float:
    """The portfolio's value in base currency under the shocks: base value plus P&L."""
    return model.base_value + float(model.evaluate(shock_matrix(model, shocks))["pnl"][0])


def quantlib_bond(i: int, shocks: dict[str, float]) -> float:
    ccy, notional, coupon, frequency, maturity, rating = BONDS[i]
    spread = MARKET["spreads"][rating] + shocks.get(f"spread.{rating}", 0.0)
    return bond_value(shocked_market(ccy, shocks), spread, notional, coupon, frequency, maturity) * fx_factor(ccy, shocks)


def quantlib_option(i: int, shocks: dict[str, float]) -> float:
    underlying, kind, strike, expiry = OPTIONS[i]
    equity = MARKET["equities"][underlying]
    spot = equity["spot"] * math.exp(shocks.get(f"equity.{underlying}", 0.0))
    vol = max(equity["vol"] + shocks.get(f"vol.{underlying}", 0.0), 1e-4)
    local = option_value(shocked_market(equity["currency"], shocks), spot, vol, equity["dividend_yield"], kind, strike, expiry)
    return local * fx_factor(equity["currency"], shocks)


def relative_errors(models: dict[str, PortfolioModel], reference) -> dict[tuple[str, str], float]:  # noqa: ANN001
    errors = {}
    for key, model in models.items():
        for name, shocks in scenarios(model).items():
            expected = reference(key, shocks)
            # Relative error; an option worth exactly nothing (both agree on 0 here) must be ~0.
            errors[(key, name)] = abs(model_value(model, shocks) - expected) / max(abs(expected), 1e-12)
    return errors


def test_bonds_match_quantlib_at_base_and_under_shocks() -> None:
    models = {str(i): PortfolioModel({"portfolio": portfolio(bond(i))}) for i in range(len(BONDS))}
    errors = relative_errors(models, lambda key, shocks: quantlib_bond(int(key), shocks))
    worst = max(errors, key=errors.get)
    print(f"bonds: max relative error vs QuantLib {errors[worst]:.2e} ({BONDS[int(worst[0])]}, {worst[1]})")
    assert errors[worst] <= TOLERANCE


def test_options_match_quantlib_at_base_and_under_shocks() -> None:
    models = {str(i): PortfolioModel({"portfolio": portfolio(option(i))}) for i in range(len(OPTIONS))}
    errors = relative_errors(models, lambda key, shocks: quantlib_option(int(key), shocks))
    worst = max(errors, key=errors.get)
    print(f"options: max relative error vs QuantLib {errors[worst]:.2e} ({OPTIONS[int(worst[0])]}, {worst[1]})")
    assert errors[worst] <= TOLERANCE


def test_a_whole_portfolio_is_the_sum_of_its_positions_priced_by_quantlib() -> None:
    positions = [bond(i) for i in range(len(BONDS))] + [option(i, quantity=10.0 * (i + 1)) for i in range(len(OPTIONS))]
    model = PortfolioModel({"portfolio": portfolio(*positions)})
    for name, shocks in scenarios(model).items():
        expected = sum(quantlib_bond(i, shocks) for i in range(len(BONDS)))
        expected += sum(10.0 * (i + 1) * quantlib_option(i, shocks) for i in range(len(OPTIONS)))
        assert model_value(model, shocks) == pytest.approx(expected, rel=TOLERANCE), name


def test_put_call_parity_holds_under_every_scenario() -> None:
    """Long a call, short the put of the same strike and expiry: worth S·e^(-qT) - K·e^(-rT)."""
    for underlying, strike, expiry in (("SPX", 5200.0, 0.75), ("SX5E", 4000.0, 3.0), ("SPX", 5000.0, 1 / 12)):
        legs = [{"id": kind, "type": "option", "underlying": underlying, "kind": kind, "strike": strike, "expiry": expiry,
                 "quantity": 1.0 if kind == "call" else -1.0} for kind in ("call", "put")]
        model = PortfolioModel({"portfolio": portfolio(*legs)})
        equity = MARKET["equities"][underlying]
        for shocks in scenarios(model).values():
            market = shocked_market(equity["currency"], shocks)
            rate = market.curve().zeroRate(expiry, ql.Continuous, ql.NoFrequency).rate()
            spot = equity["spot"] * math.exp(shocks.get(f"equity.{underlying}", 0.0))
            forward = spot * math.exp(-equity["dividend_yield"] * expiry) - strike * math.exp(-rate * expiry)
            assert model_value(model, shocks) == pytest.approx(forward * fx_factor(equity["currency"], shocks), rel=1e-10, abs=1e-9 * spot)


def test_zero_shocks_give_exactly_zero_pnl_in_every_column() -> None:
    model = PortfolioModel({"portfolio": {"sample": {"positions": 1000, "seed": 7}}})
    columns = model.evaluate(np.zeros((300, len(model.factors.names))))
    for name, values in columns.items():
        assert np.all(values == 0.0), name


def test_the_attribution_adds_up_to_the_pnl() -> None:
    model = PortfolioModel({"portfolio": {"sample": {"positions": 300, "seed": 3}}})
    shocks = np.random.default_rng(5).normal(0, 1, (500, len(model.factors.names))) * model.factors.vols * 5
    columns = model.evaluate(shocks)
    parts = sum(columns[f"pnl_{part}"] for part in ("rates", "credit", "equity", "options", "fx"))
    assert np.allclose(parts, columns["pnl"], rtol=1e-12, atol=1e-6)
    assert all(np.std(columns[name]) > 0 for name in columns)


def test_rates_credit_and_fx_split_as_the_contract_says() -> None:
    model = PortfolioModel({"portfolio": portfolio(bond(0), bond(7))})  # a USD and a EUR bond
    only_spread = model.evaluate(shock_matrix(model, {"spread.BBB": 0.01, "spread.A": 0.02}))
    assert only_spread["pnl_rates"][0] == 0.0 and only_spread["pnl_fx"][0] == 0.0
    assert only_spread["pnl_credit"][0] == pytest.approx(only_spread["pnl"][0], rel=1e-14) and only_spread["pnl"][0] < 0
    only_rates = model.evaluate(shock_matrix(model, {"rate.USD.7": 0.01, "rate.EUR.10": -0.01}))
    assert abs(only_rates["pnl_credit"][0]) <= 1e-12 * abs(only_rates["pnl"][0])
    euro_value = quantlib_bond(7, {})  # in USD, at 1.08
    only_fx = model.evaluate(shock_matrix(model, {"fx.EUR": 0.05}))
    assert only_fx["pnl_fx"][0] == pytest.approx(euro_value * (math.exp(0.05) - 1.0), rel=1e-12)
    assert only_fx["pnl_rates"][0] == only_fx["pnl_credit"][0] == 0.0


def test_equities_and_fx_cash_move_with_their_factors() -> None:
    positions = [
        {"id": "e1", "type": "equity", "underlying": "SX5E", "quantity": 250.0},
        {"id": "e2", "type": "equity", "underlying": "SX5E", "quantity": -50.0},
        {"id": "f1", "type": "fx", "currency": "EUR", "amount": 2e6},
    ]
    model = PortfolioModel({"portfolio": portfolio(*positions)})
    assert model.base_value == pytest.approx((200 * 4900.0 + 2e6) * 1.08, rel=1e-15)
    out = model.evaluate(shock_matrix(model, {"equity.SX5E": -0.1, "fx.EUR": 0.02}))
    local_equity = 200 * 4900.0 * (math.exp(-0.1) - 1.0)
    assert out["pnl_equity"][0] == pytest.approx(local_equity * 1.08, rel=1e-13)
    shocked_local = 200 * 4900.0 * math.exp(-0.1) + 2e6
    assert out["pnl_fx"][0] == pytest.approx(shocked_local * 1.08 * (math.exp(0.02) - 1.0), rel=1e-13)
