"""Collator entrypoint: the last Batch job of a run (``python -m services.collator.main``)."""

from __future__ import annotations

import sys

from scengrid.errors import ScengridError
from scengrid.observability import service_logger
from scengrid.settings import JobEnv, get_settings

from services.collator.logic import collate_run

logger = service_logger("collator")


def main() -> int:
    env = JobEnv()  # type: ignore[call-arg]
    logger.append_keys(run_id=env.run_id)
    settings = get_settings()
    settings.require("bucket", "event_bus", "runs_table", "shards_table")
    try:
        summary = collate_run(env.run_id, env.round, settings.collate_wait_s)
    except ScengridError as exc:
        logger.error("collation failed", extra={"error": str(exc)})
        return exc.exit_code
    logger.info("collated", extra={"scenarios": summary.scenarios, "var_99": summary.var_99})
    return 0


if __name__ == "__main__":
    sys.exit(main())
