"""The whole local stack: emulator, provisioned resources, Batch jobs as processes (or, with
``containers``, as containers of their images), tracker and
launcher threads, and the API behind IAM auth with the stack's own IAM user allowed to call it.
Use as a context manager; ``settings`` points at the stack, ``api_client()`` calls its API."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scengrid.aws import client
from scengrid_cli.client import ApiClient, CredentialSource, SigV4RequestAuth
from scengrid_cli.local.api_user import create_api_user
from scengrid_cli.local.batch_runner import LocalBatchRunner
from scengrid_cli.local.container_jobs import ContainerLauncher, container_engine
from scengrid_cli.local.emulator import Emulator
from scengrid_cli.local.forked_jobs import JobForker
from scengrid_cli.local.http_api import LocalApi
from scengrid_cli.local.inference import LocalInference
from scengrid_cli.local.moto_gaps import install, retarget_state_machine_rules
from scengrid_cli.local.pollers import QueuePoller, dead_letter_poller, launch_poller, tracker_poller
from scengrid_cli.local.provision import provision, share_weights
from scengrid_cli.local.sigv4 import Caller
from scengrid.chaos import LOG_NAME
from scengrid.settings import Settings, cpu_count, use_settings

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "scengrid-local",
    "AWS_SECRET_ACCESS_KEY": "scengrid-local",
    "AWS_SESSION_TOKEN": "scengrid-local",
}
STACK_NAME = "scengrid"
REGION = "us-east-1"
# Locally a lost shard (a killed worker) comes back after this long, not after minutes.
LOCAL_VISIBILITY_TIMEOUT_S = 10


def use_local_environment() -> None:
    """Credentials and region for the emulator; no X-Ray daemon here; and in-process Lambdas'
    EMF metrics would land on the CLI's stdout (job processes keep theirs, in their logs)."""
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"})


def provision_stack(emulator_url: str, set_execution: Callable[[bool], None],
                    parameters: dict[str, str] | None = None) -> tuple[Settings, str, Caller]:
    """Provision the template (with ``parameters``) into the emulator; returns the settings, the
    launch queue and the stack's IAM user, the one allowed to call its API."""
    use_settings(Settings(endpoint_url=emulator_url, region=REGION))
    settings = provision(STACK_NAME, emulator_url, REGION, set_execution, parameters)
    settings = settings.model_copy(update={"visibility_timeout_s": LOCAL_VISIBILITY_TIMEOUT_S})
    use_settings(settings)
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=f"{STACK_NAME}-local-launch")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    retarget_state_machine_rules(client("events"), settings.event_bus, arn)
    return settings, url, create_api_user(STACK_NAME, REGION)


def job_environment(settings: Settings, containers: bool = False) -> dict[str, str]:
    """What every local Batch job gets on top of its job definition's environment."""
    return {
        **settings.as_env(),
        **LOCAL_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "SCENGRID_LOG_FILE": "",  # a job logs to stdout, which the runner keeps per job
        "POWERTOOLS_METRICS_DISABLED": "false",
        # a worker process runs one model process: the local workers already share the cores;
        # a worker container runs one per vCPU of its task (--cpus), as on Fargate
        **({} if containers else {"SCENGRID_WORKER_PROCESSES": "1"}),
        # the emulator's queue counts are exact and it answers at once: a worker stops as soon
        # as it sees the queue drained, and looks again every 0.1 s while shards are in flight
        "SCENGRID_WORKER_IDLE_POLLS": "1",
        "SCENGRID_WORKER_POLL_S": "0.1",
    }


def start_pollers(settings: Settings, launch_url: str, execute_runs: bool = True) -> list[QueuePoller]:
    """The tracker's SQS consumers (events; the work dead-letter queue) and, unless runs are
    only to be tracked, the launcher."""
    pollers = [
        tracker_poller(settings.tracker_queue_url, REGION),
        dead_letter_poller(settings.work_dead_letter_queue_url, REGION),
    ]
    if execute_runs:
        pollers.append(launch_poller(launch_url, settings.state_machine_arn))
    for poller in pollers:
        poller.start()
    return pollers


class LocalStack:
    def __init__(
        self,
        work_dir: Path | None = None,
        job_slots: int | None = None,
        chaos_seed: int | None = None,
        execute_runs: bool = True,
        pd_model: Path | None = None,
        api_port: int | None = None,
        containers: bool = False,
        model_image_tag: str = "",
    ) -> None:
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="scengrid-"))
        self.containers = containers  # Batch jobs as containers of their images (local/container_jobs.py)
        self.model_image_tag = model_image_tag  # the template's ModelImageTag: images with a model package
        self.job_slots = job_slots or cpu_count()
        self.chaos_seed = chaos_seed  # None: no fault injection
        self.execute_runs = execute_runs  # False: runs are accepted and tracked, never started
        self.inference = LocalInference(pd_model)  # the inference function and its PD model
        self.emulator = Emulator()
        self.settings: Settings | None = None
        self.runner: LocalBatchRunner | None = None
        self.api_port = api_port  # None: a free one
        self.api: LocalApi | None = None
        self.api_user: Caller | None = None
        self._pollers: list[QueuePoller] = []
        self.startup_s = 0.0

    def __enter__(self) -> LocalStack:
        started = time.perf_counter()
        use_local_environment()
        if self.containers:
            container_engine()  # no engine: fail before anything starts
        # imports the jobs' libraries while the stack is provisioned (local processes only)
        forker = None if self.containers else JobForker(dict(os.environ))
        try:
            self._start(forker)
            if forker is not None:
                forker.wait_ready()
        except BaseException:
            if forker is not None:
                forker.close()
            raise
        self.startup_s = time.perf_counter() - started
        return self

    def _start(self, forker: JobForker | None) -> None:
        self.emulator.start()
        parameters = {"ModelImageTag": self.model_image_tag} if self.model_image_tag else None
        settings, launch_url, self.api_user = provision_stack(self.emulator.url, self.emulator.set_state_machine_execution, parameters)
        # in-process services (the tracker) log to a file; job processes log to their own files
        local: dict[str, object] = {"log_file": str(self.work_dir / "services.log")}
        if self.chaos_seed is not None:
            local.update(chaos_dir=str(self.chaos_dir), chaos_seed=self.chaos_seed)
            self.chaos_dir.mkdir(parents=True, exist_ok=True)
        local.update(self.inference.start(settings, STACK_NAME, self.work_dir))
        self.settings = settings.model_copy(update=local)
        use_settings(self.settings)
        self.runner = LocalBatchRunner(
            self.job_slots,
            job_environment(self.settings, self.containers),
            self.work_dir / "jobs",
            forker=forker,
            launcher=self._container_launcher() if self.containers else None,
            weights=share_weights(),
        )
        install(self.runner)
        self._pollers = start_pollers(self.settings, launch_url, self.execute_runs)
        self.api = LocalApi([self.api_user], REGION, port=self.api_port).start()

    def _container_launcher(self) -> ContainerLauncher:
        """Jobs' containers see the chaos folder (their injections are logged there)."""
        volumes = []
        if self.chaos_seed is not None:
            self.chaos_dir.chmod(0o777)  # the image's user writes there too
            (self.chaos_dir / LOG_NAME).touch()
            (self.chaos_dir / LOG_NAME).chmod(0o666)
            volumes.append(f"{self.chaos_dir}:{self.chaos_dir}:rw")
        return ContainerLauncher.for_stack(volumes)

    def api_client(self) -> ApiClient:
        """A client of the stack's API, signing with the stack's own key."""
        assert self.api is not None and self.api_user is not None
        source = CredentialSource("explicit", f"the local stack's key (IAM user {self.api_user.user_arn})")
        return ApiClient(self.api.url, SigV4RequestAuth(self.api_user.credentials(), REGION), source)

    def _stop_executions(self) -> None:
        """Runs still in flight end ABORTED, rather than failing against a stopped emulator."""
        if self.settings is None:
            return
        sfn = client("stepfunctions")
        try:
            running = sfn.list_executions(stateMachineArn=self.settings.state_machine_arn, statusFilter="RUNNING")
            for execution in running["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="the local stack is stopping")
        except Exception:  # the emulator is already unreachable: nothing left to stop
            return

    @property
    def chaos_dir(self) -> Path:
        return self.work_dir / "chaos"

    @property
    def tracker(self) -> QueuePoller:
        return self._pollers[0]

    def __exit__(self, *exc: object) -> None:
        if self.api is not None:
            self.api.stop()
        self._stop_executions()
        for poller in self._pollers:
            poller.stop()
        for poller in self._pollers:
            poller.join(timeout=5)
        if self.runner is not None:
            self.runner.close()
        self.inference.stop()
        self.emulator.stop()
