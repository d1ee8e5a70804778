"""API Gateway's IAM authorisation (Signature Version 4) for the local API.

A request passes when it is signed for this region and the service ``execute-api`` by a key
the verifier knows, within 5 minutes of now. The signature is recomputed with botocore's
``SigV4Auth`` over exactly the headers the request lists in ``SignedHeaders``, with the
request's own ``X-Amz-Date`` and the SHA-256 of the body it really carries (a client-sent
``x-amz-content-sha256`` must be that hash). A refusal is a 403 with API Gateway's JSON
message and ``x-amzn-ErrorType``.

API Gateway then evaluates the caller's IAM policies; nothing here does: locally, a known key
may call every method. Presigned (query-string) signatures are not accepted."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class Caller:
    """An access key of an IAM principal, and who that principal is."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    user_id: str
    user_arn: str
    session_token: str | None = None

    def credentials(self) -> Credentials:
        return Credentials(self.access_key_id, self.secret_access_key, self.session_token)

    def identity(self, source_ip: str, user_agent: str | None) -> dict[str, Any]:
        """``requestContext.identity`` as API Gateway fills it for an IAM-authorised request."""
        return {
            "accessKey": self.access_key_id,
            "accountId": self.account_id,
            "caller": self.user_id,
            "user": self.user_id,
            "userArn": self.user_arn,
            "sourceIp": source_ip,
            "userAgent": user_agent,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
        }


class SignatureRefused(Exception):
    """A request API Gateway would refuse with 403: the message and ``x-amzn-ErrorType``."""

    def __init__(self, message: str, error_type: str = "InvalidSignatureException") -> None:
        self.message = message
        self.error_type = error_type
        super().__init__(message)


class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4, over exactly the headers the request says it signed."""

    def __init__(self, caller: Caller, region: str, headers: HTTPHeaders, signed: list[str]) -> None:
        super().__init__(caller.credentials(), SERVICE, region)
        self._headers = headers
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            for value in self._headers.get_all(name) or ():
                chosen[name] = value
        return chosen


class SigV4Verifier:
    """Knows the callers' keys (access key id → key) and checks each request's signature."""

    def __init__(self, region: str, callers: Iterable[Caller] = ()) -> None:
        self.region = region
        self._lock = threading.Lock()
        self._callers = {caller.access_key_id: caller for caller in callers}

    def register(self, caller: Caller) -> None:
        with self._lock:
            self._callers[caller.access_key_id] = caller

    def verify(
        self, method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes, now: datetime | None = None
    ) -> Caller:
        """The caller who signed this request; raises ``SignatureRefused`` as API Gateway refuses.
        ``path`` is the request target as sent (path and query string)."""
        received = HTTPHeaders()
        for name, value in headers:
            received[name.lower()] = value
        authorization = received.get("authorization")
        if not authorization:
            raise SignatureRefused("Missing Authentication Token", "MissingAuthenticationTokenException")
        params, amz_date = _authorization(authorization, received.get("x-amz-date"))
        caller, scope_date = self._caller(params["Credential"], received.get("x-amz-security-token"))
        _check_time(scope_date, amz_date, now or datetime.now(timezone.utc))
        signed = [name.strip().lower() for name in params["SignedHeaders"].split(";")]
        if "host" not in signed:
            raise SignatureRefused("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        signature, canonical, string_to_sign = self._signature(caller, method, path, received, signed, body, amz_date)
        claimed_hash = received.get("x-amz-content-sha256")
        if not hmac.compare_digest(signature, params["Signature"]) or claimed_hash not in (None, _sha256(body)):
            raise SignatureRefused(
                f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
                f"The String-to-Sign should have been\n'{string_to_sign}'\n"
            )
        return caller

    def _caller(self, credential: str, token: str | None) -> tuple[Caller, str]:
        """The known caller of a credential scope (KEY/DATE/REGION/SERVICE/aws4_request), and its date."""
        parts = credential.split("/")
        if len(parts) != 5:
            raise SignatureRefused(
                f"Credential should be ACCESS_KEY/YYYYMMDD/{self.region}/{SERVICE}/aws4_request, not '{credential}'.",
                "IncompleteSignatureException",
            )
        key_id, date, region, service, terminator = parts
        if service != SERVICE:
            raise SignatureRefused(f"Credential should be scoped to correct service: '{SERVICE}'. ")
        if region != self.region:
            raise SignatureRefused(f"Credential should be scoped to a valid region, not '{region}'. ")
        if terminator != "aws4_request":
            raise SignatureRefused(f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. ")
        with self._lock:
            caller = self._callers.get(key_id)
        if caller is None or token != caller.session_token:
            raise SignatureRefused("The security token included in the request is invalid.", "UnrecognizedClientException")
        return caller, date

    def _signature(
        self, caller: Caller, method: str, path: str, headers: HTTPHeaders, signed: list[str], body: bytes, amz_date: str
    ) -> tuple[str, str, str]:
        """The signature of this request as its caller should have made it, with the canonical
        request and the string to sign (API Gateway shows both when they differ)."""
        request = AWSRequest(method=method, url=f"http://{headers.get('host', '')}{path}", data=body)
        request.context["timestamp"] = amz_date
        signer = _SignedHeadersOnly(caller, self.region, headers, signed)
        canonical = signer.canonical_request(request)  # the payload line: the real body's SHA-256
        string_to_sign = signer.string_to_sign(request, canonical)
        return signer.signature(string_to_sign, request), canonical, string_to_sign


def _authorization(authorization: str, amz_date: str | None) -> tuple[dict[str, str], str]:
    """The Authorization header's parameters and the request's X-Amz-Date, or a refusal that
    names everything missing."""
    algorithm, _, rest = authorization.strip().partition(" ")
    params = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if equals:
            params[name] = value.strip()
    problems = [] if algorithm == ALGORITHM else [f"Authorization header requires the '{ALGORITHM}' algorithm."]
    problems += [f"Authorization header requires '{p}' parameter." for p in ("Credential", "Signature", "SignedHeaders") if p not in params]
    if not amz_date or not _parse(amz_date):
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise SignatureRefused(" ".join(problems) + f" Authorization={authorization}", "IncompleteSignatureException")
    assert amz_date is not None
    return params, amz_date


def _check_time(scope_date: str, amz_date: str, now: datetime) -> None:
    if scope_date != amz_date[:8]:
        raise SignatureRefused(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    signed_at = _parse(amz_date)
    assert signed_at is not None
    if signed_at < now - MAX_SKEW:
        raise SignatureRefused(
            f"Signature expired: {amz_date} is now earlier than {_format(now - MAX_SKEW)} ({_format(now)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise SignatureRefused(
            f"Signature not yet current: {amz_date} is still later than {_format(now + MAX_SKEW)} ({_format(now)} + 5 min.)"
        )


def _parse(amz_date: str) -> datetime | None:
    try:
        return datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _format(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(SIGV4_TIMESTAMP)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
