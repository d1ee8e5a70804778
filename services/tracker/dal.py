"""DynamoDB access for run and shard status. Every write is conditional: status only moves
forward, and a counter moves only together with a shard's first transition (one transaction)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from scengrid.aws import client
from scengrid.events import utcnow
from scengrid.settings import get_settings
from scengrid.status import Status

_OPEN = {":pending": {"S": Status.PENDING}, ":running": {"S": Status.RUNNING}}
_NOT_FINAL = "(attribute_not_exists(#s) OR #s IN (:pending, :running))"


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"BOOL": v}
    if isinstance(v, int | float):
        return {"N": repr(v)}
    if isinstance(v, list):
        return {"L": [_value(x) for x in v]}
    return {"S": str(v)}


def _set_clause(fields: dict[str, Any], prefix: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {f"#{prefix}{i}": k for i, k in enumerate(fields)}
    values = {f":{prefix}{i}": _value(v) for i, v in enumerate(fields.values())}
    clause = ", ".join(f"#{prefix}{i} = :{prefix}{i}" for i in range(len(fields)))
    return clause, names, values


class RunStore:
    """Writes of the tracker, the only writer of the runs and shards tables."""

    def __init__(self) -> None:
        settings = get_settings()
        self._db = client("dynamodb")
        self._runs = settings.runs_table
        self._shards = settings.shards_table

    def _now(self) -> str:
        return utcnow().isoformat()

    def ensure_run(self, run_id: str, scenarios: int, shards_total: int, spec: dict[str, Any]) -> None:
        """Create the run (PENDING) or fill in what an early shard event did not know."""
        self._db.update_item(
            TableName=self._runs,
            Key={"run_id": {"S": run_id}},
            UpdateExpression=(
                "SET #s = if_not_exists(#s, :pending), scenarios = :sc, shards_total = :st, spec = :spec,"
                " created_at = if_not_exists(created_at, :now), updated_at = :now,"
                " shards_done = if_not_exists(shards_done, :zero), shards_failed = if_not_exists(shards_failed, :zero),"
                " duplicates = if_not_exists(duplicates, :zero)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":pending": {"S": Status.PENDING},
                ":sc": {"N": str(scenarios)},
                ":st": {"N": str(shards_total)},
                ":spec": {"S": json.dumps(spec, sort_keys=True)},
                ":now": {"S": self._now()},
                ":zero": {"N": "0"},
            },
        )

    def mark_running(self, run_id: str, shards_total: int) -> bool:
        """PENDING (or unknown) → RUNNING. False when the run had already moved on."""
        try:
            self._db.update_item(
                TableName=self._runs,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET #s = :running, shards_total = :st, updated_at = :now",
                ConditionExpression="attribute_not_exists(#s) OR #s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": Status.PENDING},
                    ":running": {"S": Status.RUNNING},
                    ":st": {"N": str(shards_total)},
                    ":now": {"S": self._now()},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def plan_shard(self, run_id: str, shard_id: str, attempt: int, start: int, count: int) -> bool:
        """Record a planned shard as PENDING, unless it is already known."""
        try:
            self._db.put_item(
                TableName=self._shards,
                Item={
                    "run_id": {"S": run_id},
                    "shard_id": {"S": shard_id},
                    "status": {"S": Status.PENDING},
                    "attempt": {"N": str(attempt)},
                    "start": {"N": str(start)},
                    "count": {"N": str(count)},
                    "updated_at": {"S": self._now()},
                },
                ConditionExpression="attribute_not_exists(shard_id)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish_shard(self, run_id: str, shard_id: str, status: Status, fields: dict[str, Any]) -> bool:
        """PENDING/RUNNING → COMPLETE or FAILED, and the run's counter, in one transaction.

        Returns False (and counts a duplicate) when the shard had already finished."""
        counter = "shards_done" if status is Status.COMPLETE else "shards_failed"
        clause, names, values = _set_clause({**fields, "updated_at": self._now()}, "f")
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._shards,
                            "Key": {"run_id": {"S": run_id}, "shard_id": {"S": shard_id}},
                            "UpdateExpression": f"SET #s = :to, {clause}",
                            "ConditionExpression": _NOT_FINAL,
                            "ExpressionAttributeNames": {"#s": "status", **names},
                            "ExpressionAttributeValues": {":to": {"S": status}, **_OPEN, **values},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._runs,
                            "Key": {"run_id": {"S": run_id}},
                            "UpdateExpression": f"ADD {counter} :one SET updated_at = :now",
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":now": {"S": self._now()}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in reasons:
                raise
            self._count_duplicate(run_id)
            return False
        return True

    def finish_run(self, run_id: str, status: Status, fields: dict[str, Any]) -> bool:
        """PENDING/RUNNING → COMPLETE or FAILED, once."""
        clause, names, values = _set_clause({**fields, "updated_at": self._now()}, "f")
        try:
            self._db.update_item(
                TableName=self._runs,
                Key={"run_id": {"S": run_id}},
                UpdateExpression=f"SET #s = :to, {clause}",
                ConditionExpression=_NOT_FINAL,
                ExpressionAttributeNames={"#s": "status", **names},
                ExpressionAttributeValues={":to": {"S": status}, **_OPEN, **values},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            self._count_duplicate(run_id)
            return False
        return True

    def _count_duplicate(self, run_id: str) -> None:
        self._db.update_item(
            TableName=self._runs,
            Key={"run_id": {"S": run_id}},
            UpdateExpression="ADD duplicates :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
