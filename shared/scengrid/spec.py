"""RunSpec: what a user asks for. Validated at the edge; carried in ``run-requested``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_SCENARIOS = 100_000_000
MAX_SHARDS = 100_000
AUTO_TARGET_SHARDS_PER_WORKER = 4
AUTO_MIN_SHARD = 1_000
AUTO_MAX_SHARDS = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Strict):
    """A registered model, by name, with its parameters. Never an import path."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_\-]*$")
    params: dict[str, Any] = Field(default_factory=dict)


class GeneratedScenarios(_Strict):
    """Scenarios drawn by a counter-based generator: scenario i depends only on (seed, i)."""

    kind: Literal["generated"] = "generated"
    count: int = Field(gt=0, le=MAX_SCENARIOS)
    seed: int = Field(0, ge=0, lt=2**63)
    distribution: Literal["normal"] = "normal"


class RunSpec(_Strict):
    version: Literal[1] = 1
    model: ModelRef = Field(default_factory=lambda: ModelRef(name="linear"))
    scenarios: GeneratedScenarios
    shard_size: Annotated[int, Field(gt=0)] | Literal["auto"] = Field("auto", description="scenarios per shard, or auto")
    workers: int = Field(2, ge=1, le=100_000, description="worker tasks evaluating shards")

    @model_validator(mode="after")
    def _shard_bounds(self) -> RunSpec:
        if isinstance(self.shard_size, int) and math.ceil(self.scenarios.count / self.shard_size) > MAX_SHARDS:
            raise ValueError(f"shard_size {self.shard_size} makes more than {MAX_SHARDS} shards; use a larger one")
        return self

    def resolved_shard_size(self) -> int:
        """The shard size; ``auto`` gives each worker a few shards, within the backend's comfort."""
        if isinstance(self.shard_size, int):
            return self.shard_size
        count = self.scenarios.count
        wanted = max(1, self.workers * AUTO_TARGET_SHARDS_PER_WORKER)
        size = max(AUTO_MIN_SHARD, math.ceil(count / wanted))
        size = max(size, math.ceil(count / AUTO_MAX_SHARDS))
        return min(size, count)

    def shard_count(self) -> int:
        return math.ceil(self.scenarios.count / self.resolved_shard_size())
