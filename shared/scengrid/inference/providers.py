"""PDs for a whole shard at once: every scenario with every obligor group, from the inference
Lambda (one Invoke, split only when Lambda's 6 MB limit forces it) or from the same loader
inline in this process.

Both answer ``predict_grid(scenarios (n, 3), obligors (g, 2)) -> GridPrediction`` with a
(n, g) PD matrix and the model's version. A function error, or a model that changed between
two parts of one shard, raises ModelFailure: the shard attempt fails and is retried."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np

from scengrid.aws import lambda_invoker
from scengrid.errors import ModelFailure
from scengrid.inference.contract import (
    MAX_GRID_SCENARIOS,
    MAX_PREDICTIONS,
    OBLIGOR_FEATURES,
    SCENARIO_FEATURES,
    grid_features,
)
from scengrid.inference.loader import ModelHolder, model_holder
from scengrid.settings import get_settings

INLINE_ROWS = 1_000_000  # rows per onnxruntime call inline: 20 MB of features at a time
Mode = Literal["lambda", "inline"]


@dataclass(frozen=True)
class GridPrediction:
    pd: np.ndarray  # (scenarios, obligors)
    model_version: str


def scenario_chunks(scenarios: int, obligors: int, max_rows: int, max_scenarios: int) -> list[slice]:
    step = max(1, min(max_rows // max(obligors, 1), max_scenarios))
    return [slice(start, min(start + step, scenarios)) for start in range(0, scenarios, step)]


def _one_version(versions: set[str]) -> str:
    if len(versions) != 1:
        raise ModelFailure(f"the PD model changed while the shard was being scored (versions {', '.join(sorted(versions))}); "
                           "the shard is retried")
    return versions.pop()


class PdProvider(ABC):
    @abstractmethod
    def predict_grid(self, scenarios: np.ndarray, obligors: np.ndarray) -> GridPrediction: ...


class LambdaPd(PdProvider):
    """The inference function, through Lambda Invoke (RequestResponse)."""

    def __init__(self, function: str) -> None:
        if not function:
            raise ModelFailure("the credit overlay's mode is lambda but SCENGRID_INFERENCE_FUNCTION is not set")
        self.function = function
        self.invocations = 0

    def _invoke(self, scenarios: np.ndarray, obligors: np.ndarray) -> tuple[np.ndarray, str]:
        payload = {
            "scenarios": {name: scenarios[:, j].tolist() for j, name in enumerate(SCENARIO_FEATURES)},
            "obligors": {name: obligors[:, j].tolist() for j, name in enumerate(OBLIGOR_FEATURES)},
        }
        response = lambda_invoker().invoke(
            FunctionName=self.function, InvocationType="RequestResponse", Payload=json.dumps(payload, separators=(",", ":")).encode()
        )
        self.invocations += 1
        body = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            raise ModelFailure(f"inference function {self.function}: {body.get('errorType', 'error')}: {body.get('errorMessage', body)}")
        pd = np.asarray(body["predictions"], dtype=np.float64).reshape(body["shape"])
        return pd, body["model_version"]

    def predict_grid(self, scenarios: np.ndarray, obligors: np.ndarray) -> GridPrediction:
        parts, versions = [], set()
        for part in scenario_chunks(scenarios.shape[0], obligors.shape[0], MAX_PREDICTIONS, MAX_GRID_SCENARIOS):
            pd, version = self._invoke(scenarios[part], obligors)
            parts.append(pd)
            versions.add(version)
        return GridPrediction(np.concatenate(parts), _one_version(versions))


class InlinePd(PdProvider):
    """The same loader as the function's, in this process (the model cached in its /tmp)."""

    def __init__(self, holder: ModelHolder) -> None:
        self.holder = holder

    def predict_grid(self, scenarios: np.ndarray, obligors: np.ndarray) -> GridPrediction:
        parts, versions = [], set()
        for part in scenario_chunks(scenarios.shape[0], obligors.shape[0], INLINE_ROWS, scenarios.shape[0]):
            model = self.holder.get()
            rows = grid_features(scenarios[part], obligors)
            parts.append(model.predict(rows).astype(np.float64).reshape(-1, obligors.shape[0]))
            versions.add(model.version)
        return GridPrediction(np.concatenate(parts), _one_version(versions))


def pd_provider(mode: Mode) -> PdProvider:
    """The provider of the configured function or model, for this process."""
    if mode == "lambda":
        return LambdaPd(get_settings().inference_function)
    try:
        return InlinePd(model_holder())
    except Exception as exc:  # a model URI that is not set or not valid
        raise ModelFailure(f"the credit overlay cannot load the PD model inline: {exc}") from exc
