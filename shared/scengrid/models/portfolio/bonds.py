"""Fixed-rate bonds, revalued on a shared time grid.

A bond pays notional·coupon/frequency at ``t_k = maturity - k/frequency`` (every k >= 0 with
t_k > 0) and its notional at maturity; a cashflow at t is worth ``exp(-(z(t) + s)·t)`` today,
z the currency's zero curve and s the rating's spread. Under a scenario the curve nodes shift
by dz_j and the spread by ds, so each cashflow's value changes by the factor
``exp(-(dz(t) + ds)·t) - 1``, which depends only on (currency, rating, t).

So the work is grouped by (currency, rating): the cashflows of all its bonds, valued today, are
summed per grid time into one vector ``a``; a scenario block's exponents are one matrix
product (shocks of the group's nodes and spread times a fixed matrix of interpolation weights
times t), one ``exp`` per grid time, and the P&L one matrix-vector product with ``a``. Zero
shocks give exp(0) - 1 = 0, so a zero P&L exactly. The rates-only revaluation (for the
rates / credit split) does the same per currency without the spread."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from scengrid.models.portfolio.contract import Bond, Portfolio
from scengrid.models.portfolio.curves import interpolation_weights, zero_rates
from scengrid.models.portfolio.factors import FactorIndex

PAID = 1e-9  # years: a cashflow due within this is treated as paid
_TIME_KEY = 1e12  # cashflow times equal to 1e-12 years share a grid point


@dataclass(frozen=True)
class Cashflows:
    """Every cashflow of every bond: its bond, its grid time and its amount."""

    bond: np.ndarray
    time: np.ndarray  # index into grid
    amount: np.ndarray
    grid: np.ndarray


def bond_cashflows(bonds: list[Bond]) -> Cashflows:
    bond_of, times, amounts = [], [], []
    for i, b in enumerate(bonds):
        k = np.arange(int(np.ceil(b.maturity * b.frequency)) + 1)
        t = b.maturity - k / b.frequency
        t = t[t > PAID]
        amount = np.full(t.shape[0], b.notional * b.coupon / b.frequency)
        amount[0] += b.notional
        bond_of.append(np.full(t.shape[0], i))
        times.append(t)
        amounts.append(amount)
    all_times = np.concatenate(times) if times else np.zeros(0)
    _, first, inverse = np.unique(np.round(all_times * _TIME_KEY), return_index=True, return_inverse=True)
    return Cashflows(
        bond=np.concatenate(bond_of).astype(np.int64) if bond_of else np.zeros(0, np.int64),
        time=inverse.reshape(-1),
        amount=np.concatenate(amounts) if amounts else np.zeros(0),
        grid=all_times[first],
    )


@dataclass(frozen=True)
class Revaluation:
    """What one block of exponents is for: ``columns`` of the shocks times ``exponents`` (a
    (k, T) matrix) give -(shift·t) at T grid times; ``values`` are the cashflows valued today."""

    columns: np.ndarray
    exponents: np.ndarray
    values: np.ndarray

    def pnl(self, shocks: np.ndarray) -> np.ndarray:
        growth = shocks[:, self.columns] @ self.exponents
        np.exp(growth, out=growth)
        growth -= 1.0
        return growth @ self.values

    def work(self) -> dict[str, int]:
        k, t = self.exponents.shape
        return {"matmul_flops": 2 * k * t + 2 * t, "elementwise_flops": t + 1, "transcendentals": t}


class BondBook:
    """The bonds of a portfolio, ready to revalue a block of scenarios at once."""

    def __init__(self, portfolio: Portfolio, index: FactorIndex, currencies: list[str]) -> None:
        bonds = portfolio.bonds()
        self.currencies = currencies
        flows = bond_cashflows(bonds)
        groups = sorted({(b.currency, b.rating) for b in bonds})
        bond_group = np.array([groups.index((b.currency, b.rating)) for b in bonds], dtype=np.int64)
        flow_group = bond_group[flows.bond]
        discount = np.array([self._discount_factors(portfolio, g, flows.grid) for g in groups])
        present = discount.reshape(len(groups), flows.grid.shape[0])[flow_group, flows.time] * flows.amount
        self.base_values = np.bincount(flows.bond, weights=present, minlength=len(bonds))
        bond_currency = np.array([currencies.index(b.currency) for b in bonds], dtype=np.int64)
        flow_currency = bond_currency[flows.bond]
        self.base_value_by_currency = np.bincount(bond_currency, weights=self.base_values, minlength=len(currencies))
        self.full = [
            (currencies.index(ccy), self._revaluation(portfolio, index, flows, flow_group == g, present, ccy, rating))
            for g, (ccy, rating) in enumerate(groups)
        ]
        self.rates_only = [
            (c, self._revaluation(portfolio, index, flows, flow_currency == c, present, currencies[c], None))
            for c in sorted({currencies.index(ccy) for ccy, _ in groups})
        ]

    @staticmethod
    def _discount_factors(portfolio: Portfolio, group: tuple[str, str], grid: np.ndarray) -> np.ndarray:
        ccy, rating = group
        curve = portfolio.curves[ccy]
        z = zero_rates(np.array(curve.tenors), np.array(curve.zero_rates), grid)
        return np.exp(-(z + portfolio.spreads[rating]) * grid)

    @staticmethod
    def _revaluation(
        portfolio: Portfolio, index: FactorIndex, flows: Cashflows, mine: np.ndarray, present: np.ndarray, ccy: str, rating: str | None
    ) -> Revaluation:
        """The group's grid times, its cashflows' present values summed per time, and the
        matrix from its node (and spread) shocks to the exponents -(dz(t) + ds)·t."""
        used, at = np.unique(flows.time[mine], return_inverse=True)
        times = flows.grid[used]
        values = np.bincount(at.reshape(-1), weights=present[mine], minlength=used.shape[0])
        weights = interpolation_weights(np.array(portfolio.curves[ccy].tenors), times)
        columns = index.rate_columns[ccy]
        if rating is not None:
            weights = np.vstack([weights, np.ones((1, times.shape[0]))])
            columns = np.append(columns, index.spread_columns[rating])
        return Revaluation(columns, -(weights * times), values)

    def pnl(self, shocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(full, rates-only) P&L in each currency's own units, each (n, C)."""
        full = np.zeros((shocks.shape[0], len(self.currencies)))
        rates = np.zeros_like(full)
        for column, revaluation in self.full:
            full[:, column] += revaluation.pnl(shocks)
        for column, revaluation in self.rates_only:
            rates[:, column] += revaluation.pnl(shocks)
        return full, rates

    def work(self) -> dict[str, int]:
        """Floating-point operations per scenario (see PortfolioModel.work)."""
        return sum_work(r.work() for _, r in self.full + self.rates_only)


def sum_work(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    total = {"matmul_flops": 0, "elementwise_flops": 0, "transcendentals": 0}
    for part in parts:
        for key, value in part.items():
            total[key] += value
    return total
