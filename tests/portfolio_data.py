"""A small valid portfolio (one position of each type), for the tests that break it."""

from __future__ import annotations

GOOD = {
    "base_currency": "USD",
    "curves": {"USD": {"tenors": [1, 5, 10], "zero_rates": [0.04, 0.042, 0.045]}},
    "spreads": {"AAA": 0.004, "BBB": 0.016},
    "equities": {"SPX": {"spot": 5000, "vol": 0.18, "dividend_yield": 0.015, "currency": "USD"}},
    "fx": {"EUR": 1.08},
    "positions": [
        {"id": "b1", "type": "bond", "currency": "USD", "notional": 1e6, "coupon": 0.045, "frequency": 2, "maturity": 7.0, "rating": "BBB"},
        {"id": "e1", "type": "equity", "underlying": "SPX", "quantity": 100},
        {"id": "o1", "type": "option", "underlying": "SPX", "kind": "call", "strike": 5100, "expiry": 0.5, "quantity": 10},
        {"id": "f1", "type": "fx", "currency": "EUR", "amount": 1e6},
    ],
}
