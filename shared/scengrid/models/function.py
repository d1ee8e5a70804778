"""A model that is a plain per-scenario function: ``@scenario_function`` adapts it to the
class API, so that an entry point may name the function itself.

    @scenario_function(factors={"rate.USD.5": 0.001, "equity.SPX": 0.012})
    def price(shock: Mapping[str, float]) -> float | Mapping[str, float]: ...

The adapter calls the function once per scenario, inside the worker's model processes, with
a fresh dict of factor name -> shock. A float is the scenario's P&L; a mapping must hold
``pnl`` and its other keys become result columns (the same keys for every scenario). This is
the one per-scenario Python loop in scengrid, and it is user code: the adapter keeps its own
part small (one dict and one call per scenario, results stored into preallocated arrays). The
vectorised class API stays the fast path."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from scengrid.errors import InvalidInput, ModelFailure
from scengrid.models.base import FactorSet, ScenarioModel

ATTRIBUTE = "__scengrid_model__"
Params = type[BaseModel] | Mapping[str, Any] | None


@dataclass(frozen=True)
class FunctionSpec:
    """What ``@scenario_function`` declared about a function."""

    factors: FactorSet
    params: Params


def scenario_function(
    factors: Mapping[str, float],
    correlation: Sequence[Sequence[float]] | np.ndarray | None = None,
    params: Params = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a per-scenario pricing function as a scengrid model.

    ``factors``: factor name -> the scenario generator's default one-day vol (positive).
    ``correlation``: optional F x F correlation of the factors, in the order of ``factors``
    (symmetric, unit diagonal, positive semi-definite); independent factors without it.
    ``params``: optional. A pydantic model class validates the run's ``model.params`` and the
    function is called as ``fn(shock, params)`` with the validated instance; a mapping gives
    the defaults of a plain dict of params (an unknown key is an error). Without it the model
    takes no params. The function itself is returned unchanged (it can still be called as is)."""
    factor_set = _factor_set(factors, correlation)
    if params is not None and not (isinstance(params, Mapping) or (isinstance(params, type) and issubclass(params, BaseModel))):
        raise TypeError("params= takes a pydantic model class or a mapping of defaults")

    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise TypeError("@scenario_function decorates a function")
        setattr(fn, ATTRIBUTE, FunctionSpec(factor_set, params))
        return fn

    return declare


def _factor_set(factors: Mapping[str, float], correlation: Any) -> FactorSet:
    if not isinstance(factors, Mapping) or not factors:
        raise TypeError("factors= takes a non-empty mapping of factor name -> one-day vol")
    names = tuple(factors)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise TypeError(f"factor names must be non-empty strings: {bad!r}")
    vols = np.array([float(factors[n]) for n in names], dtype=np.float64)
    wrong = [n for n, v in zip(names, vols) if not (math.isfinite(v) and v > 0)]
    if wrong:
        raise ValueError(f"a factor's vol must be positive and finite: {', '.join(wrong)}")
    if correlation is None:
        return FactorSet(names, vols)
    matrix = np.asarray(correlation, dtype=np.float64)
    size = len(names)
    if matrix.shape != (size, size):
        raise ValueError(f"correlation= must be {size} x {size} (one row and column per factor, in the order of factors=), not {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix, matrix.T, atol=1e-12):
        raise ValueError("correlation= must be symmetric and finite")
    if not np.allclose(np.diag(matrix), 1.0, atol=1e-12):
        raise ValueError("correlation= must have a unit diagonal")
    if np.linalg.eigvalsh(matrix).min() < -1e-10:
        raise ValueError("correlation= must be positive semi-definite")
    return FactorSet(names, vols, matrix)


def function_spec(obj: Any) -> FunctionSpec | None:
    """What ``@scenario_function`` declared, if ``obj`` is such a function."""
    spec = getattr(obj, ATTRIBUTE, None)
    return spec if isinstance(spec, FunctionSpec) else None


def _validated_params(spec: FunctionSpec, params: Mapping[str, Any]) -> Any:
    if spec.params is None:
        if params:
            raise InvalidInput("model.params", f"this model takes no params, but got {', '.join(sorted(params))}")
        return None
    if isinstance(spec.params, Mapping):
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise InvalidInput("model.params", f"unknown {', '.join(unknown)} (known: {', '.join(sorted(spec.params)) or 'none'})")
        return {**spec.params, **params}
    try:
        return spec.params.model_validate(dict(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"model.params.{where}" if where else "model.params", first["msg"]) from None


class FunctionModel(ScenarioModel):
    """The class API around a ``@scenario_function``: ``function_model_class`` makes one
    subclass per function."""

    function: Callable[..., Any]
    spec: FunctionSpec

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        validated = _validated_params(self.spec, self.params)
        fn = type(self).function
        self._call = fn if validated is None else (lambda shock, _p=validated, _f=fn: _f(shock, _p))

    @property
    def factors(self) -> FactorSet:
        return self.spec.factors

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        return self.evaluate_block(shocks, 0)

    def evaluate_block(self, shocks: np.ndarray, first: int) -> dict[str, np.ndarray]:
        """Scenarios ``first .. first+n-1``, one call each. Errors name the scenario id."""
        call, names = self._call, self.spec.factors.names
        results: list[Any] = [None] * shocks.shape[0]
        i = 0
        try:
            for i, row in enumerate(shocks.tolist()):  # Python floats: the same bits as the array's
                results[i] = call(dict(zip(names, row)))
        except Exception as exc:  # user code: any error, named by its scenario
            raise ModelFailure(f"{_name(self)} failed on scenario {first + i}: {_describe(exc, names)}") from exc
        return _columns(results, first, self)

    def __reduce__(self) -> tuple[Any, ...]:  # the generated class is not importable by name
        return (_rebuild, (type(self).function, self.params))


def _rebuild(fn: Callable[..., Any], params: Mapping[str, Any]) -> FunctionModel:
    return function_model_class(fn)(params)


def _name(model: FunctionModel) -> str:
    fn = type(model).function
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _describe(exc: Exception, names: tuple[str, ...]) -> str:
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) and exc.args[0] not in names:
        from difflib import get_close_matches

        close = get_close_matches(exc.args[0], names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (f"KeyError: the function read shock[{exc.args[0]!r}], which is not one of its factors "
                f"({', '.join(names)}){hint} Add it to factors= or fix the name")
    return f"{type(exc).__name__}: {exc}"


def _columns(results: list[Any], first: int, model: FunctionModel) -> dict[str, np.ndarray]:
    """The results as float64 columns: floats are the P&L; mappings give ``pnl`` and more."""
    if not results:
        return {"pnl": np.empty(0, dtype=np.float64)}
    if isinstance(results[0], Mapping):
        return _mapping_columns(results, first, model)
    return {"pnl": _floats(results, lambda i, value: (
        f"{_name(model)} returned {_shown(value)} for scenario {first + i}: return a float (the P&L) "
        "or a mapping of column -> float holding 'pnl'"))}


def _floats(values: list[Any], problem: Callable[[int, Any], str]) -> np.ndarray:
    """float64 of real numbers only: numpy alone would take "1.5" and None (as NaN)."""
    if not set(map(type, values)) <= _REAL_TYPES:
        bad = next(((i, v) for i, v in enumerate(values) if not _is_real(v)), None)
        if bad is not None:
            raise ModelFailure(problem(*bad))
    return np.fromiter(values, dtype=np.float64, count=len(values))


def _mapping_columns(results: list[Any], first: int, model: FunctionModel) -> dict[str, np.ndarray]:
    keys = tuple(results[0])
    if "pnl" not in keys:
        raise ModelFailure(f"{_name(model)} returned a mapping without 'pnl' for scenario {first} (keys: {', '.join(map(str, keys))}): "
                           "a returned mapping must hold the P&L under 'pnl'")
    same = set(keys)
    try:
        odd = next((i for i, result in enumerate(results) if result.keys() != same), None)
    except AttributeError:
        odd = next(i for i, result in enumerate(results) if not isinstance(result, Mapping))
    if odd is not None:
        raise ModelFailure(_mapping_problem(results[odd], keys, first + odd, model))
    columns = {}
    for key in ("pnl", *(k for k in keys if k != "pnl")):
        columns[key] = _floats([result[key] for result in results], lambda i, value, key=key: (
            f"{_name(model)} returned {_shown(value)} as {key!r} for scenario {first + i}: every column's value must be a real number"))
    return columns


def _mapping_problem(result: Any, keys: tuple[str, ...], scenario: int, model: FunctionModel) -> str:
    if not isinstance(result, Mapping):
        return f"{_name(model)} returned {_shown(result)} for scenario {scenario}, but a mapping for scenario(s) before it: return the same kind for every scenario"
    return (f"{_name(model)} returned columns {', '.join(map(str, result))} for scenario {scenario}, but "
            f"{', '.join(keys)} before it: return the same keys for every scenario")


_REAL_TYPES = frozenset({float, int, np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                         np.uint64, np.uint32, np.uint16, np.uint8})


def _is_real(value: Any) -> bool:
    return type(value) in _REAL_TYPES or (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_))


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


_classes: dict[Callable[..., Any], type[FunctionModel]] = {}


def function_model_class(fn: Callable[..., Any]) -> type[FunctionModel]:
    """The ScenarioModel subclass of a ``@scenario_function`` (one per function)."""
    found = _classes.get(fn)
    if found is None:
        spec = function_spec(fn)
        if spec is None:
            raise TypeError(f"{fn!r} is not decorated with @scenario_function")
        name = getattr(fn, "__name__", "function")
        found = _classes[fn] = type(f"FunctionModel[{name}]", (FunctionModel,), {"function": staticmethod(fn), "spec": spec})
    return found
