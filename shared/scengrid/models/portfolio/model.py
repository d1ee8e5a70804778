"""The reference model: full revaluation of a multi-asset portfolio under factor shocks.

Params: ``{"portfolio": P}`` where P is a sample (``{"sample": {"positions": N, "seed": S}}``),
an ``s3://`` URI or a local path of a portfolio JSON, or the portfolio itself (small ones
only: params travel in every work message). Without params it is the sample of 200
positions, seed 7. An optional ``"credit_overlay": {"lgd": 0.6, "mode": "lambda"|"inline"}``
adds the bonds' expected credit loss under each scenario, ``pnl_default`` (see credit.py).

Result columns, in the base currency: ``pnl`` and its attribution ``pnl_rates``,
``pnl_credit`` (bonds revalued with and without the spread shift), ``pnl_equity``,
``pnl_options`` and ``pnl_fx`` (the translation of every foreign position, at its shocked
local value, plus fx cash). They add up to ``pnl``: for a position worth V in a currency with
rate f, V1·f1 - V0·f0 = (V1 - V0)·f0 + V1·(f1 - f0). With the overlay, ``pnl_default`` is one
more of them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scengrid.errors import InvalidInput
from scengrid.models.base import FactorSet, ScenarioModel, ShardOutput
from scengrid.models.portfolio.bonds import BondBook, sum_work
from scengrid.models.portfolio.contract import Portfolio, parse_portfolio
from scengrid.models.portfolio.credit import CreditLossOverlay, parse_overlay
from scengrid.models.portfolio.delta_one import EquityBook, cash_by_currency
from scengrid.models.portfolio.factors import default_factor_set, factor_index
from scengrid.models.portfolio.options import OptionBook
from scengrid.models.portfolio.sample import sample_portfolio
from scengrid.user_files import read_user_file

DEFAULT_SAMPLE = {"positions": 200, "seed": 7}
PARAM = "model.params.portfolio"


class SampleRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    positions: int = Field(ge=1, le=100_000)
    seed: int = Field(ge=0, lt=2**63)


def load_portfolio(params: Mapping[str, Any]) -> Portfolio:
    """The portfolio that the model's params name (see the module's docstring)."""
    unknown = sorted(set(params) - {"portfolio", "credit_overlay"})
    if unknown:
        raise InvalidInput(f"model.params.{unknown[0]}", "unknown parameter; the portfolio model takes 'portfolio' and 'credit_overlay'")
    given = params.get("portfolio", {"sample": DEFAULT_SAMPLE})
    if isinstance(given, str):
        return parse_portfolio(_json(read_user_file(given, PARAM), given), field=PARAM)
    if isinstance(given, dict) and set(given) == {"sample"}:
        try:
            ref = SampleRef.model_validate(given["sample"])
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join([f"{PARAM}.sample", *(str(p) for p in problem["loc"])])
            raise InvalidInput(where, f"{problem['msg']} (a sample is {{\"positions\": N, \"seed\": S}})") from None
        return parse_portfolio(sample_portfolio(ref.positions, ref.seed), field=PARAM)
    if isinstance(given, dict):
        return parse_portfolio(given, field=PARAM)
    raise InvalidInput(PARAM, "give a sample ({\"sample\": {...}}), a URI or path of a portfolio JSON, or the portfolio")


def _json(body: bytes, uri: str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(PARAM, f"{uri} is not JSON ({exc})") from None


class PortfolioModel(ScenarioModel):
    """Prepared once per process (books of bonds, equities, options and cash, with their base
    values); ``evaluate`` revalues a block of scenarios with array code only."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.portfolio = load_portfolio(params)
        index = factor_index(self.portfolio)
        self._factors = default_factor_set(self.portfolio, index)
        self.currencies = [self.portfolio.base_currency, *self.portfolio.fx]
        self.fx_rates = np.array([self.portfolio.fx_rate(ccy) for ccy in self.currencies])
        self._fx_columns = np.array([index.fx_columns[ccy] for ccy in self.currencies[1:]], dtype=np.int64)
        self.bonds = BondBook(self.portfolio, index, self.currencies)
        self.equities = EquityBook(self.portfolio, index, self.currencies)
        self.options = OptionBook(self.portfolio, index, self.currencies)
        self.base_value_by_currency = (
            self.bonds.base_value_by_currency
            + self.equities.base_value_by_currency
            + self.options.base_value_by_currency
            + cash_by_currency(self.portfolio, self.currencies)
        )
        self.base_value = float(self.base_value_by_currency @ self.fx_rates)
        self.credit: CreditLossOverlay | None = None
        if "credit_overlay" in params:
            bond_fx = np.array([self.portfolio.fx_rate(b.currency) for b in self.portfolio.bonds()])
            self.credit = CreditLossOverlay(parse_overlay(params["credit_overlay"]), self.portfolio, index, self.bonds.base_values * bond_fx)

    @property
    def factors(self) -> FactorSet:
        return self._factors

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        shocks = np.asarray(shocks, dtype=np.float64)
        if shocks.ndim != 2 or shocks.shape[1] != len(self._factors.names):
            raise ValueError(f"shocks must be (n, {len(self._factors.names)}), one column per factor; got {shocks.shape}")
        bonds, rates = self.bonds.pnl(shocks)
        equity = self.equities.pnl(shocks)
        options = self.options.pnl(shocks)
        fx_growth = np.zeros((shocks.shape[0], len(self.currencies)))
        fx_growth[:, 1:] = np.exp(shocks[:, self._fx_columns]) - 1.0
        shocked_local = bonds + equity + options + self.base_value_by_currency
        columns = {
            "pnl_rates": rates @ self.fx_rates,
            "pnl_credit": (bonds - rates) @ self.fx_rates,
            "pnl_equity": equity @ self.fx_rates,
            "pnl_options": options @ self.fx_rates,
            "pnl_fx": (shocked_local * fx_growth) @ self.fx_rates,
        }
        total = columns["pnl_rates"] + columns["pnl_credit"] + columns["pnl_equity"] + columns["pnl_options"] + columns["pnl_fx"]
        if self.credit is not None:
            columns.update(self.credit.scenario_features(shocks))
        return {"pnl": total, **columns}

    def finish_shard(self, columns: dict[str, np.ndarray]) -> ShardOutput:
        """With the credit overlay: one batched PD request for the shard, then ``pnl_default``."""
        if self.credit is None:
            return ShardOutput(columns)
        return self.credit.finish_shard(columns)

    def work(self) -> dict[str, int]:
        """Floating-point operations per scenario, for benchmarks: the matrix products' 2·m·k
        per output, the elementwise arithmetic, and the exp / normal CDF calls (one each)."""
        currencies = len(self.currencies)
        translation = {"matmul_flops": 12 * currencies, "elementwise_flops": 5 * currencies + 5, "transcendentals": currencies - 1}
        return sum_work([self.bonds.work(), self.equities.work(), self.options.work(), translation])
