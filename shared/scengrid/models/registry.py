"""Models are found by name through entry points; a request never carries an import path."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from scengrid.errors import InvalidInput, UnknownModel
from scengrid.models.base import ScenarioModel

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
    if not (isinstance(cls, type) and issubclass(cls, ScenarioModel)):
        raise TypeError(f"entry point {name!r} does not name a ScenarioModel subclass")
    return cls


def load_model(name: str, params: Mapping[str, Any]) -> ScenarioModel:
    """Instantiate a registered model; parameter errors become InvalidInput naming the field."""
    cls = model_class(name)
    try:
        return cls(params)
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput("model.params", str(exc)) from exc
