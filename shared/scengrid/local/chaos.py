"""Spot reclaims for local chaos runs: about 20% of a run's worker tasks (at least one of each
kind) get a SIGTERM (the two-minute notice) or a SIGKILL (the host gone) at a random point of
their first attempt. The local Batch runner then applies the job definition's retry strategy,
as AWS Batch would."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable

from scengrid import chaos
from scengrid.local.batch_runner import SPOT_RECLAIM_REASON
from scengrid.local.moto_gaps import LocalJob

WORKER_ENTRYPOINT = "services.worker.main"
SHARE = 0.2


class WorkerKiller:
    """An ``Interrupter`` for LocalBatchRunner."""

    def __init__(self, seed: int, workers: int, earliest_s: float = 1.0, latest_s: float = 4.0) -> None:
        rng = random.Random(seed)
        victims = min(workers, max(2, round(SHARE * workers)))
        chosen = rng.sample(range(workers), victims)
        kinds = [signal.SIGTERM, signal.SIGKILL]
        self._plan = {index: (kinds[i % 2], rng.uniform(earliest_s, latest_s)) for i, index in enumerate(chosen)}
        self._lock = threading.Lock()
        self.delivered: Counter[str] = Counter()

    def __call__(self, job: LocalJob, attempt: int) -> Callable[[subprocess.Popen], str] | None:
        if attempt != 1 or WORKER_ENTRYPOINT not in job.command:
            return None
        index = int(job.environment.get("AWS_BATCH_JOB_ARRAY_INDEX", "0"))
        planned = self._plan.get(index)
        if planned is None:
            return None
        kind, delay = planned
        due = time.monotonic() + delay
        fired = False

        def interrupt(proc: subprocess.Popen) -> str:
            nonlocal fired
            if fired or time.monotonic() < due or proc.poll() is not None:
                return ""
            fired = True
            proc.send_signal(kind)
            name = signal.Signals(kind).name.lower()
            with self._lock:
                self.delivered[name] += 1
            chaos.record(f"worker_{name}")
            return SPOT_RECLAIM_REASON if kind == signal.SIGKILL else ""

        return interrupt
