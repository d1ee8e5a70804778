"""Each part of the local stack as its own long-running process: the docker-compose services.
``LocalStack`` runs the same parts in one process for ``scengrid demo`` and ``local up``.

The parts meet through the emulator and a state file that ``bootstrap`` writes: the settings
of the provisioned stack (bucket, tables, queues, bus, state machine), the launch queue, and
the stack's IAM user, whose key (profile ``scengrid-local``) it writes to ``credentials`` beside
the state file: the API lets that key in, and a user signs with it."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from scengrid_cli.local.api_user import caller_from_record, identity_record, write_profile
from scengrid_cli.local.batch_runner import LocalBatchRunner
from scengrid_cli.local.emulator import Emulator, set_state_machine_execution
from scengrid_cli.local.forked_jobs import JobForker
from scengrid_cli.local.http_api import LocalApi
from scengrid_cli.local.moto_gaps import install
from scengrid_cli.local.pollers import dead_letter_poller, launch_poller, tracker_poller
from scengrid_cli.local.stack import (
    LOCAL_VISIBILITY_TIMEOUT_S,
    REGION,
    job_environment,
    provision_stack,
    use_local_environment,
)
from scengrid.settings import Settings, cpu_count, get_settings, use_settings


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
    runner = LocalBatchRunner(cpu_count(), job_env, work_dir / "jobs", forker=JobForker(dict(os.environ)))
    install(runner)
    print(f"emulator on {host}:{port}; Batch job logs in {work_dir / 'jobs'}", flush=True)
    _wait_for_stop()
    runner.close()
    emulator.stop()


def bootstrap(state_path: Path) -> Settings:
    """Provision the template into the emulator at ``SCENGRID_ENDPOINT_URL``; write the state."""
    use_local_environment()
    url = get_settings().endpoint_url
    if not url:
        raise RuntimeError("set SCENGRID_ENDPOINT_URL to the emulator, e.g. http://moto:5000")
    settings, launch_url, api_user = provision_stack(url, lambda on: set_state_machine_execution(url, on))
    credentials = write_profile(state_path.parent / "credentials", api_user)
    state = {"settings": settings.model_dump(), "launch_queue_url": launch_url, "api_user": identity_record(api_user, credentials)}
    state_path.write_text(json.dumps(state, indent=2))
    return settings


def _use(state_path: Path) -> tuple[Settings, str]:
    use_local_environment()
    settings, launch_url = read_state(state_path)
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
    settings, _ = _use(state_path)
    env: dict[str, Any] = {**os.environ, **job_environment(settings)}
    os.execvpe(command[0], command, env)
