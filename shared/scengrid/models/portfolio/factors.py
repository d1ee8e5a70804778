"""The portfolio's risk factors, their names, and the generator's default vols and correlation.

Names: ``rate.{CCY}.{tenor}`` (absolute shift of the zero rate at a curve node),
``spread.{rating}`` (absolute), ``equity.{name}`` (log return of spot), ``vol.{name}``
(absolute vol change) and ``fx.{CCY}`` (log return of base per CCY). Every node, rating,
equity and fx rate of the market data is a factor, whether or not a position uses it.

The default distribution is a one-day one: vols from the market data, and a correlation built
from a few common drivers (rates level and slope, credit, equity market, volatility, the
dollar) plus an idiosyncratic part, so that it is positive definite by construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scengrid.models.base import FactorSet
from scengrid.models.portfolio.contract import Portfolio

TRADING_DAYS = 252
RATE_VOL = 0.0007  # 7bp a day at every node
SPREAD_VOL_SHARE = 0.03  # a day's spread vol, as a share of the spread
MIN_SPREAD_VOL = 0.0001
VOL_OF_VOL = 0.01  # one vol point a day
FX_VOL = 0.006
# Loadings on the common drivers: ("rates", "credit", "equity", "volatility", "dollar").
DRIVERS = ("rates", "credit", "equity", "volatility", "dollar")


def tenor_label(tenor: float) -> str:
    """The shortest text that reads back as the same number: 0.25, 1, 30."""
    short = f"{tenor:g}"
    return short if float(short) == tenor else repr(float(tenor))


@dataclass(frozen=True)
class FactorIndex:
    """Column positions of the factors, by kind, in the model's factor order."""

    names: tuple[str, ...]
    rate_columns: dict[str, np.ndarray]  # currency -> columns of its nodes, in tenor order
    spread_columns: dict[str, int]
    equity_columns: dict[str, int]
    vol_columns: dict[str, int]
    fx_columns: dict[str, int]


def factor_index(portfolio: Portfolio) -> FactorIndex:
    names: list[str] = []

    def add(name: str) -> int:
        names.append(name)
        return len(names) - 1

    rates = {
        ccy: np.array([add(f"rate.{ccy}.{tenor_label(t)}") for t in curve.tenors], dtype=np.int64)
        for ccy, curve in portfolio.curves.items()
    }
    spreads = {rating: add(f"spread.{rating}") for rating in portfolio.spreads}
    equities = {name: add(f"equity.{name}") for name in portfolio.equities}
    vols = {name: add(f"vol.{name}") for name in portfolio.equities}
    fx = {ccy: add(f"fx.{ccy}") for ccy in portfolio.fx}
    return FactorIndex(tuple(names), rates, spreads, equities, vols, fx)


def default_factor_set(portfolio: Portfolio, index: FactorIndex) -> FactorSet:
    vols = np.zeros(len(index.names))
    loadings = np.zeros((len(index.names), len(DRIVERS) + 2 * len(portfolio.curves)))
    level, slope = len(DRIVERS), len(DRIVERS) + len(portfolio.curves)
    for k, (ccy, columns) in enumerate(index.rate_columns.items()):
        log_tenors = np.log(np.asarray(portfolio.curves[ccy].tenors))
        tilt = (log_tenors - log_tenors.mean()) / max(np.ptp(log_tenors), 1e-12)
        vols[columns] = RATE_VOL
        loadings[columns, 0] = 0.55
        loadings[columns, level + k] = 0.7
        loadings[columns, slope + k] = 0.4 * tilt
    for rating, column in index.spread_columns.items():
        vols[column] = max(MIN_SPREAD_VOL, SPREAD_VOL_SHARE * portfolio.spreads[rating])
        loadings[column, [0, 1, 2]] = (-0.15, 0.8, -0.3)
    for name, column in index.equity_columns.items():
        vols[column] = portfolio.equities[name].vol / np.sqrt(TRADING_DAYS)
        loadings[column, [1, 2, 4]] = (-0.2, 0.8, -0.1)
    for column in index.vol_columns.values():
        vols[column] = VOL_OF_VOL
        loadings[column, [2, 3]] = (-0.6, 0.6)
    for column in index.fx_columns.values():
        vols[column] = FX_VOL
        loadings[column, [0, 4]] = (0.1, -0.7)
    return FactorSet(index.names, vols, _correlation(loadings))


def _correlation(loadings: np.ndarray) -> np.ndarray:
    """B Bᵀ plus the idiosyncratic variance that makes the diagonal 1 (every row of B has a
    norm below 1), so the matrix is positive definite."""
    common = loadings @ loadings.T
    correlation = common + np.diag(1.0 - np.diag(common))
    np.fill_diagonal(correlation, 1.0)
    return correlation
