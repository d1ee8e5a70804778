"""Batch job processes forked from a warm interpreter.

A job's command is ``python -m <module> ...``: started as a new interpreter, it would spend
about two seconds importing numpy, pyarrow, boto3, pydantic and Powertools before its first
line of work, and the sharder, the workers and the collator run one after the other. A
template process imports those libraries once, when the stack starts; each job is a fork of
it that sets the job's environment, sends its output to the job's log and runs the module as
``__main__``, exactly as ``python -m`` would. The job is still a process of its own, with its
own pid, signals and exit status (a signal death reads as ``-signal``, as with Popen).

The template (local/job_template.py) imports libraries and the registered models' code only,
so that a fork starts clean. Commands of another form run as plain subprocesses.

The runner talks to the template over its stdin and stdout, one JSON object per line:
``{"id", "argv", "env", "log", "cwd"}`` in; ``{"ready"}`` once it has imported, then
``{"id", "pid"}`` when a job started and ``{"pid", "exit"}`` when it ended out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

def module_of(command: Sequence[str]) -> tuple[str, list[str]] | None:
    """``(module, args)`` of a ``python -m module args...`` command, else None."""
    if len(command) >= 3 and Path(command[0]).name.startswith("python") and command[1] == "-m":
        return command[2], list(command[3:])
    return None


# ------------------------------------------------------------------ the runner's side
class JobProcess:
    """A forked job, driven like ``subprocess.Popen``: pid, poll, wait, signals."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:  # it ended meanwhile; its exit is on its way
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class JobForker:
    """Starts the template process and forks jobs from it."""

    def __init__(self, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "scengrid_cli.local.job_template"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._next_id = 0
        self._starting: dict[int, Future[JobProcess]] = {}
        self._running: dict[int, JobProcess] = {}
        self._ready: Future[None] = Future()
        self._reader = threading.Thread(target=self._read, name="job-forker", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the template has imported its libraries."""
        self._ready.result(timeout)

    def start(self, command: Sequence[str], env: dict[str, str], log: Path) -> JobProcess:
        found = module_of(command)
        if found is None:
            raise ValueError(f"not a python -m command: {list(command)}")
        with self._lock:
            if self._proc.poll() is not None:
                raise RuntimeError("the job template process has ended")
            self._next_id += 1
            request_id = self._next_id
            started: Future[JobProcess] = Future()
            self._starting[request_id] = started
            request = {"id": request_id, "argv": list(command), "env": env, "log": str(log), "cwd": os.getcwd()}
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        return started.result(60)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._lock:
                if "ready" in message:
                    self._ready.set_result(None)
                elif "exit" in message:
                    job = self._running.pop(message["pid"], None)
                    if job is not None:
                        job._set_exit(message["exit"])
                elif "error" in message:
                    self._starting.pop(message["id"]).set_exception(RuntimeError(message["error"]))
                else:
                    job = self._running[message["pid"]] = JobProcess(message["pid"])
                    self._starting.pop(message["id"]).set_result(job)
        with self._lock:  # the template is gone: nothing more will be reported
            if not self._ready.done():
                self._ready.set_exception(RuntimeError("the job template process ended while starting"))
            for future in self._starting.values():
                future.set_exception(RuntimeError("the job template process has ended"))
            for job in self._running.values():
                job._set_exit(-signal.SIGKILL)
            self._starting.clear()
            self._running.clear()

    def close(self) -> None:
        """End the template (jobs still running get SIGTERM from it)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._reader.join(5)
