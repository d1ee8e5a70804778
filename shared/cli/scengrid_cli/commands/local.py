"""``scengrid local up|down``: the local stack (emulator, provisioned template, tracker,
orchestrator, Batch-as-processes) and the API on a loopback port, kept running."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.console import Console

from scengrid_cli.client import LOCAL_STATE, local_state
from scengrid.errors import ScengridError

UP_EXAMPLES = """examples:
  scengrid local up            # in the foreground; Ctrl-C stops it
  scengrid local up --detach   # in the background; `scengrid local down` stops it
  scengrid submit spec.yaml --watch
"""
READY_TIMEOUT_S = 120
CREDENTIALS_FILE = LOCAL_STATE.parent / "credentials"


def register(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser("local", help="start or stop the local stack and its API")
    actions = local.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        help="start the local stack and serve the API on a loopback port",
        description="Start the embedded AWS emulator, provision infra/template.yaml, run the tracker and the "
        "orchestrator, and serve the API behind IAM auth (SigV4), as on AWS. The stack's own IAM user may call it: "
        f"its key is written as the AWS profile scengrid-local to {CREDENTIALS_FILE}, and the endpoint to "
        f"{LOCAL_STATE}, where the other commands find both.",
        epilog=UP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--detach", action="store_true", help="run in the background and return once it is ready")
    up.add_argument("--port", type=int, default=None, help="API port (default: a free one)")
    up.add_argument(
        "--no-runs", action="store_true", help="accept and track runs but never start them (for testing the API itself)"
    )
    up.add_argument(
        "--containers", action="store_true",
        help="run every Batch job as a container of its image (podman or docker; `make images` builds them)",
    )
    up.set_defaults(func=run_up)
    down = actions.add_parser(
        "down", help="stop the local stack started by `scengrid local up`", epilog="example:\n  scengrid local down",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    down.set_defaults(func=run_down)
    _register_parts(actions)


PARTS_HELP = "one part of the local stack as its own process (the docker-compose services; see docker-compose.yml)"


def _register_parts(actions: argparse._SubParsersAction) -> None:
    state = {"type": Path, "default": Path("/state/stack.json"), "help": "stack state file (default %(default)s)"}
    p = actions.add_parser("emulator", help="the AWS emulator, running state machines and their Batch jobs", description=PARTS_HELP)
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=5000, help="port (default %(default)s)")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/scengrid"), help="where job logs go")
    p.set_defaults(func=lambda a: _part("serve_emulator", a.host, a.port, a.work_dir))
    p = actions.add_parser("bootstrap", help="provision infra/template.yaml into the emulator at SCENGRID_ENDPOINT_URL", description=PARTS_HELP)
    p.add_argument("--state", **state)
    p.set_defaults(func=lambda a: _part("bootstrap", a.state))
    p = actions.add_parser("api", help="serve the API, letting in requests signed with the stack's key (from bootstrap's state)", description=PARTS_HELP)
    p.add_argument("--state", **state)
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    p.set_defaults(func=lambda a: _part("serve_api", a.state, a.host, a.port))
    for which, what in (("tracker", "consume every event into run and shard status"), ("orchestrator", "start an execution for each run-requested")):
        p = actions.add_parser(which, help=what, description=PARTS_HELP)
        p.add_argument("--state", **state)
        p.set_defaults(func=lambda a, which=which: _part("serve_poller", a.state, which))
    p = actions.add_parser("exec", help="run a command with the stack's settings in its environment", description=PARTS_HELP,
                           epilog="example:\n  scengrid local exec -- python -m services.worker.main", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state", **state)
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    p.set_defaults(func=lambda a: _part("exec_with_stack", a.state, [c for c in a.command if c != "--"] or ["true"]))


def _part(name: str, *args: object) -> int:
    from scengrid_cli.local import standalone

    getattr(standalone, name)(*args)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_up(args: argparse.Namespace) -> int:
    state = local_state()
    if state and _alive(state["pid"]):
        raise ScengridError(f"a local stack is already up (pid {state['pid']}, API {state['api_url']}); `scengrid local down` stops it")
    if args.detach:
        return _detach(args)
    return _serve(args.port, execute_runs=not args.no_runs, containers=args.containers)


def _serve(port: int | None, execute_runs: bool, containers: bool = False) -> int:
    from scengrid_cli.local.api_user import PROFILE, write_profile
    from scengrid_cli.local.stack import REGION, LocalStack

    err = Console(stderr=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with LocalStack(execute_runs=execute_runs, api_port=port, containers=containers) as stack:
        assert stack.api is not None and stack.api_user is not None
        credentials = write_profile(CREDENTIALS_FILE, stack.api_user, PROFILE).resolve()
        state = {
            "pid": os.getpid(),
            "api_url": stack.api.url,
            "region": REGION,
            "profile": PROFILE,
            "credentials_file": str(credentials),
            "emulator_url": stack.emulator.url,
            "work_dir": str(stack.work_dir),
        }
        LOCAL_STATE.write_text(json.dumps(state, indent=2))
        err.print(
            f"scengrid local stack up: API {stack.api.url} (IAM auth; the stack's key is profile {PROFILE} "
            f"in {CREDENTIALS_FILE}); logs in {stack.work_dir}"
        )
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            LOCAL_STATE.unlink(missing_ok=True)
            CREDENTIALS_FILE.unlink(missing_ok=True)
    err.print("scengrid local stack down")
    return 0


def _detach(args: argparse.Namespace) -> int:
    LOCAL_STATE.parent.mkdir(exist_ok=True)
    log = LOCAL_STATE.parent / "local.log"
    command = [sys.executable, "-m", "scengrid_cli.cli", "local", "up"]
    command += (["--port", str(args.port)] if args.port else []) + (["--no-runs"] if args.no_runs else [])
    command += ["--containers"] if args.containers else []
    with log.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        state = local_state()
        if state and state.get("pid") == child.pid:
            Console(stderr=True).print(f"scengrid local stack up (pid {child.pid}): API {state['api_url']}; log {log}")
            return 0
        if child.poll() is not None:
            raise ScengridError(f"the local stack failed to start; see {log}")
        time.sleep(0.2)
    child.terminate()
    raise ScengridError(f"the local stack was not ready within {READY_TIMEOUT_S}s; see {log}")


def run_down(args: argparse.Namespace) -> int:
    state = local_state()
    if not state or not _alive(state["pid"]):
        LOCAL_STATE.unlink(missing_ok=True)
        CREDENTIALS_FILE.unlink(missing_ok=True)
        Console(stderr=True).print("no local stack is up")
        return 0
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(state["pid"]):
        time.sleep(0.2)
    if _alive(state["pid"]):
        raise ScengridError(f"the local stack (pid {state['pid']}) did not stop; kill it with `kill {state['pid']}`")
    LOCAL_STATE.unlink(missing_ok=True)
    CREDENTIALS_FILE.unlink(missing_ok=True)
    Console(stderr=True).print("scengrid local stack down")
    return 0
