"""The portfolio JSON contract: market data and positions, as pydantic models.

``parse_portfolio`` turns every problem into an InvalidInput that names the position (by its
id) and the field, e.g. ``positions[b7].notional: Input should be greater than 0``. Shapes and
ranges are checked by the models; references between them (a bond's rating must have a
spread, its currency a curve and an fx rate, ...) by ``_reference_problems``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scengrid.errors import InvalidInput

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$")]  # part of factor names: no dots
Positive = Annotated[float, Field(gt=0)]
_SHOWN_PROBLEMS = 5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Curve(_Strict):
    """Continuously compounded zero rates at tenors (years); linear in between, flat outside."""

    tenors: list[Positive] = Field(min_length=1, max_length=100)
    zero_rates: list[float] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _matching_increasing(self) -> Curve:
        if len(self.tenors) != len(self.zero_rates):
            raise ValueError(f"{len(self.tenors)} tenors but {len(self.zero_rates)} zero_rates; give one rate per tenor")
        if any(b <= a for a, b in zip(self.tenors, self.tenors[1:])):
            raise ValueError("tenors must be strictly increasing")
        return self


class Equity(_Strict):
    spot: Positive
    vol: Positive
    dividend_yield: float = 0.0
    currency: Currency


class Bond(_Strict):
    id: str = Field(min_length=1, max_length=64)
    type: Literal["bond"]
    currency: Currency
    notional: Positive
    coupon: float = Field(ge=0)
    frequency: Literal[1, 2, 4, 12]
    maturity: float = Field(gt=0, le=100)
    rating: Name


class EquityPosition(_Strict):
    id: str = Field(min_length=1, max_length=64)
    type: Literal["equity"]
    underlying: Name
    quantity: float


class OptionPosition(_Strict):
    id: str = Field(min_length=1, max_length=64)
    type: Literal["option"]
    underlying: Name
    kind: Literal["call", "put"]
    strike: Positive
    expiry: float = Field(gt=0, le=100)
    quantity: float


class FxPosition(_Strict):
    id: str = Field(min_length=1, max_length=64)
    type: Literal["fx"]
    currency: Currency
    amount: float


Position = Annotated[Bond | EquityPosition | OptionPosition | FxPosition, Field(discriminator="type")]


class Portfolio(_Strict):
    base_currency: Currency
    curves: dict[Currency, Curve]
    spreads: dict[Name, float] = Field(default_factory=dict)
    equities: dict[Name, Equity] = Field(default_factory=dict)
    fx: dict[Currency, Positive] = Field(default_factory=dict, description="base currency per unit of each currency")
    positions: list[Position] = Field(min_length=1, max_length=1_000_000)

    @field_validator("fx")
    @classmethod
    def _fx_is_not_the_base(cls, fx: dict[str, float], info: Any) -> dict[str, float]:
        base = info.data.get("base_currency")
        if base in fx:
            raise ValueError(f"{base} is the base currency; its rate is 1 by definition, leave it out")
        return fx

    def bonds(self) -> list[Bond]:
        return [p for p in self.positions if isinstance(p, Bond)]

    def equity_positions(self) -> list[EquityPosition]:
        return [p for p in self.positions if isinstance(p, EquityPosition)]

    def options(self) -> list[OptionPosition]:
        return [p for p in self.positions if isinstance(p, OptionPosition)]

    def fx_positions(self) -> list[FxPosition]:
        return [p for p in self.positions if isinstance(p, FxPosition)]

    def fx_rate(self, currency: str) -> float:
        return 1.0 if currency == self.base_currency else self.fx[currency]


def parse_portfolio(raw: Any, field: str = "portfolio") -> Portfolio:
    """A validated Portfolio, or InvalidInput naming the first problem's position and field
    (and listing a few more)."""
    try:
        portfolio = Portfolio.model_validate(raw)
    except ValidationError as exc:
        problems = [(_field_name(raw, err["loc"], field), err["msg"]) for err in exc.errors()]
        raise _invalid(problems) from None
    problems = _reference_problems(portfolio, field)
    if problems:
        raise _invalid(problems)
    return portfolio


def _invalid(problems: list[tuple[str, str]]) -> InvalidInput:
    (first_field, first_problem), rest = problems[0], problems[1:]
    if rest:
        listed = "; ".join(f"{f}: {p}" for f, p in rest[:_SHOWN_PROBLEMS])
        more = f" (and {len(rest) - _SHOWN_PROBLEMS} more)" if len(rest) > _SHOWN_PROBLEMS else ""
        first_problem = f"{first_problem}; also {listed}{more}"
    return InvalidInput(first_field, first_problem)


def _field_name(raw: Any, loc: tuple[Any, ...], field: str) -> str:
    """``positions[<id>].<field>`` for a position (its index when it has no id), else the path."""
    if len(loc) >= 2 and loc[0] == "positions" and isinstance(loc[1], int):
        position = raw["positions"][loc[1]] if isinstance(raw, dict) else None
        name = position.get("id") if isinstance(position, dict) else None
        label = str(name) if isinstance(name, str) and name else f"#{loc[1]}"
        rest = [str(p) for p in loc[2:]]
        if rest and isinstance(position, dict) and rest[0] == position.get("type"):
            rest = rest[1:]  # the union's tag, not a field
        return f"{field}.positions[{label}]" + "".join(f".{p}" for p in (rest or ["type"]))
    return ".".join([field, *(str(p) for p in loc)])


def _reference_problems(portfolio: Portfolio, field: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    def currency_problem(currency: str, needs_curve: bool) -> str | None:
        if needs_curve and currency not in portfolio.curves:
            return f"no curve for {currency} (curves: {', '.join(portfolio.curves) or 'none'})"
        if currency != portfolio.base_currency and currency not in portfolio.fx:
            return f"no fx rate for {currency} (fx: {', '.join(portfolio.fx) or 'none'}; base {portfolio.base_currency})"
        return None

    for name, equity in portfolio.equities.items():
        if problem := currency_problem(equity.currency, needs_curve=False):
            problems.append((f"{field}.equities.{name}.currency", problem))
    seen: set[str] = set()
    for position in portfolio.positions:
        where = f"{field}.positions[{position.id}]"
        if position.id in seen:
            problems.append((f"{where}.id", "the id is used by another position; ids must be unique"))
        seen.add(position.id)
        if isinstance(position, Bond):
            if position.rating not in portfolio.spreads:
                problems.append((f"{where}.rating", f"unknown rating {position.rating!r} (spreads: {', '.join(portfolio.spreads) or 'none'})"))
            if problem := currency_problem(position.currency, needs_curve=True):
                problems.append((f"{where}.currency", problem))
        elif isinstance(position, FxPosition):
            if position.currency == portfolio.base_currency:
                problems.append((f"{where}.currency", f"{position.currency} is the base currency; cash in it has no fx risk"))
            elif problem := currency_problem(position.currency, needs_curve=False):
                problems.append((f"{where}.currency", problem))
        elif position.underlying not in portfolio.equities:
            problems.append((f"{where}.underlying", f"unknown underlying {position.underlying!r} (equities: {', '.join(portfolio.equities) or 'none'})"))
        elif isinstance(position, OptionPosition) and portfolio.equities[position.underlying].currency not in portfolio.curves:
            currency = portfolio.equities[position.underlying].currency
            problems.append((f"{where}.underlying", f"{position.underlying} is in {currency}, which has no curve for the option's rate"))
    return problems
