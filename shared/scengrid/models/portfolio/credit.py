"""The credit-loss overlay: the bonds' expected loss from defaults under each scenario,

    pnl_default = -Σ_bonds PD(scenario, rating, maturity) · LGD · exposure

with the PD from the PD model (``scengrid.inference``: the inference Lambda, or the same loader
inline), LGD from the params and the exposure the bond's value today in the base currency.
``pnl_default`` is a result column and is added into ``pnl``, so the attribution columns still
add up to ``pnl`` and VaR and ES include the credit loss. The PD is a one-year PD: the column
is the loss the scenario implies over the PD's horizon, not over the scenario's own.

The model sees three macro features per scenario, from the shocks: ``rate_shock_bp`` (the
mean shift of the base currency's curve nodes), ``spread_shock_bp`` (the mean shift of the
ratings' spreads) and ``equity_return`` (the mean equity log return; 0 without equities),
clipped to the model's domain (beyond it the PD is held at the edge's).

Obligors are grouped: the PD at a bond's maturity is interpolated linearly between the
MATURITY_NODES (flat outside them), so each bond's LGD·exposure is split between the groups
(grade, node) on either side of its maturity with the interpolation weights. A shard then
needs PDs for its scenarios times at most 7 grades x 14 nodes, whatever the number of bonds,
and the loss is one matrix-vector product."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scengrid.errors import InvalidInput
from scengrid.inference.contract import DOMAIN, RATING_GRADES, SCENARIO_FEATURES
from scengrid.inference.providers import PdProvider, pd_provider
from scengrid.models.base import ShardOutput
from scengrid.models.portfolio.contract import Portfolio
from scengrid.models.portfolio.factors import FactorIndex

PARAM = "model.params.credit_overlay"
FEATURE_PREFIX = "pd_feature."
MATURITY_NODES = np.array([1 / 12, 0.25, 0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 100])
BP = 1e4


class CreditOverlayParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lgd: float = Field(0.6, gt=0, le=1, description="loss given default, a share of the exposure")
    mode: Literal["lambda", "inline"] = Field("lambda", description="PDs from the inference Lambda, or from the loader in the worker")


def parse_overlay(raw: Any) -> CreditOverlayParams:
    try:
        return CreditOverlayParams.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join([PARAM, *(str(p) for p in error["loc"])])
        raise InvalidInput(where, f"{error['msg']} (the overlay is {{\"lgd\": 0.6, \"mode\": \"lambda\" or \"inline\"}})") from None


@dataclass(frozen=True)
class ObligorGroups:
    features: np.ndarray  # (g, 2): rating_grade, maturity_years (a node)
    loss_weights: np.ndarray  # (g,): LGD · exposure, in the base currency, split by the interpolation weights


def obligor_groups(portfolio: Portfolio, values: np.ndarray, lgd: float) -> ObligorGroups:
    """The (grade, maturity node) groups of the bonds, ``values`` their values in the base currency."""
    bonds = portfolio.bonds()
    unknown = [b for b in bonds if b.rating not in RATING_GRADES]
    if unknown:
        raise InvalidInput(f"model.params.portfolio.positions[{unknown[0].id}].rating",
                           f"the credit overlay's PD model has no grade for {unknown[0].rating!r} (it knows {', '.join(RATING_GRADES)})")
    grade = np.array([RATING_GRADES[b.rating] for b in bonds], dtype=np.int64)
    maturity = np.clip([b.maturity for b in bonds], MATURITY_NODES[0], MATURITY_NODES[-1])
    upper = np.clip(np.searchsorted(MATURITY_NODES, maturity), 1, len(MATURITY_NODES) - 1)
    lower = upper - 1
    weight_upper = (maturity - MATURITY_NODES[lower]) / (MATURITY_NODES[upper] - MATURITY_NODES[lower])
    loss = lgd * values
    slots = len(RATING_GRADES) * len(MATURITY_NODES)
    keys = (grade - 1) * len(MATURITY_NODES)
    weights = np.bincount(keys + lower, weights=loss * (1.0 - weight_upper), minlength=slots)
    weights += np.bincount(keys + upper, weights=loss * weight_upper, minlength=slots)
    used = np.flatnonzero(weights)
    features = np.column_stack([used // len(MATURITY_NODES) + 1.0, MATURITY_NODES[used % len(MATURITY_NODES)]])
    return ObligorGroups(features, weights[used])


class CreditLossOverlay:
    """Prepared with the model: the factor columns of the macro features and the obligor groups."""

    def __init__(self, params: CreditOverlayParams, portfolio: Portfolio, index: FactorIndex, bond_values: np.ndarray) -> None:
        self.params = params
        self.groups = obligor_groups(portfolio, bond_values, params.lgd)
        self._rates = index.rate_columns[portfolio.base_currency] if portfolio.base_currency in index.rate_columns else np.zeros(0, np.int64)
        self._spreads = np.array(sorted(index.spread_columns.values()), dtype=np.int64)
        self._equities = np.array(sorted(index.equity_columns.values()), dtype=np.int64)
        self._names = tuple(FEATURE_PREFIX + name for name in SCENARIO_FEATURES)
        self._low = np.array([DOMAIN[n][0] for n in SCENARIO_FEATURES])
        self._high = np.array([DOMAIN[n][1] for n in SCENARIO_FEATURES])
        self._provider: PdProvider | None = None

    @staticmethod
    def _mean(shocks: np.ndarray, columns: np.ndarray) -> np.ndarray:
        return shocks[:, columns].mean(axis=1) if columns.size else np.zeros(shocks.shape[0])

    def scenario_features(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        """The macro features of a block of scenarios, as extra result columns until finish_shard."""
        values = (BP * self._mean(shocks, self._rates), BP * self._mean(shocks, self._spreads), self._mean(shocks, self._equities))
        return dict(zip(self._names, values))

    def finish_shard(self, columns: dict[str, np.ndarray]) -> ShardOutput:
        """One batched PD request for the shard; ``pnl_default`` added to the columns and to ``pnl``."""
        features = np.clip(np.column_stack([columns.pop(name) for name in self._names]), self._low, self._high)
        if self._provider is None:
            self._provider = pd_provider(self.params.mode)
        prediction = self._provider.predict_grid(features, self.groups.features)
        default = -(prediction.pd @ self.groups.loss_weights)
        columns["pnl_default"] = default
        columns["pnl"] = columns["pnl"] + default
        return ShardOutput(columns, {"model_version": prediction.model_version})
