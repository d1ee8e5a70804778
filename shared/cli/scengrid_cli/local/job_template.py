"""The template process of forked jobs (local/forked_jobs.py): it imports what every job
imports first, then forks one child per request and reports the child's pid and exit status.

It imports libraries and the registered models' code only: nothing that reads the run's
settings, makes a client or starts a thread, so that a fork starts clean. The services' own
modules stay out (they read settings when imported)."""

from __future__ import annotations

import importlib
import json
import os
import runpy
import selectors
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from scengrid_cli.local.forked_jobs import module_of

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
    "PIL.Image",
    "PIL.ImageDraw",
    "PIL.ImageFont",
    "scengrid.aws",
    "scengrid.events",
    "scengrid.kernel",
    "scengrid.models",
    "scengrid.observability",
    "scengrid.pnl_dataset",
    "scengrid.risk",
    "scengrid.s3io",
    "scengrid.status",
)
# Service models read into the template's boto3 session, so that a job's clients come quickly.
SERVICES = ("s3", "sqs", "events", "dynamodb")
# A job runs below this template and the stack's own process (nice 5: a third of their CPU
# weight when they want the same core). Every job starts from this template and reports its end
# through it, and every step of every run goes through the stack's process (the emulator, the
# tracker, the API): starved by 20 runs' model processes, they would hold back every run.
JOB_NICE = 5


def _preload() -> None:
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:  # only a head start: the job imports what it needs anyway
            continue
    from scengrid.models import available_models
    from scengrid.models.registry import model_class

    for name in available_models():  # the registered models' code, found through their entry points
        try:
            model_class(name)
        except Exception:  # noqa: S112 - a model that cannot load fails in the job, by name
            continue
    from scengrid.aws import session

    shared = session()
    for service in SERVICES:  # no credentials are resolved: these clients only load models
        shared.client(service, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")
    _draw_once()


def _draw_once() -> None:
    """The report's PNG loads Pillow's PNG encoder and built-in font at its first drawing: draw
    once here, so that the collator's report does not pay for it."""
    import io

    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:  # only a head start, as for the modules above
        return
    image = Image.new("RGB", (8, 8), "white")
    ImageDraw.Draw(image).text((0, 8), "0", font=ImageFont.load_default(size=14), anchor="ls")
    image.save(io.BytesIO(), format="PNG")


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
        os.nice(JOB_NICE)
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
