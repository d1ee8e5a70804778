"""The local API's IAM auth (scengrid_cli.local.sigv4) against requests signed as the CLI signs
them (botocore's SigV4Auth): API Gateway's 403 for each way a request can fail it, and the
caller it names when the signature holds."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scengrid_cli.client import SigV4RequestAuth
from scengrid_cli.local.sigv4 import SIGNATURE_MISMATCH, Caller, SignatureRefused, SigV4Verifier

REGION = "eu-west-1"
URL = "http://127.0.0.1:8080"
CALLER = Caller(
    "AKIAEXAMPLEKEY000001", "s3cret/Example+Key", "123456789012", "AIDAEXAMPLEUSER00001",
    "arn:aws:iam::123456789012:user/quant",
)
SPEC = {"scenarios": {"count": 1000, "seed": 1}, "shard_size": 500, "workers": 1}


def signed(method: str, path: str, body: object = None, credentials: Credentials | None = None, region: str = REGION,
           headers: dict[str, str] | None = None) -> requests.PreparedRequest:
    auth = SigV4RequestAuth(credentials or CALLER.credentials(), region)
    return requests.Request(method, URL + path, json=body, headers=headers or {}, auth=auth).prepare()


def wire(request: requests.PreparedRequest) -> list[tuple[str, str]]:
    """The headers as the server receives them: the prepared ones, and Host from the URL."""
    return [("Host", urlsplit(request.url).netloc), *request.headers.items()]


def signed_at(request: requests.PreparedRequest) -> datetime:
    return datetime.strptime(request.headers["X-Amz-Date"], SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)


def verify(request: requests.PreparedRequest, body: bytes | None = None, now: datetime | None = None,
           verifier: SigV4Verifier | None = None, headers: list[tuple[str, str]] | None = None,
           method: str | None = None, path: str | None = None) -> Caller:
    verifier = verifier or SigV4Verifier(REGION, [CALLER])
    sent = request.body if body is None else body
    return verifier.verify(method or request.method, path or request.path_url, headers or wire(request), sent or b"", now)


def refusal(*args: object, **kwargs: object) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as refused:
        verify(*args, **kwargs)  # type: ignore[arg-type]
    return refused.value


def test_a_signed_request_names_its_caller() -> None:
    request = signed("POST", "/runs", SPEC, headers={"Idempotency-Key": "k-1"})
    assert verify(request) == CALLER
    identity = CALLER.identity("10.0.0.7", "scengrid")
    assert {k: identity[k] for k in ("accessKey", "user", "userArn", "caller", "accountId", "sourceIp")} == {
        "accessKey": "AKIAEXAMPLEKEY000001", "user": "AIDAEXAMPLEUSER00001", "caller": "AIDAEXAMPLEUSER00001",
        "userArn": "arn:aws:iam::123456789012:user/quant", "accountId": "123456789012", "sourceIp": "10.0.0.7",
    }


@pytest.mark.parametrize("path", ["/runs", "/runs?limit=2&next_token=abc%3D%3D", "/runs/bad%20id!", "/runs/r-1/shards?status=FAILED"])
def test_paths_and_queries_verify_as_signed(path: str) -> None:
    assert verify(signed("GET", path)) == CALLER


def test_no_authorization_header_is_a_missing_token() -> None:
    request = requests.Request("POST", URL + "/runs", json=SPEC).prepare()
    refused = refusal(request)
    assert refused.message == "Missing Authentication Token" and refused.error_type == "MissingAuthenticationTokenException"


def test_an_authorization_that_is_not_sigv4_names_what_it_lacks() -> None:
    request = requests.Request("GET", URL + "/runs", headers={"Authorization": "Bearer abc"}).prepare()
    message = refusal(request).message
    assert "requires 'Credential' parameter" in message and "requires 'Signature' parameter" in message
    assert "'X-Amz-Date'" in message


def test_an_unknown_access_key_is_an_invalid_token() -> None:
    stranger = Credentials("AKIAWRONGWRONGWRONG1", "wrong")
    refused = refusal(signed("GET", "/runs", credentials=stranger))
    assert refused.message == "The security token included in the request is invalid."
    assert refused.error_type == "UnrecognizedClientException"


def test_a_wrong_secret_does_not_match() -> None:
    wrong = Credentials(CALLER.access_key_id, "not-the-secret")
    assert refusal(signed("GET", "/runs", credentials=wrong)).message.startswith(SIGNATURE_MISMATCH)


def test_a_tampered_body_does_not_match() -> None:
    request = signed("POST", "/runs", SPEC)
    tampered = request.body.replace(b'"workers": 1', b'"workers": 9')
    assert tampered != request.body and len(tampered) == len(request.body)
    refused = refusal(request, body=tampered)
    assert refused.message.startswith(SIGNATURE_MISMATCH)
    assert hashlib.sha256(tampered).hexdigest() in refused.message  # the canonical request shows the real body's hash


@pytest.mark.parametrize("change", ["method", "path", "query", "signed header"])
def test_a_tampered_request_does_not_match(change: str) -> None:
    request = signed("DELETE", "/runs/r-1?x=1", headers={"Idempotency-Key": "k-1"})
    headers = wire(request)
    kwargs: dict = {
        "method": {"method": "GET"},
        "path": {"path": "/runs/r-2?x=1"},
        "query": {"path": "/runs/r-1?x=2"},
        "signed header": {"headers": [(k, "k-2" if k == "Idempotency-Key" else v) for k, v in headers]},
    }[change]
    assert refusal(request, **kwargs).message.startswith(SIGNATURE_MISMATCH)


def test_a_content_hash_header_must_be_the_bodys() -> None:
    body = json.dumps(SPEC).encode()
    honest = signed("POST", "/runs", SPEC, headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    assert verify(honest) == CALLER
    # signed over a claimed hash of another body: the signature holds for the claim, not for the body sent
    claimed = hashlib.sha256(b"{}").hexdigest()
    lying = AWSRequest(method="POST", url=URL + "/runs", data=body,
                       headers={"Content-Type": "application/json", "X-Amz-Content-SHA256": claimed})
    SigV4Auth(CALLER.credentials(), "execute-api", REGION).add_auth(lying)
    headers = [("Host", "127.0.0.1:8080"), *lying.headers.items()]
    verifier = SigV4Verifier(REGION, [CALLER])
    with pytest.raises(SignatureRefused, match="does not match"):
        verifier.verify("POST", "/runs", headers, body)
    with pytest.raises(SignatureRefused, match="does not match"):
        verifier.verify("POST", "/runs", [(k, v) for k, v in headers if k != "X-Amz-Content-SHA256"], body)


def test_a_signature_older_or_newer_than_five_minutes_is_refused() -> None:
    request = signed("GET", "/runs")
    at = signed_at(request)
    assert verify(request, now=at + timedelta(minutes=4, seconds=59)) == CALLER
    assert verify(request, now=at - timedelta(minutes=4, seconds=59)) == CALLER
    expired = refusal(request, now=at + timedelta(minutes=6)).message
    assert expired.startswith(f"Signature expired: {request.headers['X-Amz-Date']} is now earlier than ")
    assert expired.endswith(" - 5 min.)")
    early = refusal(request, now=at - timedelta(minutes=6)).message
    assert early.startswith(f"Signature not yet current: {request.headers['X-Amz-Date']} is still later than ")


def test_a_scope_for_another_service_or_region_is_refused() -> None:
    other_service = AWSRequest(method="GET", url=URL + "/runs")
    SigV4Auth(CALLER.credentials(), "lambda", REGION).add_auth(other_service)
    headers = [("Host", "127.0.0.1:8080"), *other_service.headers.items()]
    with pytest.raises(SignatureRefused) as refused:
        SigV4Verifier(REGION, [CALLER]).verify("GET", "/runs", headers, b"")
    assert refused.value.message == "Credential should be scoped to correct service: 'execute-api'. "
    assert "valid region, not 'us-east-1'" in refusal(signed("GET", "/runs", region="us-east-1")).message


def test_host_must_be_signed() -> None:
    request = signed("GET", "/runs")
    headers = [(k, v.replace("SignedHeaders=host;", "SignedHeaders=") if k == "Authorization" else v) for k, v in wire(request)]
    assert "must be a 'SignedHeader'" in refusal(request, headers=headers).message


def test_a_session_token_must_be_the_keys() -> None:
    temporary = Caller("ASIAEXAMPLEKEY000002", "temp-secret", "123456789012", "AROAEXAMPLE:session",
                       "arn:aws:sts::123456789012:assumed-role/quant/session", session_token="token-1")
    verifier = SigV4Verifier(REGION, [CALLER])
    verifier.register(temporary)
    assert verify(signed("GET", "/runs", credentials=temporary.credentials()), verifier=verifier) == temporary
    other_token = Credentials(temporary.access_key_id, temporary.secret_access_key, "token-2")
    assert "security token" in refusal(signed("GET", "/runs", credentials=other_token), verifier=verifier).message
    assert "security token" in refusal(signed("GET", "/runs", credentials=CALLER.credentials()),
                                       verifier=SigV4Verifier(REGION, [Caller(**{**CALLER.__dict__, "session_token": "t"})])).message


def test_a_text_body_is_sent_as_the_bytes_that_were_signed() -> None:
    request = requests.Request("POST", URL + "/runs", data=json.dumps({"note": "café"}, ensure_ascii=False),
                               auth=SigV4RequestAuth(CALLER.credentials(), REGION)).prepare()
    assert isinstance(request.body, bytes) and request.headers["Content-Length"] == str(len(request.body))
    assert verify(request) == CALLER
