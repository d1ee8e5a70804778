"""Runs Batch jobs as local processes: the job's real command, the environment AWS Batch
sets, concurrency bounded by the cores, and the real exit status."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from scengrid.local.moto_gaps import LocalJob

POLL_S = 0.2


@dataclass
class JobOutcome:
    job_id: str
    name: str
    exit_code: int
    log: Path


@dataclass
class LocalBatchRunner:
    slots: int
    host_env: dict[str, str]
    log_dir: Path
    outcomes: list[JobOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(max(1, self.slots))
        self._lock = threading.Lock()
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def _command(self, command: list[str]) -> list[str]:
        if not command:
            raise ValueError("the job definition has no command")
        head = sys.executable if command[0] in ("python", "python3") else command[0]
        return [head, *command[1:]]

    def __call__(self, job: LocalJob) -> int:
        log = self.log_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", f"{job.name}.{job.job_id}") + ".log")
        with self._slots:
            if job.should_stop():
                return 1
            job.on_start()
            env = {**os.environ, **self.host_env, **job.environment}
            with log.open("wb") as out:
                proc = subprocess.Popen(self._command(job.command), env=env, stdout=out, stderr=subprocess.STDOUT)
                while True:
                    try:
                        code = proc.wait(POLL_S)
                        break
                    except subprocess.TimeoutExpired:
                        if job.should_stop():
                            proc.terminate()
        with self._lock:
            self.outcomes.append(JobOutcome(job.job_id, job.name, code, log))
        return code

    def failures(self) -> list[JobOutcome]:
        with self._lock:
            return [o for o in self.outcomes if o.exit_code != 0]
