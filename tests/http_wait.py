"""Waiting for a server the test started to answer HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable


def wait_until_answering(url: str, timeout: float, explain: Callable[[], str] = lambda: "") -> None:
    """Until ``url`` answers HTTP at all (a 403 without a signature is an answer); past
    ``timeout`` seconds, fail with what ``explain`` says (e.g. the server's log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout:.0f} s ({exc}); {explain()}") from None
            time.sleep(0.5)
