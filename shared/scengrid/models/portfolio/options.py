"""European options, Black-Scholes-Merton, revalued for a block of scenarios at once.

With ``A = ln(S) - q·T`` (the log of the spot discounted at the dividend yield) and
``B = ln(K) - r·T`` (the log of the discounted strike), r the zero rate of the underlying's
currency at expiry:

    d1 = (A - B) / (σ√T) + σ√T / 2,   d2 = d1 - σ√T
    price = ω · (e^A · N(ω·d1) - e^B · N(ω·d2)),   ω = +1 for a call, -1 for a put

A scenario moves ln(S) by the equity shock, σ by the vol shock (floored at 1e-4) and r by the
curve shift at T; the time to expiry does not change (the shock is instantaneous). The rate
moves of every option are one matrix product of the block's curve shifts with a fixed matrix
of interpolation weights times T; the rest is elementwise on (scenarios, options) arrays."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from scengrid.models.portfolio.contract import OptionPosition, Portfolio
from scengrid.models.portfolio.curves import interpolation_weights, zero_rates
from scengrid.models.portfolio.factors import FactorIndex

VOL_FLOOR = 1e-4
TILE_ROWS = 128  # scenarios priced at once: keeps the (rows, options) temporaries in L2 cache


class OptionBook:
    def __init__(self, portfolio: Portfolio, index: FactorIndex, currencies: list[str]) -> None:
        options = portfolio.options()
        self.count = len(options)
        underlyings = [portfolio.equities[o.underlying] for o in options]
        expiry = np.array([o.expiry for o in options])
        rate = np.array([_zero_rate(portfolio, u.currency, o.expiry) for o, u in zip(options, underlyings)])
        self.sign = np.array([1.0 if o.kind == "call" else -1.0 for o in options])
        self.all_calls = bool(np.all(self.sign > 0))
        self.vol = np.array([u.vol for u in underlyings])
        self.sqrt_expiry = np.sqrt(expiry)
        self.log_discounted_spot = np.log([u.spot for u in underlyings]) - np.array([u.dividend_yield for u in underlyings]) * expiry
        self.log_discounted_strike = np.log([o.strike for o in options]) - rate * expiry
        self.equity_columns = np.array([index.equity_columns[o.underlying] for o in options], dtype=np.int64)
        self.vol_columns = np.array([index.vol_columns[o.underlying] for o in options], dtype=np.int64)
        self.rate_columns, self.rate_moves = _rate_moves(portfolio, index, options)
        self.exposure = np.zeros((self.count, len(currencies)))  # quantity, in the option's currency column
        self.exposure[np.arange(self.count), [currencies.index(u.currency) for u in underlyings]] = [o.quantity for o in options]
        self.base_prices = self.prices(np.zeros((1, len(index.names))))[0]
        self.base_value_by_currency = self.base_prices @ self.exposure

    def prices(self, shocks: np.ndarray) -> np.ndarray:
        """(n, O) option prices under each scenario of the block."""
        a = shocks[:, self.equity_columns]
        a += self.log_discounted_spot
        b = shocks[:, self.rate_columns] @ self.rate_moves
        b += self.log_discounted_strike
        vol = shocks[:, self.vol_columns]
        vol += self.vol
        np.maximum(vol, VOL_FLOOR, out=vol)
        vol *= self.sqrt_expiry  # σ√T
        d1 = a - b
        d1 /= vol
        vol *= 0.5
        d1 += vol  # d1
        d2 = d1 - vol
        d2 -= vol  # d2 = d1 - σ√T
        if not self.all_calls:
            d1 *= self.sign
            d2 *= self.sign
        np.exp(a, out=a)
        a *= ndtr(d1, out=d1)
        np.exp(b, out=b)
        b *= ndtr(d2, out=d2)
        a -= b
        if not self.all_calls:
            a *= self.sign
        return a

    def pnl(self, shocks: np.ndarray) -> np.ndarray:
        """(n, C) P&L of the options in each currency's own units, priced in tiles of
        TILE_ROWS scenarios (fixed positions in the block, so the results do not depend on
        how the block was cut)."""
        out = np.empty((shocks.shape[0], self.exposure.shape[1]))
        for first in range(0, shocks.shape[0], TILE_ROWS):
            tile = slice(first, first + TILE_ROWS)
            change = self.prices(shocks[tile])
            change -= self.base_prices
            out[tile] = change @ self.exposure
        return out

    def work(self) -> dict[str, int]:
        """Floating-point operations per scenario (see PortfolioModel.work)."""
        nodes, currencies = self.rate_columns.shape[0], self.exposure.shape[1]
        elementwise = 16 + (0 if self.all_calls else 3)  # the arithmetic of prices(), then - base
        return {
            "matmul_flops": 2 * (nodes + currencies) * self.count,
            "elementwise_flops": elementwise * self.count,
            "transcendentals": 4 * self.count,  # two exp, two normal CDF
        }


def _zero_rate(portfolio: Portfolio, currency: str, time: float) -> float:
    curve = portfolio.curves[currency]
    return float(zero_rates(np.array(curve.tenors), np.array(curve.zero_rates), np.array([time]))[0])


def _rate_moves(portfolio: Portfolio, index: FactorIndex, options: list[OptionPosition]) -> tuple[np.ndarray, np.ndarray]:
    """The curve nodes the options depend on, and the (nodes, O) matrix from their shifts to
    -dr·T of every option (interpolation weights at expiry, times expiry)."""
    currency_of = [portfolio.equities[o.underlying].currency for o in options]
    used = sorted(set(currency_of))
    columns = np.concatenate([index.rate_columns[ccy] for ccy in used]) if used else np.zeros(0, np.int64)
    moves = np.zeros((columns.shape[0], len(options)))
    for i, (option, currency) in enumerate(zip(options, currency_of)):
        rows = np.flatnonzero(np.isin(columns, index.rate_columns[currency]))
        tenors = np.array(portfolio.curves[currency].tenors)
        moves[rows, i] = -interpolation_weights(tenors, np.array([option.expiry]))[:, 0] * option.expiry
    return columns.astype(np.int64), moves

