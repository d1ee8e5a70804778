"""The worker loop: pull shard work from the run's own SQS queue until it is drained, write
Parquet, report. A worker with no run (docker-compose's long-lived one) serves every run's queue
in turn.

A shard's output is written, announced and its message deleted on a writer thread while the
next shard is evaluated: the model processes do not wait for S3. One write is in flight at a
time, so a worker holds two shards' outputs at most, and its shard-done events keep their order."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from botocore.exceptions import ClientError

from scengrid import chaos, layout, pnl_dataset, work_queues
from scengrid.aws import client
from scengrid.errors import ModelFailure
from scengrid.events import ShardDone, ShardFailed, publish
from scengrid.observability import service_logger, service_metrics
from scengrid.risk import PnlStats, shard_value_at_risk
from scengrid.settings import Settings
from scengrid.status import Status, read_run
from scengrid.models.base import ShardOutput
from scengrid.work import ShardWork

from services.worker.evaluator import ShardEvaluator
from services.worker.heartbeat import VisibilityHeartbeat

logger = service_logger("worker")
metrics = service_metrics("worker")


@dataclass
class WorkerReport:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped_by_signal: bool = False


class Worker:
    def __init__(self, settings: Settings, task_id: str, evaluator: ShardEvaluator) -> None:
        self.settings = settings
        self.task_id = task_id
        self.evaluator = evaluator
        self.sqs = client("sqs")
        self.report = WorkerReport()
        self._stop = False
        self._max_receives: dict[str, int] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="shard-writer")
        self._writing: Future[None] | None = None
        self._metrics_lock = threading.Lock()

    def max_receives(self, queue_url: str) -> int:
        """The queue's maxReceiveCount: the delivery after which a failure is final."""
        if queue_url not in self._max_receives:
            attrs = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
            policy = attrs.get("Attributes", {}).get("RedrivePolicy")
            self._max_receives[queue_url] = int(json.loads(policy)["maxReceiveCount"]) if policy else 1
        return self._max_receives[queue_url]

    def queues(self) -> list[str]:
        """The run's queue; with no run, every run's queue that exists now."""
        return [self.settings.work_queue_url] if self.settings.work_queue_url else work_queues.open_queues()

    def install_signal_handlers(self) -> None:
        """On SIGTERM (a Spot reclaim notice) take no more work; the current shard finishes."""
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        logger.warning("SIGTERM: finishing the current shard, then stopping")
        self._stop = True
        self.report.stopped_by_signal = True

    def _drained(self, queue_url: str) -> bool:
        """Nothing visible and nothing in flight; a queue that is gone (its round ended) too."""
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
        except ClientError as error:
            if work_queues.is_gone(error):
                return True
            raise
        return int(attrs["ApproximateNumberOfMessages"]) == 0 and int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0

    def run(self) -> WorkerReport:
        """Take shards until the queues were seen drained (nothing visible, nothing in flight)
        on ``worker_idle_polls`` empty looks in a row: a shard in flight elsewhere may come back.
        A run's queue that is gone (the run was cancelled and its round ended) ends the loop."""
        idle = 0
        try:
            while not self._stop:
                queues = self.queues()
                queue_url, messages = self._receive(queues)
                if not messages:
                    self.finish_writing()  # the shard in hand is announced before the queue is judged drained
                    idle = idle + 1 if all(self._drained(q) for q in queues) else 0
                    if idle >= self.settings.worker_idle_polls:
                        break
                    if self.settings.worker_poll_s < 1 or not queues:  # a short poll: pause before the next look
                        time.sleep(min(self.settings.worker_poll_s, 1.0))
                    continue
                idle = 0
                for message in messages:
                    self.process(queue_url, message)
        finally:
            self.finish_writing()
            self._writer.shutdown()
        return self.report

    def finish_writing(self) -> None:
        """Wait for the shard being written (its error, if any, is raised here)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _receive(self, queues: list[str]) -> tuple[str, list[dict[str, Any]]]:
        """One shard from the first of ``queues`` that has one (a long poll waits on the last)."""
        for number, queue_url in enumerate(queues, start=1):
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=int(self.settings.worker_poll_s) if number == len(queues) else 0,
                    VisibilityTimeout=self.settings.visibility_timeout_s,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except ClientError as error:
                if work_queues.is_gone(error):  # its round ended meanwhile
                    continue
                raise
            if messages:
                return queue_url, messages
        return "", []

    def _delete(self, queue_url: str, receipt: str) -> None:
        """Delete a handled message; if its queue is gone, its round ended and took it along."""
        try:
            self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
        except ClientError as error:
            if not work_queues.is_gone(error):
                raise

    def process(self, queue_url: str, message: dict[str, Any]) -> None:
        work = ShardWork.model_validate_json(message["Body"])
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        logger.append_keys(run_id=work.run_id, shard_id=work.shard_id)
        if self._cancelled(work.run_id):
            logger.info("run cancelled: shard dropped")
            self._delete(queue_url, message["ReceiptHandle"])
            return
        logger.info("shard started", extra={"attempt": attempt})
        started = time.perf_counter()
        heartbeat = VisibilityHeartbeat(self.sqs, queue_url, message["ReceiptHandle"], self.settings.visibility_timeout_s).start()
        try:
            if chaos.poisoned(work.shard_id):
                raise ModelFailure(f"shard {work.shard_id} is poisoned by SCENGRID_CHAOS_POISON_SHARDS")
            output = self.evaluator.evaluate(work)
        except Exception as exc:  # the model is user code: any failure fails the shard attempt
            heartbeat.stop()
            self._fail(queue_url, work, attempt, exc, message["ReceiptHandle"])
            return
        evaluated = time.perf_counter() - started
        self.finish_writing()  # one shard written at a time
        self._writing = self._writer.submit(self._write, queue_url, message, work, attempt, output, started, evaluated, heartbeat)

    def _write(
        self,
        queue_url: str,
        message: dict[str, Any],
        work: ShardWork,
        attempt: int,
        output: ShardOutput,
        started: float,
        evaluated: float,
        heartbeat: VisibilityHeartbeat,
    ) -> None:
        """On the writer thread: the shard's file, its shard-done, then its message deleted (the
        heartbeat keeps the message hidden until then)."""
        try:
            self._announce(queue_url, message, work, attempt, output, started, evaluated)
        finally:
            heartbeat.stop()

    def _announce(
        self, queue_url: str, message: dict[str, Any], work: ShardWork, attempt: int, output: ShardOutput, started: float, evaluated: float
    ) -> None:
        key = layout.shard_key(work.run_id, work.shard_id)
        pnl = output.columns["pnl"]
        stats = PnlStats.of(pnl, pnl_dataset.components(output.columns))
        table = pnl_dataset.shard_table(work.start, output.columns, output.metadata)
        pnl_dataset.put_shard(key, table)
        duration = time.perf_counter() - started
        publish(
            [
                ShardDone(
                    run_id=work.run_id,
                    round=work.round,
                    shard_id=work.shard_id,
                    attempt=attempt,
                    output_key=key,
                    rows=table.num_rows,
                    duration_s=round(duration, 6),
                    eval_s=round(evaluated, 6),
                    task_id=self.task_id,
                    var_99=shard_value_at_risk(pnl, 0.99),
                    pnl_stats=stats,
                    model_version=output.metadata.get("model_version"),
                )
            ],
            service="worker",
        )
        # Only now is the output durable and announced: the message may go.
        self._delete(queue_url, message["ReceiptHandle"])
        self.report.done.append(work.shard_id)
        logger.info("shard done", extra={"shard_id": work.shard_id, "rows": table.num_rows, "seconds": round(duration, 3)})
        self._emit_metrics(duration, table.num_rows, attempt, failed=False)

    def _emit_metrics(self, duration: float | None, rows: int, attempt: int, failed: bool) -> None:
        """One EMF record per shard attempt: duration, throughput, redeliveries, failures."""
        with self._metrics_lock:  # the writer thread and a failing shard's may both flush
            if duration is not None:
                metrics.add_metric(name="ShardDuration", unit=MetricUnit.Seconds, value=duration)
                metrics.add_metric(name="ScenariosPerSecond", unit=MetricUnit.CountPerSecond, value=rows / max(duration, 1e-9))
            metrics.add_metric(name="ShardRetries", unit=MetricUnit.Count, value=attempt - 1)
            metrics.add_metric(name="ShardFailures", unit=MetricUnit.Count, value=int(failed))
            metrics.flush_metrics()

    def _cancelled(self, run_id: str) -> bool:
        """One GetItem per shard; a missing runs table setting means no cancellation check."""
        if not self.settings.runs_table:
            return False
        run = read_run(run_id)
        return run is not None and run.status is Status.CANCELLED

    def _fail(self, queue_url: str, work: ShardWork, attempt: int, exc: Exception, receipt: str) -> None:
        error = f"{type(exc).__name__}: {exc}"
        final = attempt >= self.max_receives(queue_url)
        logger.error("shard attempt failed", extra={"attempt": attempt, "final": final, "error": error})
        if final:
            publish(
                [
                    ShardFailed(
                        run_id=work.run_id,
                        round=work.round,
                        shard_id=work.shard_id,
                        attempt=attempt,
                        error=error,
                        task_id=self.task_id,
                    )
                ],
                service="worker",
            )
            self.report.failed.append(work.shard_id)
        self._emit_metrics(None, 0, attempt, failed=True)
        if final:
            # The failure is announced: the message may go. The dead-letter queue keeps only
            # shards whose worker died on every delivery, which no one could report.
            self._delete(queue_url, receipt)
        else:  # visible again at once: the next receive retries it
            self.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
