"""The PD model's contract: its features, the domain it answers for, and the predict request
and response, the same for the Lambda (direct Invoke and ``POST /predict``) and for the
worker's inline use.

A prediction is the probability that an obligor of a rating defaults within one year, given
a scenario's macro shocks (see ``ground_truth.py`` for the link the model learns). A request
gives its feature rows in one of three forms, all validated here, naming the field at fault:

- ``{"rows": [[rate_shock_bp, spread_shock_bp, equity_return, rating_grade, maturity_years], ...]}``
- ``{"columns": {"rate_shock_bp": [...], ..., "maturity_years": [...]}}``
- ``{"scenarios": {<the three macro columns>}, "obligors": {"rating_grade": [...], "maturity_years": [...]}}``:
  every scenario with every obligor, predictions scenario-major, ``shape`` [scenarios, obligors].
  This is the pipeline's form: the request stays small however many obligors share a scenario.

The response is ``{"predictions": [...], "shape": [...], "model_version": "<sha256>"}``, the
predictions rounded to ``PREDICTION_DECIMALS`` decimals. Lambda takes and returns at most
6 MB, so a request asks for at most ``MAX_PREDICTIONS``: at most 13 bytes each in the
response, they stay under it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator

from scengrid.errors import InvalidInput

FEATURES = ("rate_shock_bp", "spread_shock_bp", "equity_return", "rating_grade", "maturity_years")
SCENARIO_FEATURES = FEATURES[:3]
OBLIGOR_FEATURES = FEATURES[3:]
RATING_GRADES = {"AAA": 1, "AA": 2, "A": 3, "BBB": 4, "BB": 5, "B": 6, "CCC": 7}
# The ranges the model was trained on, and answers for.
DOMAIN: dict[str, tuple[float, float]] = {
    "rate_shock_bp": (-300.0, 300.0),  # parallel shift of the base curve, basis points
    "spread_shock_bp": (-200.0, 1000.0),  # change of credit spreads, basis points
    "equity_return": (-1.0, 0.5),  # log return of the equity market
    "rating_grade": (1.0, 7.0),  # 1 = AAA ... 7 = CCC, whole grades
    "maturity_years": (1 / 12, 100.0),
}
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # a synchronous Lambda invoke: request and response each
MAX_PREDICTIONS = 400_000
MAX_GRID_SCENARIOS = 50_000  # three numbers of at most 26 bytes each: a grid request stays under 4 MB
PREDICTION_DECIMALS = 9

Number = Annotated[float, Field(allow_inf_nan=False)]
Column = Annotated[list[Number], Field(min_length=1, max_length=MAX_PREDICTIONS)]
Row = Annotated[list[Number], Field(min_length=len(FEATURES), max_length=len(FEATURES))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Columns(_Strict):
    """Columns of one table: all of the same length."""

    kind: ClassVar[str]

    @model_validator(mode="after")
    def _aligned(self) -> _Columns:
        lengths = {name: len(values) for name, values in self}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name}: {n}" for name, n in lengths.items())
            raise ValueError(f"the {self.kind} columns must have the same length ({listed})")
        return self


class FeatureColumns(_Columns):
    kind: ClassVar[str] = "feature"
    rate_shock_bp: Column
    spread_shock_bp: Column
    equity_return: Column
    rating_grade: Column
    maturity_years: Column


class ScenarioColumns(_Columns):
    kind: ClassVar[str] = "scenario"
    rate_shock_bp: Column
    spread_shock_bp: Column
    equity_return: Column


class ObligorColumns(_Columns):
    kind: ClassVar[str] = "obligor"
    rating_grade: Column
    maturity_years: Column


def check_domain(values: np.ndarray, names: tuple[str, ...], where: Callable[[int, int], str]) -> None:
    """Raise InvalidInput at the first value outside the model's domain (or a grade that is not
    whole), naming it by ``where(row, column)``."""
    low = np.array([DOMAIN[n][0] for n in names])
    high = np.array([DOMAIN[n][1] for n in names])
    bad = (values < low) | (values > high)
    if "rating_grade" in names:
        grade = names.index("rating_grade")
        bad[:, grade] |= values[:, grade] != np.round(values[:, grade])
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        name = names[j]
        what = "a whole grade from 1 (AAA) to 7 (CCC)" if name == "rating_grade" else f"within [{low[j]:g}, {high[j]:g}]"
        raise InvalidInput(where(i, j), f"{values[i, j]:g} is outside the model's domain: {name} must be {what}")


def _columns(model: BaseModel) -> np.ndarray:
    return np.column_stack([np.asarray(values, dtype=np.float64) for _, values in model])


class RowsRequest(_Strict):
    """One row per prediction, its values in the order of FEATURES."""

    rows: list[Row] = Field(min_length=1, max_length=MAX_PREDICTIONS)

    def features(self) -> np.ndarray:
        values = np.asarray(self.rows, dtype=np.float64)
        check_domain(values, FEATURES, lambda i, j: f"rows[{i}][{j}]")
        return values.astype(np.float32)

    def shape(self) -> list[int]:
        return [len(self.rows)]


class ColumnsRequest(_Strict):
    """One list per feature, all of the same length."""

    columns: FeatureColumns

    def features(self) -> np.ndarray:
        values = _columns(self.columns)
        check_domain(values, FEATURES, lambda i, j: f"columns.{FEATURES[j]}[{i}]")
        return values.astype(np.float32)

    def shape(self) -> list[int]:
        return [len(self.columns.rate_shock_bp)]


class GridRequest(_Strict):
    """Every scenario with every obligor: predictions scenario-major, shape [scenarios, obligors]."""

    scenarios: ScenarioColumns
    obligors: ObligorColumns

    @model_validator(mode="after")
    def _bounded(self) -> GridRequest:
        n, g = len(self.scenarios.rate_shock_bp), len(self.obligors.rating_grade)
        if n * g > MAX_PREDICTIONS:
            raise ValueError(f"{n} scenarios x {g} obligors = {n * g:,} predictions; at most {MAX_PREDICTIONS:,} fit a response")
        return self

    def features(self) -> np.ndarray:
        scenarios, obligors = _columns(self.scenarios), _columns(self.obligors)
        check_domain(scenarios, SCENARIO_FEATURES, lambda i, j: f"scenarios.{SCENARIO_FEATURES[j]}[{i}]")
        check_domain(obligors, OBLIGOR_FEATURES, lambda i, j: f"obligors.{OBLIGOR_FEATURES[j]}[{i}]")
        return grid_features(scenarios, obligors)

    def shape(self) -> list[int]:
        return [len(self.scenarios.rate_shock_bp), len(self.obligors.rating_grade)]


def grid_features(scenarios: np.ndarray, obligors: np.ndarray) -> np.ndarray:
    """(n·g, 5) float32 rows: scenario s with obligor o at row s·g + o."""
    n, g = scenarios.shape[0], obligors.shape[0]
    rows = np.empty((n * g, len(FEATURES)), dtype=np.float32)
    rows[:, : len(SCENARIO_FEATURES)] = np.repeat(scenarios, g, axis=0)
    rows[:, len(SCENARIO_FEATURES) :] = np.tile(obligors, (n, 1))
    return rows


class PredictResponse(BaseModel):
    predictions: list[float] = Field(description="probabilities of default, in the order of the rows (scenario-major for a grid)")
    shape: list[int] = Field(description="[rows], or [scenarios, obligors] for a grid")
    model_version: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the model file that predicted")


def _form(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in (("rows", "rows"), ("columns", "columns"), ("scenarios", "grid"), ("obligors", "grid")):
            if key in value:
                return tag
    return None


PredictRequest = Annotated[
    Annotated[RowsRequest, Tag("rows")] | Annotated[ColumnsRequest, Tag("columns")] | Annotated[GridRequest, Tag("grid")],
    Discriminator(_form, custom_error_type="predict_form", custom_error_message="give rows, columns, or scenarios with obligors"),
]
_REQUEST = TypeAdapter(PredictRequest)


def parse_request(payload: Any) -> RowsRequest | ColumnsRequest | GridRequest:
    """The request a payload (a dict, or JSON text) carries; InvalidInput naming the first bad field."""
    try:
        if isinstance(payload, (str, bytes)):
            return _REQUEST.validate_json(payload)
        return _REQUEST.validate_python(payload)
    except ValidationError as exc:
        raise _invalid(exc) from None


def request_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON schema of a request (the three forms), its definitions under ``$defs``."""
    return _REQUEST.json_schema(ref_template=ref_template)


def _invalid(exc: ValidationError) -> InvalidInput:
    error = exc.errors()[0]
    loc = list(error["loc"])
    if loc and loc[0] in ("rows", "columns", "grid"):
        loc = loc[1:]  # the union's tag, not a field
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "body"
    problem = error["msg"].removeprefix("Value error, ")
    if error["type"] == "json_invalid":
        field, problem = "body", f"not JSON ({error['msg']})"
    elif len(loc) == 2 and loc[0] == "rows" and error["type"] in ("too_short", "too_long"):
        given = error.get("ctx", {}).get("actual_length", "another number of")
        problem = f"{given} features given; a row has {len(FEATURES)}: {', '.join(FEATURES)}"
    return InvalidInput(field, problem)
