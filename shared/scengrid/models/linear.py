"""A linear sensitivity model: P&L = shocks · exposures, one matrix-vector product."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from scengrid.models.base import FactorSet, ScenarioModel

DEFAULT_FACTORS: dict[str, tuple[float, float]] = {
    # factor: (exposure in base currency per unit shock, daily vol of the shock)
    "equity.SPX": (2.0e6, 0.012),
    "equity.SX5E": (1.2e6, 0.013),
    "rate.USD.5": (-4.5e7, 0.0007),
    "rate.EUR.5": (-2.0e7, 0.0006),
    "spread.BBB": (-1.5e7, 0.0004),
    "fx.EUR": (8.0e5, 0.006),
    "vol.SPX": (3.0e5, 0.01),
    "commodity.WTI": (4.0e5, 0.02),
}


class LinearParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exposures: dict[str, float] = Field(
        default_factory=lambda: {k: v[0] for k, v in DEFAULT_FACTORS.items()}
    )
    vols: dict[str, float] = Field(default_factory=lambda: {k: v[1] for k, v in DEFAULT_FACTORS.items()})

    @field_validator("vols")
    @classmethod
    def _positive(cls, vols: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in vols.items() if not v > 0]
        if bad:
            raise ValueError(f"vols must be positive: {', '.join(bad)}")
        return vols


class LinearModel(ScenarioModel):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        parsed = LinearParams.model_validate(params)
        missing = sorted(set(parsed.exposures) - set(parsed.vols))
        if missing:
            raise ValueError(f"exposures name factors without a vol: {', '.join(missing)}")
        names = tuple(parsed.exposures)
        self._factors = FactorSet(names, np.array([parsed.vols[n] for n in names], dtype=np.float64))
        self._exposures = np.array([parsed.exposures[n] for n in names], dtype=np.float64)

    @property
    def factors(self) -> FactorSet:
        return self._factors

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        return {"pnl": shocks @ self._exposures}
