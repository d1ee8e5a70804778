"""The API over HTTP, through the local adapter that builds API Gateway proxy events, against
the emulator: auth, idempotency, paging, bad reads named by field (bad submissions: test_bad_inputs)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from scengrid.aws import client
from scengrid_cli.local.http_api import LocalApi
from services.tracker.openapi import SPEC_FILE, openapi_text

KEY = "test-key"
GOOD = {"scenarios": {"count": 2000, "seed": 3}, "shard_size": 1000, "workers": 1}


@pytest.fixture(scope="module")
def api(local_stack) -> Iterator[LocalApi]:  # noqa: ANN001
    server = LocalApi(api_key=KEY).start()
    yield server
    server.stop()


def call(api: LocalApi, method: str, path: str, body: object = None, key: str | None = KEY, **headers: str) -> requests.Response:
    if key is not None:
        headers["x-api-key"] = key
    data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return requests.request(method, api.url + path, data=data, headers=headers, timeout=30)


def test_openapi_spec_in_infra_is_current() -> None:
    assert SPEC_FILE.read_text() == openapi_text(), "run `make schemas`"


def test_requests_without_a_valid_key_are_refused(api: LocalApi) -> None:
    assert call(api, "GET", "/runs", key=None).status_code == 401
    assert call(api, "GET", "/runs", key="wrong").status_code == 403
    assert call(api, "POST", "/runs", GOOD, key="wrong").status_code == 403


def test_submit_is_accepted_and_an_idempotency_key_returns_the_same_run(api: LocalApi, local_stack) -> None:  # noqa: ANN001
    key = str(uuid.uuid4())
    first = call(api, "POST", "/runs", GOOD, **{"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]
    assert first.headers["Location"] == f"/runs/{run_id}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and call(api, "GET", f"/runs/{run_id}").status_code == 404:
        time.sleep(0.2)
    again = call(api, "POST", "/runs", GOOD, **{"Idempotency-Key": key})
    assert again.status_code == 202 and again.json()["run_id"] == run_id
    other = call(api, "POST", "/runs", {**GOOD, "workers": 2}, **{"Idempotency-Key": key})
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["error"]
    view = call(api, "GET", f"/runs/{run_id}").json()
    assert view["run_id"] == run_id and view["scenarios"] == 2000


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("GET", "/runs/no-such-run", 404, "run_id"),
        ("GET", "/runs/no-such-run/shards", 404, "run_id"),
        ("GET", "/runs/bad%20id!", 422, "run_id"),
        ("GET", "/runs?limit=0", 422, "limit"),
        ("GET", "/runs?next_token=garbage", 400, "next_token"),
        ("GET", "/runs/x/shards?status=DONE", 422, "status"),
        ("POST", "/runs/no-such-run/retry", 404, "run_id"),
        ("DELETE", "/runs/no-such-run", 404, "run_id"),
    ],
)
def test_bad_reads_and_actions_name_the_field(api: LocalApi, method: str, path: str, status: int, field: str) -> None:
    response = call(api, method, path)
    assert response.status_code == status, response.text
    assert field in response.text


def test_runs_are_listed_a_page_at_a_time(api: LocalApi) -> None:
    for _ in range(3):
        assert call(api, "POST", "/runs", GOOD).status_code == 202
    time.sleep(2)
    first = call(api, "GET", "/runs?limit=2").json()
    assert len(first["runs"]) == 2 and first["next_token"]
    second = call(api, "GET", f"/runs?limit=2&next_token={first['next_token']}").json()
    assert {r["run_id"] for r in first["runs"]}.isdisjoint({r["run_id"] for r in second["runs"]})
