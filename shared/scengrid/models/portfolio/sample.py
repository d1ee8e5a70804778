"""A realistic, deterministic sample portfolio: the same (positions, seed) always gives the same
JSON. USD base; USD and EUR curves; bonds across five ratings, maturities up to 30 years
(on a quarter-year grid, so cashflows share grid times) and both currencies; six equity
indices in both currencies; options on them; fx cash in EUR, GBP and JPY.

Draws come from ``random.Random(seed).random()``, whose sequence Python keeps stable across
versions."""

from __future__ import annotations

import random
from typing import Any

TENORS = [0.25, 0.5, 1, 2, 3, 5, 7, 10, 20, 30]
CURVES = {
    "USD": [0.0530, 0.0525, 0.0505, 0.0470, 0.0450, 0.0435, 0.0437, 0.0442, 0.0468, 0.0460],
    "EUR": [0.0385, 0.0378, 0.0355, 0.0318, 0.0300, 0.0290, 0.0295, 0.0305, 0.0318, 0.0305],
}
SPREADS = {"AAA": 0.004, "A": 0.009, "BBB": 0.016, "BB": 0.035, "B": 0.06}
RATING_WEIGHTS = {"AAA": 0.15, "A": 0.30, "BBB": 0.35, "BB": 0.12, "B": 0.08}
EQUITIES = {
    "SPX": {"spot": 5000.0, "vol": 0.18, "dividend_yield": 0.015, "currency": "USD"},
    "NDX": {"spot": 17500.0, "vol": 0.22, "dividend_yield": 0.008, "currency": "USD"},
    "RTY": {"spot": 2000.0, "vol": 0.24, "dividend_yield": 0.013, "currency": "USD"},
    "SX5E": {"spot": 4900.0, "vol": 0.17, "dividend_yield": 0.030, "currency": "EUR"},
    "DAX": {"spot": 18000.0, "vol": 0.18, "dividend_yield": 0.0, "currency": "EUR"},
    "CAC": {"spot": 7500.0, "vol": 0.17, "dividend_yield": 0.028, "currency": "EUR"},
}
FX = {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}
MIX = (("bond", 0.55), ("equity", 0.15), ("option", 0.20), ("fx", 0.10))
OPTION_EXPIRIES = [1 / 12, 0.25, 0.5, 1.0, 2.0]


class _Draws:
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._random.random()

    def pick(self, weights: dict[str, float]) -> str:
        u, total = self._random.random() * sum(weights.values()), 0.0
        for name, weight in weights.items():
            total += weight
            if u < total:
                return name
        return name

    def one_of(self, items: list[Any]) -> Any:
        return items[min(int(self._random.random() * len(items)), len(items) - 1)]

    def sign(self, short_share: float) -> float:
        return -1.0 if self._random.random() < short_share else 1.0


def sample_portfolio(positions: int, seed: int) -> dict[str, Any]:
    """The sample portfolio as JSON-ready data (see the module's docstring)."""
    if positions < 1:
        raise ValueError("a portfolio needs at least one position")
    draws = _Draws(seed)
    kinds = _position_kinds(positions)
    makers = {"bond": _bond, "equity": _equity, "option": _option, "fx": _fx_cash}
    return {
        "base_currency": "USD",
        "curves": {ccy: {"tenors": list(TENORS), "zero_rates": list(rates)} for ccy, rates in CURVES.items()},
        "spreads": dict(SPREADS),
        "equities": {name: dict(spec) for name, spec in EQUITIES.items()},
        "fx": dict(FX),
        "positions": [makers[kind](f"{kind[0]}{i:05d}", draws) for i, kind in enumerate(kinds)],
    }


def _position_kinds(positions: int) -> list[str]:
    """The mix of position types, in proportion, interleaved (every type appears early)."""
    counts = {kind: int(share * positions) for kind, share in MIX}
    counts["bond"] += positions - sum(counts.values())
    kinds: list[str] = []
    while len(kinds) < positions:
        for kind, _ in MIX:
            if counts[kind]:
                kinds.append(kind)
                counts[kind] -= 1
    return kinds


def _bond(position_id: str, draws: _Draws) -> dict[str, Any]:
    currency = "USD" if draws.uniform(0, 1) < 0.65 else "EUR"
    rating = draws.pick(RATING_WEIGHTS)
    maturity = max(1, round(draws.uniform(0, 1) ** 1.6 * 120)) / 4  # quarter years, 0.25 .. 30
    frequency = draws.one_of([2, 2, 4]) if currency == "USD" else draws.one_of([1, 1, 2])
    level = CURVES[currency][min(range(len(TENORS)), key=lambda j: abs(TENORS[j] - maturity))]
    coupon = max(0.0, round((level + SPREADS[rating] + draws.uniform(-0.01, 0.01)) * 800) / 800)
    notional = draws.one_of([1, 2, 5, 10, 25]) * 1e6
    return {"id": position_id, "type": "bond", "currency": currency, "notional": notional, "coupon": coupon,
            "frequency": frequency, "maturity": maturity, "rating": rating}


def _equity(position_id: str, draws: _Draws) -> dict[str, Any]:
    name = draws.one_of(list(EQUITIES))
    value = draws.one_of([0.5, 1, 2, 5]) * 1e6 * draws.sign(0.2)
    return {"id": position_id, "type": "equity", "underlying": name, "quantity": round(value / EQUITIES[name]["spot"])}


def _option(position_id: str, draws: _Draws) -> dict[str, Any]:
    name = draws.one_of(list(EQUITIES))
    spot = EQUITIES[name]["spot"]
    strike = round(spot * draws.uniform(0.8, 1.2) / 25) * 25
    quantity = draws.one_of([50, 100, 200, 500]) * 1e4 / spot * draws.sign(0.35)
    return {"id": position_id, "type": "option", "underlying": name, "kind": draws.one_of(["call", "put"]),
            "strike": float(strike), "expiry": draws.one_of(OPTION_EXPIRIES), "quantity": round(quantity, 2)}


def _fx_cash(position_id: str, draws: _Draws) -> dict[str, Any]:
    currency = draws.one_of(list(FX))
    amount = draws.one_of([1, 2, 5, 10]) * 1e6 / FX[currency] * draws.sign(0.3)
    return {"id": position_id, "type": "fx", "currency": currency, "amount": round(amount, 2)}
