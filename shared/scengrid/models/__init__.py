"""The model plug-in API and its registry (entry point group ``scengrid.models``)."""

from scengrid.models.base import FactorSet, ScenarioModel
from scengrid.models.registry import ENTRY_POINT_GROUP, available_models, load_model

__all__ = ["ENTRY_POINT_GROUP", "FactorSet", "ScenarioModel", "available_models", "load_model"]
