"""The API over HTTP, through the local adapter that builds API Gateway proxy events, against
the emulator: IAM auth (SigV4), idempotency, paging, bad reads named by field (bad
submissions: test_bad_inputs)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from botocore.credentials import Credentials

from scengrid.aws import client
from scengrid_cli.client import SigV4RequestAuth
from scengrid_cli.local.http_api import LocalApi
from scengrid_cli.local.sigv4 import SIGNATURE_MISMATCH, Caller
from scengrid_cli.local.stack import REGION
from services.tracker.openapi import SPEC_FILE, openapi_text

GOOD = {"scenarios": {"count": 2000, "seed": 3}, "shard_size": 1000, "workers": 1}


@dataclass
class SignedApi:
    """The adapter, and the stack's key to sign with (``auth=None``: send unsigned)."""

    server: LocalApi
    auth: SigV4RequestAuth

    def call(self, method: str, path: str, body: object = None, auth: object = "stack", **headers: str) -> requests.Response:
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        signer = self.auth if auth == "stack" else auth
        return requests.request(method, self.server.url + path, data=data, headers=headers, auth=signer, timeout=30)


@pytest.fixture(scope="module")
def api(local_stack) -> Iterator[SignedApi]:  # noqa: ANN001
    server = LocalApi([local_stack.api_user], REGION).start()
    yield SignedApi(server, SigV4RequestAuth(local_stack.api_user.credentials(), REGION))
    server.stop()


def new_iam_user() -> Caller:
    """Another IAM user of the emulator's account, with an access key."""
    iam = client("iam")
    user = iam.create_user(UserName=f"api-test-{uuid.uuid4().hex[:8]}")["User"]
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    account = user["Arn"].split(":")[4]
    return Caller(key["AccessKeyId"], key["SecretAccessKey"], account, user["UserId"], user["Arn"])


def test_openapi_spec_in_infra_is_current() -> None:
    assert SPEC_FILE.read_text() == openapi_text(), "run `make schemas`"


def test_requests_without_a_valid_signature_get_api_gateways_403(api: SignedApi, local_stack) -> None:  # noqa: ANN001
    unsigned = api.call("GET", "/runs", auth=None)
    assert unsigned.status_code == 403 and unsigned.json() == {"message": "Missing Authentication Token"}
    stranger = SigV4RequestAuth(Credentials("AKIAWRONGWRONGWRONG1", "wrong"), REGION)
    unknown = api.call("POST", "/runs", GOOD, auth=stranger)
    assert unknown.status_code == 403 and unknown.json() == {"message": "The security token included in the request is invalid."}
    wrong_secret = SigV4RequestAuth(Credentials(local_stack.api_user.access_key_id, "not-the-secret"), REGION)
    mismatch = api.call("GET", "/runs", auth=wrong_secret)
    assert mismatch.status_code == 403 and mismatch.json()["message"].startswith(SIGNATURE_MISMATCH)
    assert mismatch.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_a_body_changed_after_signing_is_refused(api: SignedApi) -> None:
    prepared = requests.Request("POST", api.server.url + "/runs", json=GOOD, auth=api.auth).prepare()
    prepared.body = prepared.body.replace(b'"workers": 1', b'"workers": 7')
    refused = requests.Session().send(prepared, timeout=30)
    assert refused.status_code == 403 and refused.json()["message"].startswith(SIGNATURE_MISMATCH)


def test_the_stack_user_may_invoke_the_stacks_api_as_on_aws(local_stack) -> None:  # noqa: ANN001
    """The key the local API lets in belongs to an IAM user of the emulator whose inline policy
    grants what a user needs on AWS: execute-api:Invoke on the stack's API."""
    iam = client("iam")
    user = local_stack.api_user
    assert user.user_arn == f"arn:aws:iam::{user.account_id}:user/scengrid-local"
    keys = iam.list_access_keys(UserName="scengrid-local")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [user.access_key_id]
    stack = client("cloudformation").describe_stacks(StackName="scengrid")["Stacks"][0]
    # without images the template creates no REST API (the adapter serves it): any API of the account
    api_id = next((o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "RestApiId"), "*")
    policy = iam.get_user_policy(UserName="scengrid-local", PolicyName="invoke-api")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"] == [{
        "Sid": "CallTheApi", "Effect": "Allow", "Action": "execute-api:Invoke",
        "Resource": f"arn:aws:execute-api:{REGION}:{user.account_id}:{api_id}/*",
    }]


def test_a_registered_key_gets_in_and_an_unregistered_one_does_not(api: SignedApi) -> None:
    other = new_iam_user()
    signer = SigV4RequestAuth(other.credentials(), REGION)
    assert api.call("GET", "/runs?limit=1", auth=signer).status_code == 403
    api.server.register(other)
    assert api.call("GET", "/runs?limit=1", auth=signer).status_code == 200


def test_submit_is_accepted_and_an_idempotency_key_returns_the_same_run(api: SignedApi, local_stack) -> None:  # noqa: ANN001
    key = str(uuid.uuid4())
    first = api.call("POST", "/runs", GOOD, **{"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]
    assert first.headers["Location"] == f"/runs/{run_id}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and api.call("GET", f"/runs/{run_id}").status_code == 404:
        time.sleep(0.2)
    again = api.call("POST", "/runs", GOOD, **{"Idempotency-Key": key})
    assert again.status_code == 202 and again.json()["run_id"] == run_id
    other = api.call("POST", "/runs", {**GOOD, "workers": 2}, **{"Idempotency-Key": key})
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["error"]
    view = api.call("GET", f"/runs/{run_id}").json()
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
def test_bad_reads_and_actions_name_the_field(api: SignedApi, method: str, path: str, status: int, field: str) -> None:
    response = api.call(method, path)
    assert response.status_code == status, response.text
    assert field in response.text


def test_runs_are_listed_a_page_at_a_time(api: SignedApi) -> None:
    for _ in range(3):
        assert api.call("POST", "/runs", GOOD).status_code == 202
    time.sleep(2)
    first = api.call("GET", "/runs?limit=2").json()
    assert len(first["runs"]) == 2 and first["next_token"]
    second = api.call("GET", f"/runs?limit=2&next_token={first['next_token']}").json()
    assert {r["run_id"] for r in first["runs"]}.isdisjoint({r["run_id"] for r in second["runs"]})


def test_a_run_accepted_but_not_yet_recorded_is_pending_not_missing(api: SignedApi, local_stack) -> None:  # noqa: ANN001
    """Between the 202 and the tracker's record of run-requested, the run's admission ticket
    answers for it: GET /runs/{id} says PENDING, with its round and size."""
    from datetime import datetime, timezone

    from services.tracker.admission import AdmissionStore, Ticket

    run_id = f"accepted-{uuid.uuid4().hex[:8]}"
    assert api.call("GET", f"/runs/{run_id}").status_code == 404
    store = AdmissionStore(local_stack.settings.admission_table)
    ticket = Ticket(run_id=run_id, round=1, scenarios=12_345, admitted_at=datetime.now(timezone.utc))
    assert store.admit(ticket, max_runs=1_000, max_scenarios=10**12)
    try:
        view = api.call("GET", f"/runs/{run_id}").json()
        assert (view["status"], view["round"], view["scenarios"], view["progress"]["shards_done"]) == ("PENDING", 1, 12_345, 0)
    finally:
        store.release(ticket)
    assert api.call("GET", f"/runs/{run_id}").status_code == 404
