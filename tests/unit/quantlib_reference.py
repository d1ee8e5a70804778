"""Reference prices from QuantLib 1.44 for the portfolio contract.

QuantLib works with dates; the contract with year fractions. With Actual/360 and a time of
t years placed at ``reference + 360·t`` days, QuantLib's year fraction is exactly t for every
time used here (multiples of 1/360). The zero curve is QuantLib's own ZeroCurve, linear in
zero rate, continuously compounded; flat extrapolation (the contract's) is obtained with a node
at the reference date and one far out, both at the end nodes' rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import QuantLib as ql

REFERENCE = ql.Date(15, 1, 2025)
DAY_COUNT = ql.Actual360()
FAR = 150 * 360  # days: 150 years, the flat end of the curve


def date(t: float) -> ql.Date:
    days = t * 360
    if abs(days - round(days)) > 1e-9:
        raise ValueError(f"{t} years is not a whole number of Actual/360 days")
    return REFERENCE + int(round(days))


@dataclass(frozen=True)
class Market:
    """The market data of one state (base, or shocked)."""

    tenors: list[float]
    zero_rates: list[float]

    def curve(self) -> ql.YieldTermStructure:
        ql.Settings.instance().evaluationDate = REFERENCE
        dates = [REFERENCE] + [date(t) for t in self.tenors] + [REFERENCE + FAR]
        rates = [self.zero_rates[0], *self.zero_rates, self.zero_rates[-1]]
        curve = ql.ZeroCurve(dates, rates, DAY_COUNT, ql.NullCalendar(), ql.Linear(), ql.Continuous, ql.Annual)
        curve.enableExtrapolation()
        return curve


def bond_value(market: Market, spread: float, notional: float, coupon: float, frequency: int, maturity: float) -> float:
    """A FixedRateBond whose schedule runs back from maturity in periods of 360/frequency
    days (Actual/360 coupons of exactly coupon/frequency), discounted on the curve plus a
    continuously compounded zero spread."""
    curve = ql.YieldTermStructureHandle(market.curve())
    spreaded = ql.ZeroSpreadedTermStructure(curve, ql.QuoteHandle(ql.SimpleQuote(spread)), ql.Continuous, ql.NoFrequency, DAY_COUNT)
    period = 360 // frequency
    end = date(maturity)
    periods = math.ceil(maturity * frequency)
    schedule = ql.Schedule(
        end - periods * period, end, ql.Period(period, ql.Days), ql.NullCalendar(),
        ql.Unadjusted, ql.Unadjusted, ql.DateGeneration.Backward, False,
    )
    bond = ql.FixedRateBond(0, notional, schedule, [coupon], DAY_COUNT)
    bond.setPricingEngine(ql.DiscountingBondEngine(ql.YieldTermStructureHandle(spreaded)))
    return bond.NPV()


def option_value(market: Market, spot: float, vol: float, dividend_yield: float, kind: str, strike: float, expiry: float) -> float:
    """A European option under Black-Scholes-Merton: the risk-free curve is the zero curve
    (so r is its zero rate at expiry), q a flat continuous dividend yield, σ flat."""
    curve = ql.YieldTermStructureHandle(market.curve())
    dividends = ql.YieldTermStructureHandle(ql.FlatForward(REFERENCE, dividend_yield, DAY_COUNT, ql.Continuous))
    vols = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(REFERENCE, ql.NullCalendar(), vol, DAY_COUNT))
    process = ql.BlackScholesMertonProcess(ql.QuoteHandle(ql.SimpleQuote(spot)), dividends, curve, vols)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if kind == "call" else ql.Option.Put, strike)
    option = ql.EuropeanOption(payoff, ql.EuropeanExercise(date(expiry)))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option.NPV()
