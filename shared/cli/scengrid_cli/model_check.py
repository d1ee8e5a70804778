"""``scengrid model check``: what a model must satisfy before a costly run, each check with a
message that says what to fix.

1. registered: its entry point (group ``scengrid.models``) is installed and loads;
2. params: the model accepts them;
3. factors: the names parse, no duplicates, positive vols, a valid correlation;
4. outputs: on a few thousand generated scenarios, a mapping with ``pnl``, every column a
   1-D real array of one value per scenario, the same columns for every block;
5. finite: no NaN or inf;
6. deterministic: the same shocks twice (and in other slices, and in a fresh instance) give
   the same bits, so that a retried or re-sharded run gives the same results;
7. cost: seconds per scenario on one core (sizing's calibration) and what 1M scenarios would
   take and cost on AWS (the planner's simulation)."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scengrid.errors import InvalidInput, ScengridError, UnknownModel
from scengrid.kernel import CHUNK, evaluate_range
from scengrid.models import load_model
from scengrid.models.base import ScenarioModel
from scengrid.models.registry import model_class, model_package
from scengrid.scenario_sources import open_shocks
from scengrid.spec import GeneratedScenarios

DEFAULT_SCENARIOS = 4_096
PLANNED_SCENARIOS = 1_000_000
FACTOR_KINDS = ("rate", "spread", "equity", "vol", "fx", "commodity", "credit", "inflation")
FACTOR_FORMS = "rate.CCY.TENOR, inflation.CCY.TENOR, fx.CCY, spread.NAME, equity.NAME, vol.NAME, commodity.NAME, credit.NAME"
_NAME = r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*"
_FORMS = {
    "rate": re.compile(r"rate\.[A-Z]{3}\.\d+(\.\d+)?"),
    "inflation": re.compile(r"inflation\.[A-Z]{3}\.\d+(\.\d+)?"),
    "fx": re.compile(r"fx\.[A-Z]{3}"),
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    model: str
    package: str = ""
    checks: list[Check] = field(default_factory=list)
    seconds_per_scenario: float | None = None
    plan_1m: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, problem: str | None, detail: str = "") -> bool:
        self.checks.append(Check(name, problem is None, problem or detail))
        return problem is None

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "package": self.package, "ok": self.ok, "checks": [asdict(c) for c in self.checks],
                "seconds_per_scenario": self.seconds_per_scenario, "plan_1m": self.plan_1m}


class StopChecks(Exception):
    pass


def check_model(name: str, params: Mapping[str, Any], scenarios: int = DEFAULT_SCENARIOS, plan: bool = True) -> CheckReport:
    report = CheckReport(model=name)
    try:
        model = _registered_and_prepared(report, name, params)
        source = GeneratedScenarios(count=scenarios, seed=0)
        names = model.factors.names
        shown = ", ".join(names[:4]) + (f", … ({len(names)} in all)" if len(names) > 4 else "")
        if not report.add("factors", factor_problems(model), f"{shown} parse"):
            return report
        if not report.add("outputs", *_outputs(model, source)):
            return report
        first = evaluate_range(model, source, 0, scenarios)
        report.add("finite", nonfinite(first), "no NaN or inf")
        report.add("deterministic", _determinism(model, first, name, params, source), "the same shocks give the same bits, in any slice")
        if plan and report.ok:
            _cost(report, model, source)
    except StopChecks:
        pass
    return report


def _registered_and_prepared(report: CheckReport, name: str, params: Mapping[str, Any]) -> ScenarioModel:
    try:
        model_class(name)
    except UnknownModel as exc:
        report.add("registered", f"{exc.problem}. Install the package that registers it (pip install -e DIR) in the same "
                   "environment as scengrid: its pyproject.toml needs [project.entry-points.\"scengrid.models\"] "
                   f"{name} = \"module:function_or_class\"")
        raise StopChecks from None
    except Exception as exc:  # noqa: BLE001 (the model's import: user code)
        report.add("registered", f"its entry point does not load: {type(exc).__name__}: {exc}")
        raise StopChecks from None
    report.package = model_package(name)
    report.add("registered", None, f"from {report.package or 'an unknown distribution'}")
    try:
        model = load_model(name, params)
    except InvalidInput as exc:
        report.add("params", f"{exc}")
        raise StopChecks from None
    except Exception as exc:  # noqa: BLE001
        report.add("params", f"preparing the model raised {type(exc).__name__}: {exc}")
        raise StopChecks from None
    report.add("params", None, f"{len(model.factors.names)} factors")
    return model


def factor_problem(name: str) -> str | None:
    """What is wrong with a factor's name, or None."""
    kind, _, rest = name.partition(".")
    if kind not in FACTOR_KINDS:
        close = difflib.get_close_matches(kind, FACTOR_KINDS, n=1)
        hint = f" (did you mean {close[0]}.{rest}?)" if close else ""
        return f"{name!r}: unknown factor kind {kind!r}{hint}"
    form = _FORMS.get(kind, re.compile(rf"{kind}\.{_NAME}"))
    if not form.fullmatch(name):
        return f"{name!r} does not parse as a {kind} factor"
    return None


def factor_problems(model: ScenarioModel) -> str | None:
    factors = model.factors
    names = list(factors.names)
    problems = [p for p in map(factor_problem, names) if p]
    if problems:
        return "; ".join(problems[:5]) + f". Factor names are {FACTOR_FORMS} (docs/models.md, 'Factors')"
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        return f"factors named twice: {', '.join(doubled)}"
    vols = np.asarray(factors.vols, dtype=np.float64)
    bad = [n for n, v in zip(names, vols) if not (np.isfinite(v) and v > 0)]
    if bad:
        return f"a factor's default vol must be positive and finite: {', '.join(bad)}"
    if factors.correlation is not None:
        c = np.asarray(factors.correlation, dtype=np.float64)
        if not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1) or np.linalg.eigvalsh(c).min() < -1e-10:
            return "the correlation must be symmetric, with a unit diagonal, positive semi-definite"
    return None


def _outputs(model: ScenarioModel, source: GeneratedScenarios) -> tuple[str | None, str]:
    """The model's raw columns, block by block, as the kernel gets them (before it slices)."""
    columns: tuple[str, ...] | None = None
    with closing(open_shocks(source, model.factors)) as reader:
        for block in range(0, source.count, CHUNK):
            size = min(CHUNK, source.count - block)
            where = f"scenarios {block}..{block + size - 1}"
            try:
                out = model.evaluate_block(reader.read(block, size), block)
            except ScengridError as exc:
                return str(exc), ""
            except Exception as exc:  # noqa: BLE001 (user code)
                return f"evaluate raised {type(exc).__name__}: {exc} (on {where})", ""
            problem = output_problem(out, size, where)
            if problem:
                return problem, ""
            if columns is None:
                columns = tuple(out)
            elif tuple(out) != columns:
                return f"the columns of {where} are {', '.join(out)}, but {', '.join(columns)} before: return the same columns every time", ""
    assert columns is not None
    return None, f"{', '.join(columns)} (float64, one per scenario) on {source.count:,} scenarios"


def output_problem(out: Any, size: int, where: str) -> str | None:
    if not isinstance(out, Mapping):
        return f"evaluate returned {type(out).__name__} for {where}: return a dict of column name -> array, with 'pnl'"
    if "pnl" not in out:
        return f"no 'pnl' column (got {', '.join(map(str, out)) or 'none'}) for {where}: the P&L must be named 'pnl'"
    for column, values in out.items():
        array = np.asarray(values)
        if not isinstance(column, str) or not column.isidentifier():
            return f"column name {column!r}: use a plain name (letters, digits, _), e.g. pnl_rates"
        if array.dtype.kind not in "fiu":
            return f"column {column!r} has dtype {array.dtype} for {where}: results must be real numbers (float64)"
        if array.shape != (size,):
            return (f"column {column!r} has shape {array.shape} for {where}, {size} scenarios: return one value per scenario "
                    f"(an array of length {size}, the number of rows of shocks)")
    return None


def nonfinite(columns: dict[str, np.ndarray]) -> str | None:
    for column, values in columns.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            return (f"column {column!r} is {values[bad[0]]} for scenario {bad[0]} ({bad.size:,} of {values.size:,} scenarios "
                    "are NaN or inf): guard the formula (a log of a negative, a division by zero) or clip the inputs")
    return None


def _determinism(model: ScenarioModel, first: dict[str, np.ndarray], name: str, params: Mapping[str, Any],
                 source: GeneratedScenarios) -> str | None:
    cut = min(source.count - 1, CHUNK + 357)  # not on a block boundary
    again: list[tuple[str, Callable[[], dict[str, np.ndarray]]]] = [
        ("evaluated again", lambda: evaluate_range(model, source, 0, source.count)),
        ("in a fresh instance", lambda: evaluate_range(load_model(name, params), source, 0, source.count)),
        ("in two other slices", lambda: _concat(evaluate_range(model, source, 0, cut), evaluate_range(model, source, cut, source.count - cut))),
    ]
    for how, compute in again:
        second = compute()
        for column, values in first.items():
            other = second[column]
            differs = np.flatnonzero(values.view(np.uint64) != other.view(np.uint64))
            if differs.size:
                i = differs[0]
                return (f"{column!r} of scenario {i} differs {how} ({values[i]!r} then {other[i]!r}; {differs.size:,} scenarios "
                        "differ): a model must depend on its shocks and params only. Draw random numbers from a generator "
                        "seeded by them, not from the clock or a global generator, and keep no state between calls")
    return None


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _cost(report: CheckReport, model: ScenarioModel, source: GeneratedScenarios) -> None:
    from scengrid import sizing
    from scengrid.plan_parameters import PlanParameters
    from scengrid_cli.planning.plan import plan_run

    started = time.perf_counter()
    per = sizing.calibrate(model, source)
    report.seconds_per_scenario = per
    params = PlanParameters()
    chosen = sizing.size_aws(PLANNED_SCENARIOS, per, None, params)
    plan = plan_run(PLANNED_SCENARIOS, chosen.shard_size, chosen.workers, per, params, chosen.reasons)
    report.plan_1m = {
        "scenarios": PLANNED_SCENARIOS, "shard_size": plan.run.shard_size, "shards": plan.run.shards, "workers": plan.run.tasks,
        "wall_s_mean": round(plan.run.wall_s_mean, 1), "cost_usd_mean": round(plan.run.cost_usd_mean, 4),
        "cost_usd_p90": round(plan.run.cost_usd_p90, 4), "prices_as_of": plan.prices_as_of,
    }
    workers = f"{plan.run.tasks:,} worker{'s' if plan.run.tasks != 1 else ''}"
    report.add("cost", None, (
        f"{per * 1e6:,.1f} µs per scenario on one core (calibrated in {time.perf_counter() - started:.2f} s); 1,000,000 scenarios "
        f"on AWS: {workers} in {plan.run.shards:,} shards, about {plan.run.wall_s_mean:,.0f} s, {_usd(plan.run.cost_usd_mean)} "
        f"(p90 {_usd(plan.run.cost_usd_p90)}; `scengrid plan` for other sizes)"))


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
