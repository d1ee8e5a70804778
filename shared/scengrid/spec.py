"""RunSpec: what a user asks for. Validated at the edge; carried in ``run-requested``."""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scengrid.errors import InvalidInput

MAX_SCENARIOS = 100_000_000
MAX_SHARDS = 100_000
AUTO_MIN_SHARD = 1_000
MAX_FACTORS = 1_000
DEFAULT_MODEL = "portfolio"
# A deterministic sample portfolio, named by its size and seed: params stay small, because
# they travel in every work message.
DEFAULT_MODEL_PARAMS: dict[str, Any] = {"portfolio": {"sample": {"positions": 200, "seed": 7}}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Strict):
    """A registered model, by name, with its parameters. Never an import path."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_\-]*$")
    params: dict[str, Any] = Field(default_factory=dict)


class FactorCovariance(_Strict):
    """The covariance of generated shocks, overriding the model's: vols plus an optional
    correlation matrix (identity when absent), or a covariance matrix, over ``factors``.
    Factors of the model that are not listed get no shock."""

    factors: list[str] = Field(min_length=1, max_length=MAX_FACTORS)
    vols: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = None
    correlation: list[list[Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]]] | None = None
    covariance: list[list[Annotated[float, Field(allow_inf_nan=False)]]] | None = None

    @model_validator(mode="after")
    def _one_description(self) -> FactorCovariance:
        n = len(self.factors)
        if len(set(self.factors)) != n:
            raise ValueError("factors must not repeat")
        if (self.covariance is None) == (self.vols is None):
            raise ValueError("give either vols (with an optional correlation) or a covariance matrix")
        if self.correlation is not None and self.vols is None:
            raise ValueError("a correlation needs vols")
        for name, matrix in (("correlation", self.correlation), ("covariance", self.covariance)):
            if matrix is not None and (len(matrix) != n or any(len(row) != n for row in matrix)):
                raise ValueError(f"{name} must be {n} x {n}, one row and column per factor")
        if self.vols is not None and len(self.vols) != n:
            raise ValueError(f"vols must have {n} entries, one per factor")
        return self


class GeneratedScenarios(_Strict):
    """Monte Carlo shocks from a counter-based generator: scenario i depends only on (seed, i).
    Normal, or Student-t with ``df`` degrees of freedom scaled to the same covariance."""

    kind: Literal["generated"] = "generated"
    count: int = Field(gt=0, le=MAX_SCENARIOS)
    seed: int = Field(0, ge=0, lt=2**63)
    distribution: Literal["normal", "student_t"] = "normal"
    df: float | None = Field(None, gt=2, le=1e6, description="degrees of freedom of the Student-t")
    factors: FactorCovariance | None = Field(None, description="overrides the model's vols and correlation")

    @model_validator(mode="after")
    def _df_goes_with_student_t(self) -> GeneratedScenarios:
        if (self.distribution == "student_t") != (self.df is not None):
            raise ValueError("df is needed with distribution student_t, and only then")
        return self


class _FileSource(_Strict):
    uri: str = Field(
        min_length=1, max_length=1024, pattern=r"^(s3://[a-z0-9][a-z0-9.\-]{2,62}/.+|[^:]+)$",
        description="s3://bucket/key or a local path",
    )
    count: int | None = Field(None, gt=0, le=MAX_SCENARIOS, description="filled in from the file when the run is submitted")


class FileScenarios(_FileSource):
    """A Parquet file of scenarios (``scenario_id`` = row number, then one column per factor),
    split into shards by row range."""

    kind: Literal["file"]


class HistoricalScenarios(_FileSource):
    """A Parquet file of historical factor changes (one row per day, one column per factor, an
    optional ``date``). Replayed row by row, or bootstrapped: scenario i takes the row that a
    counter-based draw keyed by (seed, i) picks; then ``count`` is the number of draws."""

    kind: Literal["historical"]
    bootstrap: bool = False
    seed: int = Field(0, ge=0, lt=2**63)
    rows: int | None = Field(None, gt=0, description="rows in the file, filled in when the run is submitted")

    @model_validator(mode="after")
    def _bootstrap_needs_count(self) -> HistoricalScenarios:
        if self.bootstrap and self.count is None:
            raise ValueError("a bootstrap needs count, the number of scenarios to draw")
        return self


class StressScenarios(_FileSource):
    """Named stress scenarios from a JSON file: ``{"scenarios": [{"name": ..., "shocks":
    {factor: shock, ...}}, ...]}``; scenario i is the i-th entry."""

    kind: Literal["stress"]


ScenarioSource = Annotated[
    GeneratedScenarios | FileScenarios | HistoricalScenarios | StressScenarios, Field(discriminator="kind")
]


def _generated_by_default(value: Any) -> Any:
    """A source without ``kind`` is a generated one (the original RunSpec form)."""
    if isinstance(value, dict) and "kind" not in value:
        return {**value, "kind": "generated"}
    return value


def scenario_count(source: ScenarioSource) -> int:
    """The number of scenarios; a file source has one once it was resolved (read)."""
    if source.count is None:
        raise InvalidInput(
            "scenarios.count", f"not known before {source.uri} is read; submit the run (or use scengrid model eval)"
        )
    return source.count


class PlanEstimate(_Strict):
    """What ``scengrid plan`` predicted for the run on AWS, recorded with it (``--submit``)."""

    target: Literal["aws"] = "aws"
    cost_usd_mean: float = Field(ge=0)
    cost_usd_p90: float = Field(ge=0)
    wall_s_mean: float = Field(ge=0)
    wall_s_p90: float = Field(ge=0)
    prices_as_of: str = Field(max_length=200)


class RunSpec(_Strict):
    version: Literal[1] = 1
    model: ModelRef = Field(default_factory=lambda: ModelRef(name=DEFAULT_MODEL, params=copy.deepcopy(DEFAULT_MODEL_PARAMS)))
    scenarios: ScenarioSource
    shard_size: Annotated[int, Field(gt=0)] | Literal["auto"] = Field(
        "auto", description="scenarios per shard, or auto: chosen by the sharder (scengrid.sizing)"
    )
    workers: Annotated[int, Field(ge=1, le=100_000)] | Literal["auto"] = Field(
        "auto", description="worker tasks evaluating shards, or auto: chosen by the sharder (scengrid.sizing)"
    )
    plan: PlanEstimate | None = Field(None, description="the prediction of scengrid plan, kept in the run's summary")
    share: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")] | None = Field(
        None,
        description="the fair-share identifier the run's Batch jobs go under (letters and digits): runs that name the "
        "same share divide that share's part of the capacity; without one, the run is a share of its own. The job "
        "queue's scheduling policy weights some shares (README: Many runs at once)",
    )

    _default_kind = field_validator("scenarios", mode="before")(_generated_by_default)

    @model_validator(mode="after")
    def _shard_bounds(self) -> RunSpec:
        count = self.scenarios.count
        if isinstance(self.shard_size, int) and count is not None and math.ceil(count / self.shard_size) > MAX_SHARDS:
            raise ValueError(f"shard_size {self.shard_size} makes more than {MAX_SHARDS} shards; use a larger one")
        return self

    def shard_count(self) -> int | None:
        """The number of shards when the spec fixes the shard size; None for auto (the sharder decides)."""
        if isinstance(self.shard_size, int):
            return math.ceil(scenario_count(self.scenarios) / self.shard_size)
        return None

    def named_files(self) -> dict[str, str]:
        """The files the spec names, by field: its scenario file and a portfolio given by URI."""
        files = {}
        uri = getattr(self.scenarios, "uri", None)
        if uri is not None:
            files["scenarios.uri"] = uri
        for name, value in self.model.params.items():
            if isinstance(value, str):
                files[f"model.params.{name}"] = value
        return files
