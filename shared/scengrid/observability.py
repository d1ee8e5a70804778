"""One logger, tracer and metrics per service. Logs are JSON with ``run_id`` (and ``shard_id``)
appended by each service; metrics are CloudWatch EMF lines in the logs; traces go to X-Ray
where a daemon or Lambda runs (``POWERTOOLS_TRACE_DISABLED=true`` elsewhere)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics, Tracer

from scengrid.settings import get_settings

NAMESPACE = "scengrid"


@lru_cache(maxsize=None)
def service_logger(service: str) -> Logger:
    """Structured JSON logs on stdout (CloudWatch on AWS), or to ``SCENGRID_LOG_FILE``. One
    logger per service, however many modules ask: a second Powertools logger of the same
    service with a handler of its own would have no formatter."""
    log_file = get_settings().log_file
    handler = logging.FileHandler(log_file) if log_file else None
    return Logger(service=f"scengrid-{service}", logger_handler=handler)


def service_tracer(service: str) -> Tracer:
    """X-Ray tracing of the handler and of every boto3 call it makes."""
    return Tracer(service=f"scengrid-{service}", patch_modules=["boto3", "botocore"])


def service_metrics(service: str) -> Metrics:
    return Metrics(namespace=NAMESPACE, service=f"scengrid-{service}")


def peak_rss_bytes() -> int:
    """This process's peak resident memory: Linux's VmHWM, which starts afresh with the
    process's own address space. (getrusage's ru_maxrss keeps the peak of the process that
    forked it across exec, so a child of a big parent would report the parent's.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
