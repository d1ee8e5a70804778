"""Keeps a shard's message hidden while the worker is alive: if the worker dies (a Spot
reclaim, SIGKILL), the heartbeat stops and the shard reappears for another worker within one
visibility timeout."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any


class VisibilityHeartbeat:
    def __init__(self, sqs: Any, queue_url: str, receipt_handle: str, timeout_s: int) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._receipt = receipt_handle
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="visibility-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._timeout_s / 3):
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=self._receipt, VisibilityTimeout=self._timeout_s
                )
            except Exception:  # the message is gone (deleted, or taken over): nothing to keep alive
                return

    def start(self) -> VisibilityHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> VisibilityHeartbeat:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
