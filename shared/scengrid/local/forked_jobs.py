"""Batch job processes forked from a warm interpreter.

A job's command is ``python -m <module> ...``: started as a new interpreter, it would spend
about two seconds importing numpy, pyarrow, boto3, pydantic and Powertools before its first
line of work, and the sharder, the workers and the collator run one after the other. A
template process imports those libraries once, when the stack starts; each job is a fork of
it that sets the job's environment, sends its output to the job's log and runs the module as
``__main__``, exactly as ``python -m`` would. The job is still a process of its own, with its
own pid, signals and exit status (a signal death reads as ``-signal``, as with Popen).

The template imports libraries only: nothing that reads the run's settings, makes a client or
starts a thread, so that a fork starts clean. Commands of another form run as plain
subprocesses.

The runner talks to the template over its stdin and stdout, one JSON object per line:
``{"id", "argv", "env", "log", "cwd"}`` in; ``{"id", "pid"}`` when a job started and
``{"pid", "exit"}`` when it ended out."""

from __future__ import annotations

import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

# What every job imports first; the services' own modules stay out (they read settings when
# imported).
PRELOADED = (
    "numpy",
    "scipy.special",
    "pyarrow",
    "pyarrow.parquet",
    "boto3",
    "botocore.session",
    "pydantic",
    "pydantic_settings",
    "aws_lambda_powertools",
    "aws_lambda_powertools.metrics",
    "threadpoolctl",
    "matplotlib.pyplot",
    "scengrid.aws",
    "scengrid.events",
    "scengrid.kernel",
    "scengrid.models",
    "scengrid.observability",
    "scengrid.risk",
    "scengrid.s3io",
    "scengrid.status",
)
# Service models read into the template's boto3 session, so that a job's clients come quickly.
SERVICES = ("s3", "sqs", "events", "dynamodb")


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
            [sys.executable, "-m", "scengrid.local.forked_jobs"],
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


# ------------------------------------------------------------------ the template's side
def _preload() -> None:
    import importlib

    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:  # only a head start: the job imports what it needs anyway
            continue
    from scengrid.aws import session

    shared = session()
    for service in SERVICES:  # no credentials are resolved: these clients only load models
        shared.client(service, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")


def _run_job(request: dict[str, Any]) -> int:
    """In the forked child: become the job, run its module as ``__main__``, return its exit code."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    # the search path a new interpreter would have: the job's PYTHONPATH first, then the
    # working directory in front (``-m``); the installed packages are the template's
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    sys.path[:1] = [request["cwd"], *extra]
    module, args = module_of(request["argv"])  # type: ignore[misc]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # as the interpreter would: the traceback, then exit status 1
        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():  # an interpreter waits for its non-daemon threads
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    import atexit

    atexit._run_exitfuncs()
    return code


def _child(request: dict[str, Any], inherited: Sequence[int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in inherited:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own descriptors
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        code = _run_job(request)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: S110 - nothing left to report to
                pass
        os._exit(code)


def _serve() -> None:
    """Fork one job per request line; report its pid, then its exit status.

    The protocol moves off the standard descriptors first: stdin becomes /dev/null (jobs read
    nothing) and stdout the template's stderr, so that nothing but replies reaches the runner."""
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    children: set[int] = set()
    pending = b""

    def reply(message: dict[str, Any]) -> None:
        os.write(replies, (json.dumps(message) + "\n").encode())

    def reap() -> None:
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            children.discard(pid)
            reply({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})

    def fork(request: dict[str, Any]) -> None:
        try:
            pid = os.fork()
        except OSError as exc:
            reply({"id": request["id"], "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            _child(request, inherited=(requests, replies, wake_r, wake_w, selector.fileno()))
        children.add(pid)
        reply({"id": request["id"], "pid": pid})

    reply({"ready": True})
    while True:
        for key, _ in selector.select():
            if key.fileobj == wake_r:
                os.read(wake_r, 512)
                continue
            chunk = os.read(requests, 1 << 16)
            if not chunk:  # the runner is gone: so are its jobs
                for pid in children:
                    os.kill(pid, signal.SIGTERM)
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                fork(json.loads(line))
        reap()


if __name__ == "__main__":
    _preload()
    _serve()
