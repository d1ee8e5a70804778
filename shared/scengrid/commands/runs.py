"""``scengrid retry``: commands on runs of a deployed stack (``SCENGRID_*`` settings)."""

from __future__ import annotations

import argparse

from rich.console import Console

from scengrid.runs import retry_run
from scengrid.settings import get_settings

RETRY_EXAMPLES = """examples:
  export SCENGRID_RUNS_TABLE=scengrid-runs SCENGRID_EVENT_BUS=scengrid-bus  # the deployed stack
  scengrid retry 20261123-001241-6b4b31ea
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "retry",
        help="re-run only the FAILED or missing shards of a FAILED run, then collate it",
        description="Start the next round of a FAILED run: the sharder queues only the shards that are "
        "not COMPLETE, the workers evaluate them, and the collator merges every shard again. "
        "Talks to the stack named by the SCENGRID_* settings.",
        epilog=RETRY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_id", help="the run to retry")
    parser.set_defaults(func=retry)


def retry(args: argparse.Namespace) -> int:
    get_settings().require("runs_table", "event_bus")
    round_ = retry_run(args.run_id)
    Console().print(f"run {args.run_id}: round {round_} requested; only its FAILED or missing shards run again")
    return 0
