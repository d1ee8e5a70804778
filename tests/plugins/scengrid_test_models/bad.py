"""Models that ``scengrid model check`` must refuse, one flaw each (tests/unit/test_model_check.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from scengrid.models import FactorSet, ScenarioModel, scenario_function
from scengrid.models.linear import LinearModel

FACTORS = {"equity.SPX": 0.012, "rate.USD.5": 0.0007}


class NondeterministicModel(LinearModel):
    """Adds noise from an unseeded generator: every evaluation differs."""

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        pnl = super().evaluate(shocks)["pnl"]
        return {"pnl": pnl + np.random.default_rng().normal(0.0, 1.0, pnl.shape[0])}


@scenario_function(factors=FACTORS)
def nan_on_crashes(shock: Mapping[str, float]) -> float:
    """NaN where the index falls more than 2.5%: a formula without a guard."""
    return float("nan") if shock["equity.SPX"] < -0.025 else 1e6 * math.expm1(shock["equity.SPX"])


class WrongLengthModel(LinearModel):
    """Drops the last scenario of every block."""

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        return {"pnl": super().evaluate(shocks)["pnl"][:-1]}


@scenario_function(factors=FACTORS)
def no_pnl(shock: Mapping[str, float]) -> Mapping[str, float]:
    """Names its P&L 'value', not 'pnl'."""
    return {"value": 1e6 * shock["equity.SPX"]}


@scenario_function(factors=FACTORS)
def unknown_factor(shock: Mapping[str, float]) -> float:
    """Reads a factor it did not declare (a typo)."""
    return 1e6 * shock["equity.SPXX"]


class MisnamedFactorModel(ScenarioModel):
    """Declares a factor whose kind is misspelt."""

    @property
    def factors(self) -> FactorSet:
        return FactorSet(("eqity.SPX", "rate.USD.5"), np.array([0.012, 0.0007]))

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        return {"pnl": shocks @ np.array([1e6, -4e7])}
