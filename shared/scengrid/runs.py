"""Submitting a run: validate the RunSpec at the edge, then emit ``run-requested``."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from scengrid.events import RunRequested, publish
from scengrid.models import load_model
from scengrid.spec import RunSpec


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def submit_run(spec: RunSpec, run_id: str | None = None) -> str:
    """Validate that the model exists and takes these params, then request the run.

    Nothing is written before validation passes, so a bad spec leaves nothing behind."""
    load_model(spec.model.name, spec.model.params)
    run_id = run_id or new_run_id()
    publish([RunRequested(run_id=run_id, spec=spec)], service="api")
    return run_id
