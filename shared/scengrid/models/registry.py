"""Models are found by name through entry points; a request never carries an import path."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from scengrid.errors import InvalidInput, UnknownModel
from scengrid.models.base import ScenarioModel
from scengrid.models.function import function_model_class, function_spec

ENTRY_POINT_GROUP = "scengrid.models"


@lru_cache(maxsize=1)
def _registered() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_models() -> list[str]:
    return sorted(_registered())


def model_class(name: str) -> type[ScenarioModel]:
    found = _registered().get(name)
    if found is None:
        raise UnknownModel(name, available_models())
    cls = found.load()
    if function_spec(cls) is not None:
        return function_model_class(cls)
    if not (isinstance(cls, type) and issubclass(cls, ScenarioModel)):
        raise TypeError(
            f"entry point {name!r} ({found.value}) names neither a ScenarioModel subclass nor a function "
            "decorated with @scengrid.models.scenario_function"
        )
    return cls


def model_package(name: str) -> str:
    """``"<distribution> <version>"`` of the package whose entry point registers the model
    (e.g. ``"acme-risk 1.2.0"``), or "" when it cannot be told."""
    found = _registered().get(name)
    dist = getattr(found, "dist", None)
    if dist is None:
        return ""
    return f"{dist.metadata['Name']} {dist.version}"


def load_model(name: str, params: Mapping[str, Any]) -> ScenarioModel:
    """Instantiate a registered model; parameter errors become InvalidInput naming the field."""
    cls = model_class(name)
    try:
        return cls(params)
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput("model.params", str(exc)) from exc
