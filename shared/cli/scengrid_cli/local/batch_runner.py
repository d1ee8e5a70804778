"""Runs Batch jobs locally: the job's real command, the environment AWS Batch sets,
concurrency bounded by the cores, the job definition's retry strategy, and the real exit
status. A ``Launcher`` starts each attempt: ``ProcessLauncher`` (the default) as a local
process (with a JobForker, ``python -m`` commands start as forks of a warm interpreter,
local/forked_jobs.py), ``ContainerLauncher`` (local/container_jobs.py) as a container of the
image the job definition names."""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Protocol

from scengrid_cli.local.fair_share import FairShareSlots
from scengrid_cli.local.forked_jobs import JobForker, module_of
from scengrid_cli.local.job_template import JOB_NICE
from scengrid_cli.local.moto_gaps import LocalJob

POLL_S = 0.05  # how often a running job is checked for TerminateJob and chaos interrupts
# What AWS Batch reports when the host of a Spot task is reclaimed.
SPOT_RECLAIM_REASON = "Host EC2 (instance i-local) terminated."
# TerminateJob stops a task as ECS does: SIGTERM, then SIGKILL after the stop timeout (30 s).
TERMINATE_GRACE_S = 30.0


@dataclass(frozen=True)
class Attempt:
    exit_code: int
    status_reason: str = ""  # set when the host went away (a Spot reclaim)


class Process(Protocol):
    """A started attempt, driven like ``subprocess.Popen``. ``wait`` returns the exit status
    (``-N`` for a process killed by signal N). A launcher's process may also have
    ``stop(grace_s)``: SIGTERM, then SIGKILL if it still runs after ``grace_s`` (see ``reclaim``)."""

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class Launcher(Protocol):
    """Starts one attempt of a job with ``env`` (what AWS Batch sets, the job definition's and
    the overrides' variables, the stack's settings) and its output going to ``out`` (the job's
    log file, ``log``)."""

    def start(self, job: LocalJob, attempt: int, env: dict[str, str], out: IO[bytes], log: Path) -> Process: ...

    def close(self) -> None: ...


def reclaim(proc: Process, grace_s: float) -> None:
    """Stop an attempt as ECS stops a task (a Spot reclaim, TerminateJob): SIGTERM now, SIGKILL
    if it still runs after ``grace_s``. Returns at once."""
    stop = getattr(proc, "stop", None)
    if stop is not None:
        stop(grace_s)
        return
    proc.send_signal(signal.SIGTERM)

    def kill_if_running() -> None:
        if proc.poll() is None:
            proc.kill()

    timer = threading.Timer(grace_s, kill_if_running)
    timer.daemon = True
    timer.start()


class ProcessLauncher:
    """Each attempt as a local process: forked from the warm template when the command is
    ``python -m ...`` and a JobForker is given, else a new interpreter. The process gets this
    process's environment under the job's."""

    def __init__(self, forker: JobForker | None = None) -> None:
        self.forker = forker

    def start(self, job: LocalJob, attempt: int, env: dict[str, str], out: IO[bytes], log: Path) -> Process:
        command = self._command(job.command)
        env = {**os.environ, **env}
        if self.forker is not None and module_of(command) is not None:
            try:
                return self.forker.start(command, env, log)
            except RuntimeError:  # the template is gone: start the interpreter afresh
                self.forker = None
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(JOB_NICE))

    @staticmethod
    def _command(command: list[str]) -> list[str]:
        if not command:
            raise ValueError("the job definition has no command")
        head = sys.executable if command[0] in ("python", "python3") else command[0]
        return [head, *command[1:]]

    def close(self) -> None:
        if self.forker is not None:
            self.forker.close()

# Decides, for one attempt of a job, whether and how to interrupt it: returns a callable that
# receives the process and the attempt number (it may signal the process), or None.
Interrupter = Callable[[LocalJob, int], Callable[[Process], str] | None]


def retry_decision(strategy: dict[str, Any], attempt: Attempt) -> str:
    """RETRY or EXIT for a failed attempt, by the first matching ``evaluateOnExit`` rule.

    As on AWS: every pattern a rule gives must match (glob, case-sensitive); no rule matching
    means RETRY."""
    for rule in strategy.get("evaluateOnExit") or strategy.get("EvaluateOnExit") or []:
        keys = {k.lower(): v for k, v in rule.items()}
        checks = [
            ("onexitcode", str(attempt.exit_code)),
            ("onstatusreason", attempt.status_reason),
            ("onreason", attempt.status_reason or f"exit code {attempt.exit_code}"),
        ]
        if all(fnmatch.fnmatchcase(value, keys[key]) for key, value in checks if key in keys):
            return str(keys["action"]).upper()
    return "RETRY"


def _attempts(strategy: dict[str, Any]) -> int:
    return max(1, int(strategy.get("attempts") or strategy.get("Attempts") or 1))


@dataclass
class JobOutcome:
    job_id: str
    name: str
    attempts: list[Attempt]
    log: Path

    @property
    def exit_code(self) -> int:
        return self.attempts[-1].exit_code


@dataclass
class LocalBatchRunner:
    slots: int
    host_env: dict[str, str]
    log_dir: Path
    interrupter: Interrupter | None = None
    forker: JobForker | None = None  # for the default launcher: local processes
    launcher: Launcher | None = None
    weights: dict[str, float] = field(default_factory=dict)  # the job queue's fair-share weights
    outcomes: list[JobOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sharing = FairShareSlots(self.slots, self.weights)
        self._lock = threading.Lock()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.launcher is None:
            self.launcher = ProcessLauncher(self.forker)

    def __call__(self, job: LocalJob) -> int:
        log = self.log_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", f"{job.name}.{job.job_id}") + ".log")
        attempts: list[Attempt] = []
        for number in range(1, _attempts(job.retry_strategy) + 1):
            if job.should_stop():
                break
            attempt = self._run_attempt(job, number, log)
            attempts.append(attempt)
            if attempt.exit_code == 0 or retry_decision(job.retry_strategy, attempt) != "RETRY":
                break
        with self._lock:
            self.outcomes.append(JobOutcome(job.job_id, job.name, attempts, log))
        return attempts[-1].exit_code if attempts else 1

    def _run_attempt(self, job: LocalJob, number: int, log: Path) -> Attempt:
        assert self.launcher is not None
        with self.sharing.slot(job.share):
            job.on_start()
            env = {**self.host_env, **job.environment, "AWS_BATCH_JOB_ATTEMPT": str(number)}
            with log.open("ab") as out:
                out.write(f"--- attempt {number} started {datetime.now(timezone.utc).isoformat(timespec='milliseconds')}\n".encode())
                out.flush()
                proc = self.launcher.start(job, number, env, out, log)
                interrupt = self.interrupter(job, number) if self.interrupter else None
                reason = ""
                terminated = False
                while True:
                    try:
                        code = proc.wait(POLL_S)
                        code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a container reports
                        break
                    except subprocess.TimeoutExpired:
                        if job.should_stop():
                            if not terminated:
                                reclaim(proc, TERMINATE_GRACE_S)
                                terminated = True
                        elif interrupt is not None:
                            reason = interrupt(proc) or reason
        return Attempt(code, reason)

    def close(self) -> None:
        if self.launcher is not None:
            self.launcher.close()

    def retried_attempts(self) -> int:
        """Attempts beyond the first, over every finished job."""
        with self._lock:
            return sum(len(o.attempts) - 1 for o in self.outcomes)

    def failures(self) -> list[JobOutcome]:
        with self._lock:
            return [o for o in self.outcomes if o.exit_code != 0]
