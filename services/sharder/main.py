"""Sharder entrypoint: the first Batch job of a run (``python -m services.sharder.main``)."""

from __future__ import annotations

import sys

from pydantic_settings import SettingsConfigDict

from scengrid.errors import ScengridError
from scengrid.observability import service_logger
from scengrid.settings import JobEnv, get_settings
from scengrid.spec import RunSpec

from services.sharder.logic import shard_run

logger = service_logger("sharder")


class SharderEnv(JobEnv):
    model_config = SettingsConfigDict(env_prefix="SCENGRID_", extra="ignore")

    run_spec: RunSpec


def main() -> int:
    env = SharderEnv()  # type: ignore[call-arg]
    logger.append_keys(run_id=env.run_id)
    get_settings().require("bucket", "event_bus", "work_queue_prefix", "work_dead_letter_queue_url")
    try:
        sizing, queued = shard_run(env.run_id, env.run_spec, env.round)
    except ScengridError as exc:
        logger.error("sharding failed", extra={"error": str(exc)})
        return exc.exit_code
    logger.info("sharded", extra={"round": env.round, "queued": len(queued), "sizing": sizing.model_dump()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
