"""Equities (spot times quantity) and fx cash (an amount of a currency).

An equity's value moves by ``spot·(exp(shock) - 1)`` per share; the positions in one name are
summed first, so the block's P&L is one matrix product of ``exp(shocks) - 1`` with a
(names, currencies) matrix of spot·quantity. Fx cash has no local P&L: its whole P&L is the
fx translation, which the model computes for every currency at once."""

from __future__ import annotations

import numpy as np

from scengrid.models.portfolio.contract import Portfolio
from scengrid.models.portfolio.factors import FactorIndex


class EquityBook:
    def __init__(self, portfolio: Portfolio, index: FactorIndex, currencies: list[str]) -> None:
        names = sorted({p.underlying for p in portfolio.equity_positions()})
        self.columns = np.array([index.equity_columns[name] for name in names], dtype=np.int64)
        self.exposure = np.zeros((len(names), len(currencies)))  # spot · quantity, in the name's currency column
        for position in portfolio.equity_positions():
            equity = portfolio.equities[position.underlying]
            self.exposure[names.index(position.underlying), currencies.index(equity.currency)] += equity.spot * position.quantity
        self.base_value_by_currency = self.exposure.sum(axis=0)

    def pnl(self, shocks: np.ndarray) -> np.ndarray:
        """(n, C) P&L in each currency's own units."""
        growth = np.exp(shocks[:, self.columns])
        growth -= 1.0
        return growth @ self.exposure

    def work(self) -> dict[str, int]:
        names, currencies = self.exposure.shape
        return {"matmul_flops": 2 * names * currencies, "elementwise_flops": names, "transcendentals": names}


def cash_by_currency(portfolio: Portfolio, currencies: list[str]) -> np.ndarray:
    """The fx positions' amounts, summed per currency."""
    cash = np.zeros(len(currencies))
    for position in portfolio.fx_positions():
        cash[currencies.index(position.currency)] += position.amount
    return cash
