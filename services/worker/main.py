"""Worker entrypoint: a child of a Batch array job (``python -m services.worker.main``)."""

from __future__ import annotations

import os
import sys

from scengrid.observability import service_logger
from scengrid.settings import BatchEnv, JobEnv, cpu_count, get_settings

from services.worker.evaluator import ShardEvaluator
from services.worker.logic import Worker

logger = service_logger("worker")
EXIT_SPOT_RECLAIM = 143  # 128 + SIGTERM: the job definition's retry strategy retries it


def main() -> int:
    settings = get_settings()
    settings.require("bucket", "event_bus")
    if not settings.work_queue_url:  # a long-lived worker: it finds the runs' queues by their prefix
        settings.require("work_queue_prefix")
    batch = BatchEnv()
    task_id = batch.job_id  # an array child's id is "<parent>:<index>"
    # a Batch job of a run has its run's id; a long-lived worker (docker-compose's `worker`
    # service) has none: it takes any run's shards, each message naming its run
    run_id = JobEnv().run_id if os.environ.get("SCENGRID_RUN_ID") else None  # type: ignore[call-arg]
    logger.append_keys(run_id=run_id, task_id=task_id)
    evaluator = ShardEvaluator(settings.worker_processes or cpu_count())
    logger.info("worker started", extra={"model_processes": evaluator.processes})
    worker = Worker(settings, task_id, evaluator)
    worker.install_signal_handlers()
    try:
        report = worker.run()
    finally:
        evaluator.close()
    logger.info("worker finished", extra={"done": len(report.done), "failed": len(report.failed)})
    return EXIT_SPOT_RECLAIM if report.stopped_by_signal else 0


if __name__ == "__main__":
    sys.exit(main())
