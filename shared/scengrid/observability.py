"""One Powertools logger per service; run_id / shard_id are appended as correlation keys."""

from __future__ import annotations

from aws_lambda_powertools import Logger


def service_logger(service: str) -> Logger:
    return Logger(service=f"scengrid-{service}")
