"""The one place that makes boto3 clients: endpoint, region, retry policy and the chaos seam.

Retries are botocore's standard mode (exponential backoff with full jitter) on throttling,
5xx and transient network errors; other errors surface at once.

Every client of a process comes from one boto3 session, and every session of a process shares
one botocore loader: it caches the service models, endpoints and partitions it has read, so a
client costs tens of milliseconds instead of hundreds, also after the settings changed."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from scengrid.settings import get_settings

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=32)
# An endpoint override is the local emulator, on this machine over loopback: a CRC32 of every
# body in aws-chunked framing (decoded by the emulator) buys no integrity there and costs a
# third of an upload's time. AWS keeps botocore's checksums.
_LOCAL = _RETRIES.merge(Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"))
_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str], Any] = {}
_session: boto3.session.Session | None = None
_loader: Any = None  # botocore's data loader, kept when the session is renewed


def session() -> boto3.session.Session:
    """This process's boto3 session (credentials are resolved at its first client)."""
    global _session, _loader
    with _lock:
        if _session is None:
            core = botocore.session.get_session()
            if _loader is None:
                _loader = core.get_component("data_loader")
            else:
                core.register_component("data_loader", _loader)
            _session = boto3.session.Session(botocore_session=core)
        return _session


def client(service: str) -> Any:
    """A cached client for ``service`` configured from the settings.

    Clients are thread safe; they are cached per process (a forked child makes its own).
    """
    return _client(service, get_settings().endpoint_url)


def lambda_invoker() -> Any:
    """The Lambda client that invokes functions: at ``SCENGRID_LAMBDA_ENDPOINT_URL`` when it is
    set (locally, the invoke endpoint that runs the real handlers; the rest of Lambda's API
    stays with the emulator), else the same as ``client("lambda")``."""
    settings = get_settings()
    return _client("lambda", settings.lambda_endpoint_url or settings.endpoint_url)


def _client(service: str, endpoint_url: str | None) -> Any:
    settings = get_settings()
    key = (service, endpoint_url, settings.region)
    shared = session()
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = shared.client(
                service,
                region_name=settings.region,
                endpoint_url=endpoint_url,
                config=_LOCAL if endpoint_url else _RETRIES,
            )
            if settings.chaos_dir:
                from scengrid import chaos

                chaos.add_throttling(found, service)
            _clients[key] = found
        return found


def reset_clients() -> None:
    """Forget cached clients and the session's credentials (after the settings changed, or
    in a forked child)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
