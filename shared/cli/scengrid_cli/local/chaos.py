"""Spot reclaims for local chaos runs: about 20% of a run's worker tasks (at least two) are
stopped as ECS stops a reclaimed Spot task (SIGTERM, then SIGKILL after a grace period; a
container is stopped with ``podman stop -t GRACE``) or get a SIGKILL (the host gone),
alternately, so both happen.
Each worker task's first attempt has a seeded random moment early in its life; the first ones
still running at their moment are hit (a task that already finished cannot be reclaimed). The
local Batch runner then applies the job definition's retry strategy, as AWS Batch would."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

from scengrid import chaos
from scengrid_cli.local.batch_runner import SPOT_RECLAIM_REASON, Process, reclaim
from scengrid_cli.local.moto_gaps import LocalJob

WORKER_ENTRYPOINT = "services.worker.main"
SHARE = 0.2
# Fargate Spot gives two minutes' notice; locally a shard takes seconds, so less will do.
RECLAIM_GRACE_S = 30.0


class WorkerKiller:
    """An ``Interrupter`` for LocalBatchRunner."""

    def __init__(
        self, seed: int, workers: int, earliest_s: float = 0.1, latest_s: float = 0.5, grace_s: float = RECLAIM_GRACE_S
    ) -> None:
        rng = random.Random(seed)
        self.grace_s = grace_s
        self.victims = min(workers, max(2, round(SHARE * workers)))
        self._moments = [rng.uniform(earliest_s, latest_s) for _ in range(max(1, workers))]
        self._kinds = [signal.SIGTERM, signal.SIGKILL]
        self._lock = threading.Lock()
        self.delivered: Counter[str] = Counter()

    def __call__(self, job: LocalJob, attempt: int) -> Callable[[Process], str] | None:
        if attempt != 1 or WORKER_ENTRYPOINT not in job.command:
            return None
        index = int(job.environment.get("AWS_BATCH_JOB_ARRAY_INDEX", "0"))
        due = time.monotonic() + self._moments[index % len(self._moments)]
        fired = False

        def interrupt(proc: Process) -> str:
            nonlocal fired
            if fired or time.monotonic() < due or proc.poll() is not None:
                return ""
            fired = True
            with self._lock:
                done = sum(self.delivered.values())
                if done >= self.victims:
                    return ""
                kind = self._kinds[done % len(self._kinds)]
                name = signal.Signals(kind).name.lower()
                self.delivered[name] += 1
            if kind == signal.SIGTERM:
                reclaim(proc, self.grace_s)
            else:
                proc.send_signal(kind)
            chaos.record(f"worker_{name}")
            return SPOT_RECLAIM_REASON if kind == signal.SIGKILL else ""

        return interrupt
