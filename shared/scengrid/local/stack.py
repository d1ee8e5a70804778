"""The whole local stack: emulator, provisioned resources, Batch-as-processes, tracker and
launcher threads. Use as a context manager; ``settings`` points at the stack."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from scengrid.aws import client
from scengrid.local.batch_runner import LocalBatchRunner
from scengrid.local.emulator import Emulator
from scengrid.local.moto_gaps import install, retarget_state_machine_rules
from scengrid.local.pollers import QueuePoller, launch_poller, tracker_poller
from scengrid.local.provision import provision
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


class LocalStack:
    def __init__(
        self,
        work_dir: Path | None = None,
        job_slots: int | None = None,
        chaos_seed: int | None = None,
        execute_runs: bool = True,
    ) -> None:
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="scengrid-"))
        self.job_slots = job_slots or cpu_count()
        self.chaos_seed = chaos_seed  # None: no fault injection
        self.execute_runs = execute_runs  # False: runs are accepted and tracked, never started
        self.emulator = Emulator()
        self.settings: Settings | None = None
        self.runner: LocalBatchRunner | None = None
        self._pollers: list[QueuePoller] = []
        self.startup_s = 0.0

    def __enter__(self) -> LocalStack:
        started = time.perf_counter()
        os.environ.update(LOCAL_CREDENTIALS)
        os.environ["AWS_DEFAULT_REGION"] = REGION
        # No X-Ray daemon here; and the in-process Lambdas' EMF metrics would land on the
        # CLI's stdout (job processes keep theirs, in their logs).
        os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"})
        self.emulator.start()
        use_settings(Settings(endpoint_url=self.emulator.url, region=REGION))
        self.settings = provision(STACK_NAME, self.emulator.url, REGION, self.emulator.set_state_machine_execution)
        # in-process services (the tracker) log to a file; job processes log to their own files
        local = {"log_file": str(self.work_dir / "services.log"), "visibility_timeout_s": LOCAL_VISIBILITY_TIMEOUT_S}
        if self.chaos_seed is not None:
            local.update(chaos_dir=str(self.chaos_dir), chaos_seed=self.chaos_seed)
            self.chaos_dir.mkdir(parents=True, exist_ok=True)
        self.settings = self.settings.model_copy(update=local)
        use_settings(self.settings)
        self.runner = LocalBatchRunner(
            slots=self.job_slots,
            # one model process per worker: the local workers already share the cores
            host_env={
                **self.settings.as_env(),
                **LOCAL_CREDENTIALS,
                "SCENGRID_LOG_FILE": "",  # a job logs to stdout, which the runner keeps per job
                "POWERTOOLS_METRICS_DISABLED": "false",
                "SCENGRID_WORKER_PROCESSES": "1",
            },
            log_dir=self.work_dir / "jobs",
        )
        install(self.runner)
        launch_url = self._launch_queue()
        self._pollers = [tracker_poller(self.settings.tracker_queue_url, REGION)]
        if self.execute_runs:
            self._pollers.append(launch_poller(launch_url, self.settings.state_machine_arn))
        for poller in self._pollers:
            poller.start()
        self.startup_s = time.perf_counter() - started
        return self

    def _launch_queue(self) -> str:
        assert self.settings is not None
        sqs = client("sqs")
        url = sqs.create_queue(QueueName=f"{STACK_NAME}-local-launch")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        retarget_state_machine_rules(client("events"), self.settings.event_bus, arn)
        return url

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
        self._stop_executions()
        for poller in self._pollers:
            poller.stop()
        for poller in self._pollers:
            poller.join(timeout=5)
        self.emulator.stop()
