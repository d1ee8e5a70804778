"""The API client the CLI uses. The API takes IAM auth, locally as on AWS: every request is
signed with Signature Version 4 (service ``execute-api``) by ``SigV4RequestAuth``.

Which API: ``SCENGRID_API_URL`` (a deployed stack, or any other; its region is
``SCENGRID_REGION``, or the one in an ``execute-api`` host name, or botocore's), else the state
file that ``scengrid local up`` writes (``.scengrid/local.json``).

Which credentials: botocore's chain (environment variables first, then ``AWS_PROFILE``, SSO,
a role…). For the local API, when the environment holds no credentials and names no profile,
the profile the local stack wrote (``scengrid-local`` in ``.scengrid/credentials``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, EnvProvider
from botocore.exceptions import BotoCoreError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from scengrid.errors import ScengridError

LOCAL_STATE = Path(".scengrid") / "local.json"
SERVICE = "execute-api"
TIMEOUT_S = 30
# Transport headers that a proxy or the HTTP stack may rewrite on the way: left out of the signature.
UNSIGNED_HEADERS = frozenset({"accept", "accept-encoding", "connection", "user-agent"})
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
POLICY_DOC = "docs/deploy.md, \"Who may call the API\""
NO_CREDENTIALS = (
    "no AWS credentials to sign the request with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a "
    "profile with AWS_PROFILE (a profile in ~/.aws/credentials or ~/.aws/config, SSO after `aws sso login`), or run "
    "where a role provides them; for the local stack, `scengrid local up` writes its profile to .scengrid/credentials"
)


class ApiError(ScengridError):
    """The API refused a request; the message says what to do next. A 429 (a limit of the
    deployment) exits 75, EX_TEMPFAIL: the same request may pass after ``retry_after_s``."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        self.status = status
        self.retry_after_s = retry_after_s
        self.exit_code = {401: 5, 403: 5, 404: 4, 409: 3, 429: 75}.get(status, 2 if status < 500 else 1)
        super().__init__(message)


class CredentialsUnavailable(ScengridError):
    """No credentials to sign with, or they cannot be loaded (an expired SSO session…)."""

    exit_code = 5


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCENGRID_", extra="ignore")

    api_url: str | None = Field(None, description="the API endpoint, e.g. https://<id>.execute-api.<region>.amazonaws.com/v1")
    region: str | None = Field(None, description="the API's region, when its URL does not say it")


def local_state(path: Path = LOCAL_STATE) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


class SigV4RequestAuth(requests.auth.AuthBase):
    """Signs a prepared request for API Gateway's IAM auth: botocore's SigV4 for ``execute-api``
    in ``region``, over the method, path, query, headers and the SHA-256 of the body."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body
        if isinstance(body, str):  # sent as the bytes that were hashed
            body = request.body = body.encode()
            request.headers["Content-Length"] = str(len(body))
        elif body is not None and not isinstance(body, bytes):
            raise TypeError("SigV4RequestAuth signs bodies given as bytes or text, not streams")
        headers = {name: value for name, value in request.headers.items() if name.lower() not in UNSIGNED_HEADERS}
        signed = AWSRequest(method=request.method, url=request.url, data=body or b"", headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        return request


@dataclass(frozen=True)
class CredentialSource:
    """Where the signing credentials came from, for messages: botocore's provider name
    (``env``, ``shared-credentials-file``, ``sso``…) and a description."""

    method: str
    description: str

    @classmethod
    def of(cls, session: botocore.session.Session, credentials: Credentials) -> CredentialSource:
        method = credentials.method or "unknown"
        profile = session.get_config_variable("profile") or "default"
        if method == "env":
            return cls(method, "the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        if method == "shared-credentials-file":
            return cls(method, f"profile {profile} from {_shown(session.get_config_variable('credentials_file'))}")
        if method == "config-file":
            return cls(method, f"profile {profile} from {_shown(session.get_config_variable('config_file'))}")
        roles = {
            "iam-role": "the instance's IAM role (instance metadata)",
            "container-role": "the container's IAM role (its credentials endpoint)",
            "assume-role-with-web-identity": "the web identity role in AWS_ROLE_ARN",
        }
        return cls(method, roles.get(method, f"profile {profile} ({method})"))


@dataclass(frozen=True)
class LocalProfile:
    """The profile ``scengrid local up`` wrote for its API, and the file it is in."""

    name: str
    file: str

    def selection(self) -> str:
        return f"AWS_PROFILE={self.name} AWS_SHARED_CREDENTIALS_FILE={_shown(self.file)}"


class ApiClient:
    def __init__(self, url: str, auth: SigV4RequestAuth, source: CredentialSource, local: LocalProfile | None = None) -> None:
        self.url = url.rstrip("/")
        self.source = source
        self.local = local  # set when the API is the local stack's
        self._http = requests.Session()
        self._http.auth = auth

    @classmethod
    def from_environment(cls) -> ApiClient:
        """The API and the credentials the environment selects (see the module's docstring)."""
        settings = ClientSettings()
        session = botocore.session.Session()
        state = None if settings.api_url else local_state()
        local = None
        if settings.api_url:
            url = settings.api_url
            region = settings.region or _region_of(url) or session.get_config_variable("region")
        elif state:
            if "profile" not in state:
                raise ScengridError(
                    f"{LOCAL_STATE} was written by an older scengrid: restart the stack (`scengrid local down`, "
                    "`scengrid local up`)"
                )
            url, region = state["api_url"], state["region"]
            local = LocalProfile(state["profile"], state["credentials_file"])
            if EnvProvider().load() is None and session.get_config_variable("profile") is None:
                session.set_config_variable("credentials_file", local.file)
                session.set_config_variable("profile", local.name)
        else:
            raise ScengridError(
                "no API to talk to: start one with `scengrid local up`, or set SCENGRID_API_URL to a deployed one"
            )
        if not region:
            raise ScengridError(f"which region is the API at {url} in? set SCENGRID_REGION (or AWS_REGION)")
        try:
            credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise CredentialsUnavailable(f"cannot load AWS credentials: {exc}") from exc
        if credentials is None:
            raise CredentialsUnavailable(NO_CREDENTIALS)
        return cls(url, SigV4RequestAuth(credentials, region), CredentialSource.of(session, credentials), local)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        try:
            response = self._http.request(method, self.url + path, json=body, headers=headers, timeout=TIMEOUT_S)
        except requests.ConnectionError as exc:
            hint = ": is `scengrid local up` running?" if self.local else ""
            raise ScengridError(f"cannot reach the API at {self.url}{hint}") from exc
        except BotoCoreError as exc:  # the credentials failed to load or refresh while signing
            raise CredentialsUnavailable(f"cannot load AWS credentials ({self.source.description}): {exc}") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, self._explain(response), _retry_after_s(response))
        return response

    def submit(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/runs", spec, headers).json()

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}").json()

    def runs(self, limit: int, next_token: str | None = None) -> dict[str, Any]:
        query = f"?limit={limit}" + (f"&next_token={next_token}" if next_token else "")
        return self.request("GET", f"/runs{query}").json()

    def shards(self, run_id: str, status: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", f"/runs/{run_id}/shards" + (f"?status={status}" if status else "")).json()

    def results(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}/results").json()

    def retry(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/runs/{run_id}/retry").json()

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/runs/{run_id}").json()

    def _explain(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        # API Gateway's signature mismatch goes on with the canonical request: its first line says
        # it; an IAM policy's denial says it in "Message"
        message = str(body.get("error") or body.get("message") or body.get("Message") or response.text[:300]).split("\n")[0]
        if response.status_code in (401, 403):
            return self._refused(response.status_code, message)
        advice = {
            404: "check the run id with `scengrid runs`",
            409: "see `scengrid status RUN` for the run's state",
            413: "send a smaller request",
            429: f"limit {body.get('limit', '?')}: nothing was submitted; send it again after {_retry_after_s(response) or '?'} s"
            " (Retry-After)",
        }.get(response.status_code, "fix the request and send it again")
        return f"{response.status_code}: {message} ({advice})"

    def _refused(self, status: int, message: str) -> str:
        """What was refused, with which credentials, and what to change."""
        lines = [
            f"the API at {self.url} refused the request ({status}: {message})",
            f"the request was signed with credentials from {self.source.description}",
        ]
        environment = self.source.method == "env"
        if self.local and environment:
            lines.append(
                "fix: environment credentials come first: unset AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                f"AWS_SESSION_TOKEN) to sign with the local stack's profile ({self.local.selection()})"
            )
        elif self.local:
            lines.append(
                f"fix: pick the local stack's profile: {self.local.selection()} (or unset AWS_PROFILE); if that profile "
                "was refused, restart the stack (`scengrid local down`, `scengrid local up`), which writes a fresh key"
            )
        else:
            other = (
                "environment credentials come first: unset AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to use a profile"
                if environment
                else "or pick another profile with AWS_PROFILE"
            )
            lines.append(
                "fix: sign with credentials of the stack's account whose IAM policy allows execute-api:Invoke on this "
                f"method ({POLICY_DOC}); {other}"
            )
        return "\n  ".join(lines)


def _retry_after_s(response: requests.Response) -> int | None:
    """The Retry-After header in seconds (the API sends whole seconds), when there is one."""
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def _region_of(url: str) -> str | None:
    """The region in a https://<id>.execute-api.<region>.amazonaws.com/… URL."""
    found = EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    return found.group(1) if found else None


def _shown(path: str | None) -> str:
    """A path as a user would type it: relative to the current folder when under it."""
    if not path:
        return "(unset)"
    full = Path(path).expanduser()
    try:
        return str(full.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)
