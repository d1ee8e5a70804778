"""Models for tests of what only real worker processes and containers show.

- ``test-slow``: the linear model, ``seconds_per_block`` slower for each block of 1,024
  scenarios it evaluates: a shard stays in flight long enough for a SIGTERM or a heartbeat.
- ``test-crash``: the linear model whose process dies while it evaluates the run's last block
  when it is shorter than a full block (so a run of 10,000 scenarios in shards of 3,000 has one
  poison shard, 000003), if ``SCENGRID_TEST_CRASH`` is set in its environment: ``exit`` ends the
  process with ``os._exit(3)``, ``memory`` allocates (and touches) ``SCENGRID_TEST_CRASH_MIB``
  MiB, beyond a container's ``--memory``. Unset, it is the linear model: a retry round can
  complete the shard once the cause is gone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from scengrid.kernel import CHUNK
from scengrid.models.linear import LinearModel

CRASH_ENV = "SCENGRID_TEST_CRASH"
CRASH_MIB_ENV = "SCENGRID_TEST_CRASH_MIB"


class SlowModel(LinearModel):
    def __init__(self, params: Mapping[str, Any]) -> None:
        params = dict(params)
        self.seconds_per_block = float(params.pop("seconds_per_block", 1.0))
        super().__init__(params)

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        time.sleep(self.seconds_per_block)
        return super().evaluate(shocks)


class CrashingModel(LinearModel):
    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        how = os.environ.get(CRASH_ENV, "")
        if how and shocks.shape[0] < CHUNK:
            if how == "memory":
                hog = np.ones(int(os.environ.get(CRASH_MIB_ENV, "8192")) * 2**20, dtype=np.uint8)
                time.sleep(5)  # the kernel's OOM killer ends it before this returns
                return {"pnl": np.full(shocks.shape[0], float(hog[-1]))}
            os._exit(3)
        return super().evaluate(shocks)
