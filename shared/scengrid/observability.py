"""One Powertools logger per service; run_id / shard_id are appended as correlation keys."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger

from scengrid.settings import get_settings


def service_logger(service: str) -> Logger:
    """Structured JSON logs on stdout (CloudWatch on AWS), or to ``SCENGRID_LOG_FILE``."""
    log_file = get_settings().log_file
    handler = logging.FileHandler(log_file) if log_file else None
    return Logger(service=f"scengrid-{service}", logger_handler=handler)
