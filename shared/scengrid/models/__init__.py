"""The model plug-in API and its registry (entry point group ``scengrid.models``): a
vectorised ``ScenarioModel`` subclass, or a per-scenario function under ``@scenario_function``."""

from scengrid.models.base import FactorSet, ScenarioModel
from scengrid.models.function import scenario_function
from scengrid.models.registry import ENTRY_POINT_GROUP, available_models, load_model, model_package

__all__ = [
    "ENTRY_POINT_GROUP", "FactorSet", "ScenarioModel", "available_models", "load_model", "model_package", "scenario_function",
]
