"""Each part of the local stack as its own long-running process: the docker-compose services.
``LocalStack`` runs the same parts in one process for ``scengrid demo`` and ``local up``.

The parts meet through the emulator and a state file that ``bootstrap`` writes: the settings
of the provisioned stack (bucket, tables, queues, bus, state machine), the launch queue, and
the stack's IAM user, whose key (profile ``scengrid-local``) it writes to ``credentials`` beside
the state file: the API lets that key in, and a user signs with it."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from scengrid_cli.local.api_user import caller_from_record, identity_record, write_profile
from scengrid_cli.local.batch_runner import LocalBatchRunner
from scengrid_cli.local.emulator import Emulator, set_state_machine_execution
from scengrid_cli.local.forked_jobs import JobForker
from scengrid_cli.local.http_api import LocalApi
from scengrid_cli.local.moto_gaps import install
from scengrid_cli.local.pollers import dead_letter_poller, launch_poller, tracker_poller
from scengrid_cli.local.provision import share_weights
from scengrid_cli.local.stack import (
    LOCAL_VISIBILITY_TIMEOUT_S,
    REGION,
    STACK_NAME,
    job_environment,
    provision_stack,
    use_local_environment,
)
from scengrid.aws import client
from scengrid.settings import Settings, cpu_count, get_settings, use_settings

# How long a part waits for what it needs (the emulator; bootstrap's state) before it gives up.
# The parts wait themselves, rather than relying on compose's depends_on conditions, which not
# every compose implementation honours (podman-compose with podman < 4.6 ignores
# service_healthy, and its attached `up` does not wait for service_completed_successfully).
WAIT_S = float(os.environ.get("SCENGRID_LOCAL_WAIT_S", "300"))
# How long the emulator may take to stop once asked (its job template, then the server).
STOP_BUDGET_S = 20.0


def _wait_for_stop() -> None:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stopping.wait()


def read_state(path: Path) -> tuple[Settings, str]:
    if not path.is_file():
        raise FileNotFoundError(f"no stack state at {path}: run `scengrid local bootstrap --state {path}` first")
    state = json.loads(path.read_text())
    return Settings.model_validate(state["settings"]), state["launch_queue_url"]


def serve_emulator(host: str, port: int, work_dir: Path) -> None:
    """The emulator, executing state machines and running their Batch jobs as processes here."""
    use_local_environment()
    emulator = Emulator(host=host, port=port).start()
    # the job definitions carry the stack's names; the jobs also need the way to the emulator
    job_env = job_environment(
        Settings(endpoint_url=emulator.url, region=REGION, visibility_timeout_s=LOCAL_VISIBILITY_TIMEOUT_S)
    )
    runner = LocalBatchRunner(
        cpu_count(), job_env, work_dir / "jobs", forker=JobForker(dict(os.environ)), weights=share_weights()
    )
    install(runner)
    print(f"emulator on {host}:{port}; Batch job logs in {work_dir / 'jobs'}", flush=True)
    _wait_for_stop()
    # A stop that hangs prints every thread's stack to the log and ends the process, instead of
    # waiting for a SIGKILL that explains nothing.
    faulthandler.dump_traceback_later(STOP_BUDGET_S, exit=True)
    started = time.monotonic()
    runner.close()
    emulator.stop()
    print(f"emulator stopped in {time.monotonic() - started:.1f} s", flush=True)


def _stack_in_emulator(settings: Settings | None = None) -> bool:
    """Whether the emulator answers and has the provisioned stack (the one a state file describes)."""
    try:
        if settings is not None:
            use_settings(settings)
        client("cloudformation").describe_stacks(StackName=STACK_NAME)
        if settings is not None:
            client("s3").head_bucket(Bucket=settings.bucket)
        return True
    except Exception:  # noqa: BLE001 - not up yet, or not provisioned (yet)
        return False


def _wait_for_emulator(url: str, timeout_s: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{url.rstrip('/')}/moto-api/", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator at {url} did not answer within {timeout_s:.0f}s ({error})") from error
            time.sleep(0.5)


def bootstrap(state_path: Path, wait_s: float = WAIT_S) -> Settings:
    """Provision the template into the emulator at ``SCENGRID_ENDPOINT_URL`` once it answers;
    write the state. Idempotent: when the state is there and the emulator has its stack
    (bootstrap ran already: podman-compose starts a one-shot service again when a service that
    depends on it starts), it changes nothing."""
    use_local_environment()
    url = get_settings().endpoint_url
    if not url:
        raise RuntimeError("set SCENGRID_ENDPOINT_URL to the emulator, e.g. http://moto:5000")
    _wait_for_emulator(url, wait_s)
    if state_path.is_file():
        settings, _ = read_state(state_path)
        if _stack_in_emulator(settings):
            print(f"stack already provisioned; state in {state_path}", flush=True)
            return settings
    use_settings(Settings(endpoint_url=url, region=REGION))
    if _stack_in_emulator():
        # provisioned, but the state was lost (a volume removed): a stack cannot be provisioned twice
        raise RuntimeError(f"the emulator at {url} has a stack but {state_path} does not describe it: restart the emulator")
    settings, launch_url, api_user = provision_stack(url, lambda on: set_state_machine_execution(url, on))
    credentials = write_profile(state_path.parent / "credentials", api_user)
    state = {"settings": settings.model_dump(), "launch_queue_url": launch_url, "api_user": identity_record(api_user, credentials)}
    # whole or not at all: the other parts start as soon as they find it
    partial = state_path.with_name(f".{state_path.name}.partial")
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(state_path)
    print(f"stack provisioned; state in {state_path}, the API's key as profile {state['api_user']['profile']} in {credentials}", flush=True)
    return settings


def wait_for_state(state_path: Path, wait_s: float = WAIT_S) -> tuple[Settings, str]:
    """The state once bootstrap has written it and the emulator has its stack."""
    use_local_environment()
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        if state_path.is_file():
            settings, launch_url = read_state(state_path)
            if _stack_in_emulator(settings):
                return settings, launch_url
        if time.monotonic() > deadline:
            raise TimeoutError(f"no stack state at {state_path} (or its stack is not in the emulator) after {wait_s:.0f}s: "
                               f"run `scengrid local bootstrap --state {state_path}`")
        if not said:
            print(f"waiting for bootstrap's state at {state_path}", flush=True)
            said = True
        time.sleep(1)


def _use(state_path: Path, wait_s: float = WAIT_S) -> tuple[Settings, str]:
    settings, launch_url = wait_for_state(state_path, wait_s)
    use_settings(settings)
    return settings, launch_url


def serve_api(state_path: Path, host: str, port: int) -> None:
    """The API, letting in requests signed with the key of the stack's IAM user."""
    _use(state_path)
    record = json.loads(state_path.read_text())["api_user"]
    api = LocalApi([caller_from_record(record)], REGION, port=port, host=host).start()
    print(f"API on {host}:{port}; requests signed with profile {record['profile']} in {record['credentials_file']} get in", flush=True)
    _wait_for_stop()
    api.stop()


def serve_poller(state_path: Path, which: str) -> None:
    """``tracker``: the tracker Lambdas' SQS consumers (events; the work dead-letter queue);
    ``orchestrator``: run-requested → execution."""
    settings, launch_url = _use(state_path)
    pollers = (
        [tracker_poller(settings.tracker_queue_url, REGION), dead_letter_poller(settings.work_dead_letter_queue_url, REGION)]
        if which == "tracker"
        else [launch_poller(launch_url, settings.state_machine_arn)]
    )
    for poller in pollers:
        poller.start()
    print(f"{which} consuming", flush=True)
    _wait_for_stop()
    for poller in pollers:
        poller.stop()


def exec_with_stack(state_path: Path, command: list[str]) -> None:
    """Replace this process by ``command``, with the stack's settings in its environment."""
    # a worker's tuning given to this command (docker-compose's long-lived `worker` service keeps
    # polling: SCENGRID_WORKER_IDLE_POLLS) wins over a Batch job's defaults; the stack's names do not
    tuning = {name: value for name, value in os.environ.items() if name.startswith("SCENGRID_WORKER_")}
    settings, _ = _use(state_path)  # (puts the state's settings in os.environ)
    env: dict[str, Any] = {**os.environ, **job_environment(settings), **tuning}
    os.execvpe(command[0], command, env)
