"""Fault injection for local chaos runs (``scengrid demo --chaos``). Off unless
``SCENGRID_CHAOS_DIR`` is set. Faults enter at the seams, never by changing our code paths:

- the client factory: a fraction of S3 and DynamoDB calls answer as throttled, before they
  are sent; botocore's retry policy must absorb them;
- publishing: a fraction of events is put twice; the tracker must refuse the copies;
- the worker: the shards named in ``SCENGRID_CHAOS_POISON_SHARDS`` fail to evaluate, as if
  the model raised (a poisoned shard), whether or not chaos is on.

Every injection is appended to ``<dir>/injections.log`` (one line per fault, any process), so
the run's summary can say what was injected."""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse

from scengrid.settings import get_settings

LOG_NAME = "injections.log"
THROTTLED_SERVICES = ("s3", "dynamodb")
_THROTTLE = {
    "s3": (503, b"<Error><Code>SlowDown</Code><Message>injected by scengrid chaos</Message></Error>"),
    "dynamodb": (400, b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected by scengrid chaos"}'),
}
_rng_lock = threading.Lock()
_rng: random.Random | None = None


def enabled() -> bool:
    return bool(get_settings().chaos_dir)


def _random() -> float:
    global _rng
    with _rng_lock:
        if _rng is None:
            _rng = random.Random(f"{get_settings().chaos_seed}:{os.getpid()}")
        return _rng.random()


def record(kind: str) -> None:
    directory = get_settings().chaos_dir
    if directory:
        with open(Path(directory) / LOG_NAME, "a") as log:
            log.write(kind + "\n")


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def add_throttling(client: Any, service: str) -> None:
    """Answer a fraction of this client's calls with the service's throttling error."""
    if service not in THROTTLED_SERVICES:
        return
    status, body = _THROTTLE[service]
    rate = get_settings().chaos_throttle_rate

    def maybe_throttle(request: Any, **_: Any) -> AWSResponse | None:
        if _random() >= rate:
            return None
        record(f"throttle.{service}")
        return AWSResponse(request.url, status, {}, _Body(body))

    client.meta.events.register(f"before-send.{client.meta.service_model.service_name}", maybe_throttle)


def _picked(seed: int, entry: dict[str, str], rate: float) -> bool:
    """A reproducible draw per event: the same run shape and seed duplicate the same events."""
    detail = json.loads(entry["Detail"])
    key = f"{seed}:{entry['DetailType']}:{detail.get('shard_id', '')}:{detail.get('round', 1)}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64 < rate


def duplicated(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """The entries again, for a fraction of them: they will be delivered twice."""
    settings = get_settings()
    copies = [e for e in entries if _picked(settings.chaos_seed, e, settings.chaos_duplicate_rate)]
    for _ in copies:
        record("duplicate_event")
    return copies


def poisoned(shard_id: str) -> bool:
    """Whether a fault drill forces this shard's model evaluation to fail."""
    return shard_id in {s.strip() for s in get_settings().chaos_poison_shards.split(",") if s.strip()}


def read_injections(directory: Path) -> dict[str, int]:
    log = directory / LOG_NAME
    return dict(Counter(log.read_text().split())) if log.is_file() else {}
