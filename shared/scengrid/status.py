"""The tracker's tables as readers see them: run and shard status, one GetItem per poll."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pydantic import BaseModel, ConfigDict, field_validator

from scengrid.aws import client
from scengrid.errors import InvalidInput
from scengrid.risk import PnlStats
from scengrid.settings import get_settings


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


_deserializer = TypeDeserializer()

FINAL = frozenset({Status.COMPLETE, Status.FAILED, Status.CANCELLED})


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    status: Status = Status.PENDING
    round: int = 1
    scenarios: int = 0
    shards_total: int = 0
    shards_done: int = 0
    shards_failed: int = 0
    duplicates: int = 0
    created_at: str | None = None
    updated_at: str | None = None
    summary_key: str | None = None
    pnl_prefix: str | None = None  # the run's P&L dataset, once COMPLETE
    reason: str | None = None
    finished_at: str | None = None
    var_95: float | None = None
    var_99: float | None = None
    es_975: float | None = None
    failed_shards: list[str] = []
    spec: dict[str, Any] = {}
    var99_n: int = 0  # completed shards that reported their own VaR 99%, their sum and sum of squares
    var99_sum: float = 0.0
    var99_sumsq: float = 0.0
    execution_arn: str | None = None  # the Step Functions execution of round execution_round, once it started
    execution_status: str | None = None
    execution_round: int | None = None

    @property
    def current_execution_arn(self) -> str | None:
        """The execution running the run's current round; None until its start is recorded."""
        return self.execution_arn if self.execution_round == self.round else None

    @field_validator("spec", mode="before")
    @classmethod
    def _spec_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class ShardRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    shard_id: str
    status: Status
    round: int = 1
    attempt: int = 1
    start: int | None = None
    count: int | None = None
    output_key: str | None = None
    rows: int | None = None
    duration_s: float | None = None
    eval_s: float | None = None
    task_id: str | None = None
    error: str | None = None
    model_version: str | None = None  # SHA-256 of the PD model that scored it (credit overlay)
    pnl_stats: PnlStats | None = None  # the worker's P&L figures of the shard (stored as JSON)

    @field_validator("pnl_stats", mode="before")
    @classmethod
    def _stats_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as int or float, not Decimal)."""
    out: dict[str, Any] = {}
    for name, typed in item.items():
        value = _deserializer.deserialize(typed)
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        out[name] = value
    return out


def read_run(run_id: str) -> RunRecord | None:
    item = client("dynamodb").get_item(
        TableName=get_settings().runs_table, Key={"run_id": {"S": run_id}}, ConsistentRead=True
    ).get("Item")
    return RunRecord.model_validate(_from_item(item)) if item else None


def read_shards(run_id: str) -> list[ShardRecord]:
    paginator = client("dynamodb").get_paginator("query")
    pages = paginator.paginate(
        TableName=get_settings().shards_table,
        KeyConditionExpression="run_id = :r",
        ExpressionAttributeValues={":r": {"S": run_id}},
        ConsistentRead=True,
    )
    return [ShardRecord.model_validate(_from_item(item)) for page in pages for item in page["Items"]]


def _start_key(token: str) -> dict[str, Any]:
    """The table key a next_token encodes: exactly ``{"run_id": {"S": …}}``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        key = None
    if not (isinstance(key, dict) and set(key) == {"run_id"} and isinstance(key["run_id"], dict)
            and set(key["run_id"]) == {"S"} and isinstance(key["run_id"]["S"], str) and key["run_id"]["S"]):
        raise InvalidInput("next_token", "not a token this API returned; omit it for the first page")
    return key


def page_runs(limit: int, next_token: str | None) -> tuple[list[RunRecord], str | None]:
    """Up to ``limit`` runs and the token of the next page (None on the last page)."""
    request: dict[str, Any] = {"TableName": get_settings().runs_table, "Limit": limit}
    if next_token:
        request["ExclusiveStartKey"] = _start_key(next_token)
    page = client("dynamodb").scan(**request)
    last = page.get("LastEvaluatedKey")
    token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
    return [RunRecord.model_validate(_from_item(item)) for item in page["Items"]], token
