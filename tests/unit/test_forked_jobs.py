"""Jobs forked from the warm template behave as ``python -m`` would run them: their own
environment, output in their log, exit status, signals, and the interpreter's exit rules."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from scengrid_cli.local.forked_jobs import JobForker, module_of

JOB = '''
import os, sys, threading, time
mode = sys.argv[1]
print("job", os.environ["JOB_NAME"], sys.argv[1:], os.getcwd(), flush=True)
if mode == "exit":
    sys.exit(int(sys.argv[2]))
if mode == "message":
    sys.exit("the job says why it stops")
if mode == "raise":
    raise RuntimeError("boom")
if mode == "thread":
    def late():
        time.sleep(0.3)
        print("non-daemon thread finished", flush=True)
    threading.Thread(target=late).start()
if mode == "nice":
    print("nice", os.getpriority(os.PRIO_PROCESS, 0), "template", os.getpriority(os.PRIO_PROCESS, os.getppid()), flush=True)
if mode == "sleep":
    print("sleeping", flush=True)
    time.sleep(30)
if mode == "sigterm":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print("sleeping", flush=True)
    time.sleep(30)
'''


@pytest.fixture(scope="module")
def forker():  # noqa: ANN201
    started = JobForker(dict(os.environ))
    started.wait_ready()
    yield started
    started.close()


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    (tmp_path / "forked_probe_job.py").write_text(JOB)
    return tmp_path


def run(forker: JobForker, job_dir: Path, *args: str, timeout: float = 20.0) -> tuple[int, str]:
    log = job_dir / "job.log"
    env = {"JOB_NAME": "probe", "PYTHONPATH": str(job_dir), "PATH": os.environ.get("PATH", "")}
    proc = forker.start([sys.executable, "-m", "forked_probe_job", *args], env, log)
    code = proc.wait(timeout)
    return code, log.read_text()


def test_only_python_module_commands_are_forked() -> None:
    assert module_of(["python", "-m", "services.worker.main"]) == ("services.worker.main", [])
    assert module_of([sys.executable, "-m", "pkg.mod", "--x", "1"]) == ("pkg.mod", ["--x", "1"])
    assert module_of(["python", "script.py"]) is None
    assert module_of(["/bin/sh", "-c", "true"]) is None


def test_a_job_gets_its_environment_arguments_and_log(forker: JobForker, job_dir: Path) -> None:
    code, log = run(forker, job_dir, "exit", "0")
    assert code == 0
    assert f"job probe ['exit', '0'] {os.getcwd()}" in log


def test_exit_status_as_the_interpreter_reports_it(forker: JobForker, job_dir: Path) -> None:
    assert run(forker, job_dir, "exit", "3")[0] == 3
    code, log = run(forker, job_dir, "message")
    assert code == 1 and "the job says why it stops" in log
    code, log = run(forker, job_dir, "raise")
    assert code == 1 and "RuntimeError: boom" in log


def test_the_job_ends_after_its_non_daemon_threads(forker: JobForker, job_dir: Path) -> None:
    code, log = run(forker, job_dir, "thread")
    assert code == 0 and "non-daemon thread finished" in log


def wait_for_line(log: Path, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.02)


@pytest.mark.parametrize(("mode", "sig", "expected"), [("sleep", signal.SIGKILL, -9), ("sigterm", signal.SIGTERM, 143)])
def test_signals_reach_the_job(forker: JobForker, job_dir: Path, mode: str, sig: int, expected: int) -> None:
    log = job_dir / f"{mode}.log"
    env = {"JOB_NAME": "probe", "PYTHONPATH": str(job_dir)}
    proc = forker.start([sys.executable, "-m", "forked_probe_job", mode], env, log)
    assert proc.poll() is None
    wait_for_line(log, "sleeping")
    proc.send_signal(sig)
    assert proc.wait(20) == expected
    assert proc.poll() == expected


def test_a_job_runs_below_the_template_that_starts_it(forker: JobForker, job_dir: Path) -> None:
    """The template (and the stack's own process) keep their CPU weight when 20 runs' model
    processes want the cores: a job is JOB_NICE lower."""
    from scengrid_cli.local.job_template import JOB_NICE

    code, out = run(forker, job_dir, "nice")
    words = out.split()
    job, template = int(words[words.index("nice") + 1]), int(words[words.index("template") + 1])
    assert code == 0 and job == min(19, template + JOB_NICE) and JOB_NICE > 0
