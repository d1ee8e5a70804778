"""Risk measures of a P&L vector. VaR is a loss (positive when the quantile is a loss)."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

WORST_N = 10


class RiskSummary(BaseModel):
    scenarios: int
    var_95: float
    var_99: float
    es_975: float
    mean: float
    std: float
    worst: list[dict[str, float | int]]


def _tail(level: float) -> float:
    """1 - level as the probability a user writes (0.01 for 0.99, not 0.010000000000000009)."""
    return round(1.0 - level, 12)


def value_at_risk(pnl: np.ndarray, level: float) -> float:
    """Loss not exceeded with probability ``level``: minus numpy's (linear) quantile at 1 - level."""
    return float(-np.quantile(pnl, _tail(level)))


def expected_shortfall(pnl: np.ndarray, level: float) -> float:
    """Mean loss over the worst ceil((1 - level) * n) scenarios."""
    k = max(1, math.ceil(_tail(level) * pnl.shape[0] - 1e-9))
    tail = np.partition(pnl, k - 1)[:k]
    return float(-tail.mean())


def tail_indices(pnl: np.ndarray, level: float) -> np.ndarray:
    """Indices of the worst ceil((1 - level) * n) scenarios: the tail ES averages over."""
    k = max(1, math.ceil(_tail(level) * pnl.shape[0] - 1e-9))
    return np.argpartition(pnl, k - 1)[:k]


def summarise(scenario_ids: np.ndarray, pnl: np.ndarray) -> RiskSummary:
    worst_idx = np.argsort(pnl, kind="stable")[:WORST_N]
    return RiskSummary(
        scenarios=int(pnl.shape[0]),
        var_95=value_at_risk(pnl, 0.95),
        var_99=value_at_risk(pnl, 0.99),
        es_975=expected_shortfall(pnl, 0.975),
        mean=float(pnl.mean()),
        std=float(pnl.std(ddof=1)) if pnl.shape[0] > 1 else 0.0,
        worst=[{"scenario_id": int(scenario_ids[i]), "pnl": float(pnl[i])} for i in worst_idx],
    )
