"""DynamoDB access for run and shard status. Every write is conditional: status only moves
forward within a round (a retry round may reopen what failed), and a counter moves only
together with a shard's transition (one transaction)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from scengrid.aws import client
from scengrid.events import ExecutionStatus, utcnow
from scengrid.settings import get_settings
from scengrid.status import ShardRecord, Status

from services.tracker.admission import AdmissionStore, transact

_NAMES = {"#s": "status", "#r": "round"}
_OPEN = {":pending": {"S": Status.PENDING}, ":running": {"S": Status.RUNNING}}
# Still open, and not from a round older than the one recorded.
_OPEN_IN_ROUND = "(attribute_not_exists(#s) OR #s IN (:pending, :running)) AND (attribute_not_exists(#r) OR #r <= :round)"


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"BOOL": v}
    if isinstance(v, int | float):
        return {"N": repr(v)}
    if isinstance(v, list):
        return {"L": [_value(x) for x in v]}
    return {"S": str(v)}


def _set_clause(fields: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":f{i}": _value(v) for i, v in enumerate(fields.values())}
    return ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))), names, values


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class RunStore:
    """Writes of the tracker, the only writer of the runs and shards tables."""

    def __init__(self) -> None:
        settings = get_settings()
        self._db = client("dynamodb")
        self._runs = settings.runs_table
        self._shards = settings.shards_table
        self._admissions = AdmissionStore(settings.admission_table) if settings.admission_table else None

    def _now(self) -> dict[str, str]:
        return {"S": utcnow().isoformat()}

    def _run_key(self, run_id: str) -> dict[str, Any]:
        return {"run_id": {"S": run_id}}

    def _shard_key(self, run_id: str, shard_id: str) -> dict[str, Any]:
        return {"run_id": {"S": run_id}, "shard_id": {"S": shard_id}}

    def _conditional(self, call, *args: Any, **kwargs: Any) -> bool:  # noqa: ANN001
        """Run a conditional write or transaction; False when its condition did not hold."""
        try:
            call(*args, **kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if code == "ConditionalCheckFailedException" or (
                code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons
            ):
                return False
            raise
        return True

    def ensure_run(self, run_id: str, round_: int, scenarios: int, shards_total: int, spec: dict[str, Any]) -> None:
        """Create the run (PENDING) or fill in what an early event did not know. ``shards_total``
        is 0 when the sharder sizes the run: its shard-written events then say."""
        self._db.update_item(
            TableName=self._runs,
            Key=self._run_key(run_id),
            UpdateExpression=(
                "SET #s = if_not_exists(#s, :pending), #r = if_not_exists(#r, :round), scenarios = :sc,"
                " shards_total = if_not_exists(shards_total, :st), spec = :spec, created_at = if_not_exists(created_at, :now), updated_at = :now,"
                " shards_done = if_not_exists(shards_done, :zero), shards_failed = if_not_exists(shards_failed, :zero),"
                " duplicates = if_not_exists(duplicates, :zero)"
            ),
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={
                ":pending": {"S": Status.PENDING},
                ":round": _n(round_),
                ":sc": _n(scenarios),
                ":st": _n(shards_total),
                ":spec": {"S": json.dumps(spec, sort_keys=True)},
                ":now": self._now(),
                ":zero": _n(0),
            },
        )

    def reopen_run(self, run_id: str, round_: int) -> bool:
        """A retry round: FAILED → RUNNING, once per round."""
        ok = self._conditional(
            self._db.update_item,
            TableName=self._runs,
            Key=self._run_key(run_id),
            UpdateExpression="SET #s = :running, #r = :round, updated_at = :now REMOVE reason, failed_shards, finished_at",
            ConditionExpression="#s = :failed AND #r < :round",
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={
                ":running": {"S": Status.RUNNING},
                ":failed": {"S": Status.FAILED},
                ":round": _n(round_),
                ":now": self._now(),
            },
        )
        if not ok:
            self.count_duplicate(run_id)
        return ok

    def mark_running(self, run_id: str, shards_total: int) -> bool:
        """PENDING (or unknown) → RUNNING. False when the run had already moved on."""
        return self._conditional(
            self._db.update_item,
            TableName=self._runs,
            Key=self._run_key(run_id),
            UpdateExpression="SET #s = :running, shards_total = :st, updated_at = :now",
            ConditionExpression="attribute_not_exists(#s) OR #s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={**_OPEN, ":st": _n(shards_total), ":now": self._now()},
        )

    def plan_shard(self, run_id: str, shard_id: str, round_: int, start: int, count: int) -> bool:
        """A planned shard becomes PENDING: a new one, or a FAILED one of an older round
        (then the run's failed counter gives it back). False when it is already known."""
        fields = {"start": start, "count": count, "attempt": 1, "updated_at": utcnow().isoformat()}
        item = {**self._shard_key(run_id, shard_id), "status": {"S": Status.PENDING}, "round": _n(round_)}
        item.update({k: _value(v) for k, v in fields.items()})
        if self._conditional(
            self._db.put_item, TableName=self._shards, Item=item, ConditionExpression="attribute_not_exists(shard_id)"
        ):
            return True
        clause, names, values = _set_clause(fields)
        reopened = self._conditional(
            self._db.transact_write_items,
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._shards,
                        "Key": self._shard_key(run_id, shard_id),
                        "UpdateExpression": f"SET #s = :pending, #r = :round, {clause} REMOVE #e",
                        "ConditionExpression": "#s = :failed AND #r < :round",
                        "ExpressionAttributeNames": {**_NAMES, "#e": "error", **names},
                        "ExpressionAttributeValues": {
                            ":pending": {"S": Status.PENDING},
                            ":failed": {"S": Status.FAILED},
                            ":round": _n(round_),
                            **values,
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": self._runs,
                        "Key": self._run_key(run_id),
                        "UpdateExpression": "ADD shards_failed :minus_one",
                        "ExpressionAttributeValues": {":minus_one": _n(-1)},
                    }
                },
            ],
        )
        if not reopened:
            self.count_duplicate(run_id)
        return reopened

    def finish_shard(
        self, run_id: str, shard_id: str, round_: int, status: Status, fields: dict[str, Any], var_99: float | None = None
    ) -> bool:
        """PENDING/RUNNING → COMPLETE or FAILED, and the run's counter, in one transaction; a
        shard's own VaR 99% adds to the run's sums for the partial estimate.

        Returns False (and counts a duplicate) when the shard had already finished."""
        counter = "shards_done" if status is Status.COMPLETE else "shards_failed"
        adds = {counter: _n(1)}
        if var_99 is not None and status is Status.COMPLETE:
            adds.update({"var99_n": _n(1), "var99_sum": {"N": repr(var_99)}, "var99_sumsq": {"N": repr(var_99 * var_99)}})
        add_clause = ", ".join(f"{name} :a{i}" for i, name in enumerate(adds))
        add_values = {f":a{i}": value for i, value in enumerate(adds.values())}
        clause, names, values = _set_clause({**fields, "updated_at": utcnow().isoformat()})
        done = self._conditional(
            self._db.transact_write_items,
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._shards,
                        "Key": self._shard_key(run_id, shard_id),
                        "UpdateExpression": f"SET #s = :to, #r = :round, {clause}",
                        "ConditionExpression": _OPEN_IN_ROUND,
                        "ExpressionAttributeNames": {**_NAMES, **names},
                        "ExpressionAttributeValues": {":to": {"S": status}, ":round": _n(round_), **_OPEN, **values},
                    }
                },
                {
                    "Update": {
                        "TableName": self._runs,
                        "Key": self._run_key(run_id),
                        "UpdateExpression": f"ADD {add_clause} SET updated_at = :now",
                        "ExpressionAttributeValues": {**add_values, ":now": self._now()},
                    }
                },
            ],
        )
        if not done:
            self.count_duplicate(run_id)
        return done

    def finish_run(self, run_id: str, round_: int, status: Status, fields: dict[str, Any]) -> bool:
        """PENDING/RUNNING → COMPLETE, FAILED or CANCELLED, once per round. The round's admission
        ticket, when it holds one, is given back in the same transaction: exactly once."""
        clause, names, values = _set_clause({**fields, "updated_at": utcnow().isoformat()})
        update = {
            "TableName": self._runs,
            "Key": self._run_key(run_id),
            "UpdateExpression": f"SET #s = :to, {clause}",
            "ConditionExpression": _OPEN_IN_ROUND,
            "ExpressionAttributeNames": {**_NAMES, **names},
            "ExpressionAttributeValues": {":to": {"S": status}, ":round": _n(round_), **_OPEN, **values},
        }
        ticket = self._admissions.ticket(run_id) if self._admissions else None
        if ticket is not None and ticket.round == round_:
            reasons = transact(self._db, [{"Update": update}, *self._admissions.release_items(ticket)])
            if reasons is None:
                return True
            if reasons[0] == "ConditionalCheckFailed":
                self.count_duplicate(run_id)
                return False
            # the ticket was given back meanwhile (reclaimed as stale): end the run alone
        done = self._conditional(self._db.update_item, **update)
        if not done:
            self.count_duplicate(run_id)
        return done

    def shards_total(self, run_id: str) -> int:
        """How many shards the run is planned in (0 while unknown)."""
        item = self._db.get_item(
            TableName=self._runs, Key=self._run_key(run_id), ProjectionExpression="shards_total", ConsistentRead=True
        ).get("Item", {})
        return int(item["shards_total"]["N"]) if "shards_total" in item else 0

    def shard_ends(self, run_id: str) -> list[ShardRecord]:
        """Each shard of the run the tracker knows: its status, and its error if it failed."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self._shards,
            KeyConditionExpression="run_id = :r",
            ProjectionExpression="shard_id, #s, #e",
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues={":r": {"S": run_id}},
            ConsistentRead=True,
        )
        return [
            ShardRecord(run_id=run_id, shard_id=item["shard_id"]["S"], status=item["status"]["S"], error=item.get("error", {}).get("S"))
            for page in pages
            for item in page["Items"]
        ]

    def record_execution(self, run_id: str, round_: int, execution_arn: str, status: ExecutionStatus) -> bool:
        """Note which execution runs the run's round, and its status: the first execution seen
        for a round newer than the one noted (its start, or its end if that came first), then
        that execution's end. A stale round, another execution of the noted round, a change
        after the end or a duplicate changes nothing (False). The run's status never moves here;
        a start seen before the run's run-requested leaves the run PENDING, as that would."""
        condition = "attribute_not_exists(execution_round) OR execution_round < :round"
        values = {
            ":arn": {"S": execution_arn},
            ":status": {"S": status},
            ":round": _n(round_),
            ":pending": {"S": Status.PENDING},
            ":now": self._now(),
        }
        if status is not ExecutionStatus.RUNNING:
            condition += " OR (execution_round = :round AND execution_arn = :arn AND execution_status = :running)"
            values[":running"] = {"S": ExecutionStatus.RUNNING}
        done = self._conditional(
            self._db.update_item,
            TableName=self._runs,
            Key=self._run_key(run_id),
            UpdateExpression=(
                "SET #s = if_not_exists(#s, :pending), execution_arn = :arn, execution_status = :status,"
                " execution_round = :round, updated_at = :now"
            ),
            ConditionExpression=f"(attribute_not_exists(#r) OR #r <= :round) AND ({condition})",
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues=values,
        )
        if not done:
            self.count_duplicate(run_id)
        return done

    def count_duplicate(self, run_id: str) -> None:
        """Count an event that changed nothing (a duplicate or a stale delivery)."""
        self._db.update_item(
            TableName=self._runs,
            Key=self._run_key(run_id),
            UpdateExpression="ADD duplicates :one",
            ExpressionAttributeValues={":one": _n(1)},
        )
