"""The admission table: what is in flight, counted exactly. One item holds the totals (runs and
their scenarios); each admitted round of a run holds a ticket (its run id, round, scenarios).

A round is admitted by one transaction that adds its ticket and raises the totals, on the
condition that the limits still hold: two concurrent submissions cannot both take the last
slot. A round is given back by one transaction that deletes its ticket and lowers the totals by
what the ticket says: the tracker runs it together with the write that ends the run
(``RunStore.finish_run``), so it happens once, whatever the duplicates."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from scengrid.aws import client
from scengrid.errors import Conflict

TOTALS_KEY = {"pk": {"S": "totals"}}
TICKET_PREFIX = "run#"
# DynamoDB cancels one of two transactions that touch the same item at once (TransactionConflict);
# every admission and release touches the totals item, so a conflict is tried again.
CONFLICT_ATTEMPTS = 8


@dataclass(frozen=True)
class Ticket:
    run_id: str
    round: int
    scenarios: int
    admitted_at: datetime


@dataclass(frozen=True)
class Totals:
    runs: int = 0
    scenarios: int = 0


def transact(db: Any, items: list[dict[str, Any]]) -> list[str] | None:
    """Run a transaction, again after a conflict with a concurrent one. None when it went
    through; else each item's cancellation reason (``"None"`` for those whose condition held)."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            db.transact_write_items(TransactItems=items)
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            if "TransactionConflict" not in reasons:
                return reasons
            if attempt == CONFLICT_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
    raise AssertionError("unreachable")


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _int(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


class AdmissionStore:
    def __init__(self, table: str) -> None:
        self._db = client("dynamodb")
        self._table = table

    def _ticket_key(self, run_id: str) -> dict[str, Any]:
        return {"pk": {"S": TICKET_PREFIX + run_id}}

    def admit(self, ticket: Ticket, max_runs: int, max_scenarios: int) -> bool:
        """Take a slot for the ticket's round if both limits allow it; False when one does not.
        Raises Conflict when the run already holds a ticket (one of its rounds is in flight)."""
        reasons = transact(self._db, self._admission_items(ticket, max_runs, max_scenarios))
        if reasons is None:
            return True
        if reasons[1] == "ConditionalCheckFailed":
            raise Conflict(f"run {ticket.run_id} has a round in flight already; see `scengrid status {ticket.run_id}`")
        return False

    def _admission_items(self, ticket: Ticket, max_runs: int, max_scenarios: int) -> list[dict[str, Any]]:
        """Raise the totals if they stay within both limits, and put the ticket if the run holds none."""
        totals = {
            "TableName": self._table,
            "Key": TOTALS_KEY,
            "UpdateExpression": "ADD runs :one, scenarios :n",
            "ConditionExpression": (
                "(attribute_not_exists(runs) OR runs < :max_runs) AND (attribute_not_exists(scenarios) OR scenarios <= :room)"
            ),
            "ExpressionAttributeValues": {
                ":one": _n(1), ":n": _n(ticket.scenarios), ":max_runs": _n(max_runs), ":room": _n(max_scenarios - ticket.scenarios),
            },
        }
        item = {
            **self._ticket_key(ticket.run_id),
            "run_id": {"S": ticket.run_id},
            "round": _n(ticket.round),
            "scenarios": _n(ticket.scenarios),
            "admitted_at": {"S": ticket.admitted_at.isoformat()},
        }
        put = {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        return [{"Update": totals}, {"Put": put}]

    def release_items(self, ticket: Ticket) -> list[dict[str, Any]]:
        """The transaction items that give the ticket's slot back: exactly once, as the ticket is
        deleted only if it is still this round's."""
        return [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": self._ticket_key(ticket.run_id),
                    "ConditionExpression": "#r = :round AND scenarios = :n",
                    "ExpressionAttributeNames": {"#r": "round"},
                    "ExpressionAttributeValues": {":round": _n(ticket.round), ":n": _n(ticket.scenarios)},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": TOTALS_KEY,
                    "UpdateExpression": "ADD runs :minus_one, scenarios :minus_n",
                    "ExpressionAttributeValues": {":minus_one": _n(-1), ":minus_n": _n(-ticket.scenarios)},
                }
            },
        ]

    def release(self, ticket: Ticket) -> bool:
        """Give the ticket's slot back; False when it was given back already."""
        return transact(self._db, self.release_items(ticket)) is None

    def ticket(self, run_id: str) -> Ticket | None:
        item = self._db.get_item(TableName=self._table, Key=self._ticket_key(run_id), ConsistentRead=True).get("Item")
        return _ticket_of(item) if item else None

    def tickets(self) -> list[Ticket]:
        """Every ticket held: one per round in flight, so a short scan of a small table."""
        pages = self._db.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True)
        return [_ticket_of(i) for page in pages for i in page["Items"] if i["pk"]["S"].startswith(TICKET_PREFIX)]

    def totals(self) -> Totals:
        item = self._db.get_item(TableName=self._table, Key=TOTALS_KEY, ConsistentRead=True).get("Item") or {}
        return Totals(runs=_int(item, "runs"), scenarios=_int(item, "scenarios"))


def _ticket_of(item: dict[str, Any]) -> Ticket:
    return Ticket(
        run_id=item["run_id"]["S"],
        round=_int(item, "round"),
        scenarios=_int(item, "scenarios"),
        admitted_at=datetime.fromisoformat(item["admitted_at"]["S"]),
    )
