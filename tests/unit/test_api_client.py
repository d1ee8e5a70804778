"""Which API and which credentials the CLI's client picks (scengrid_cli.client), from the
environment and the local stack's state, with botocore's real credential chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from scengrid.errors import ScengridError
from scengrid_cli.client import ApiClient, ApiError, CredentialsUnavailable

DEPLOYED = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean shell in an empty folder: no AWS variables, no ~/.aws files, no instance role."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "SCENGRID_API_URL", "SCENGRID_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def local_stack_state(folder: Path) -> Path:
    """What `scengrid local up` leaves: the state and the profile of the stack's key."""
    (folder / ".scengrid").mkdir()
    credentials = folder / ".scengrid" / "credentials"
    credentials.write_text("[scengrid-local]\naws_access_key_id = AKIALOCALLOCALLOCAL1\naws_secret_access_key = s\n")
    state = {"api_url": "http://127.0.0.1:4567", "region": "us-east-1", "profile": "scengrid-local",
             "credentials_file": str(credentials.resolve())}
    (folder / ".scengrid" / "local.json").write_text(json.dumps(state))
    return credentials


def test_a_deployed_api_takes_its_region_from_the_host_and_environment_credentials(shell: pytest.MonkeyPatch) -> None:
    shell.setenv("SCENGRID_API_URL", DEPLOYED)
    shell.setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENVENV1")
    shell.setenv("AWS_SECRET_ACCESS_KEY", "e")
    client = ApiClient.from_environment()
    assert client.url == DEPLOYED and client.local is None
    assert client._http.auth.region == "eu-west-1"
    assert client.source.method == "env" and "AWS_ACCESS_KEY_ID" in client.source.description


def test_the_local_stack_signs_with_its_profile_when_the_environment_names_none(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local_stack_state(tmp_path)
    client = ApiClient.from_environment()
    assert client.url == "http://127.0.0.1:4567" and client._http.auth.region == "us-east-1"
    assert client._http.auth.credentials.access_key == "AKIALOCALLOCALLOCAL1"
    assert client.source.description == "profile scengrid-local from .scengrid/credentials"


def test_environment_credentials_come_first_and_a_named_profile_is_used(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local_stack_state(tmp_path)
    shell.setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENVENV1")
    shell.setenv("AWS_SECRET_ACCESS_KEY", "e")
    assert ApiClient.from_environment()._http.auth.credentials.access_key == "AKIAENVENVENVENVENV1"
    shell.delenv("AWS_ACCESS_KEY_ID")
    shell.delenv("AWS_SECRET_ACCESS_KEY")
    other = tmp_path / "other"
    other.write_text("[someone]\naws_access_key_id = AKIASOMEONESOMEONE12\naws_secret_access_key = x\n")
    shell.setenv("AWS_SHARED_CREDENTIALS_FILE", str(other))
    shell.setenv("AWS_PROFILE", "someone")
    client = ApiClient.from_environment()
    assert client._http.auth.credentials.access_key == "AKIASOMEONESOMEONE12"
    assert client.source.description == "profile someone from other"


def test_an_api_without_a_region_asks_for_one(shell: pytest.MonkeyPatch) -> None:
    shell.setenv("SCENGRID_API_URL", "http://localhost:8080")
    with pytest.raises(ScengridError, match="SCENGRID_REGION"):
        ApiClient.from_environment()
    shell.setenv("SCENGRID_REGION", "us-east-1")
    with pytest.raises(CredentialsUnavailable) as missing:  # and no credentials anywhere
        ApiClient.from_environment()
    assert missing.value.exit_code == 5
    assert all(way in str(missing.value) for way in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "aws sso login", "scengrid local up"))


def test_no_api_at_all_says_how_to_get_one(shell: pytest.MonkeyPatch) -> None:
    with pytest.raises(ScengridError, match="scengrid local up"):
        ApiClient.from_environment()


class Canned(requests.adapters.BaseAdapter):
    """Answers every request with one response, as the API would."""

    def __init__(self, status: int, body: dict, headers: dict[str, str]) -> None:
        super().__init__()
        self.status, self.body, self.headers = status, body, headers

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        response = requests.Response()
        response.status_code, response.url, response.request = self.status, request.url, request
        response.headers.update({"Content-Type": "application/json", **self.headers})
        response._content = json.dumps(self.body).encode()
        return response

    def close(self) -> None:
        pass


def test_a_429_names_the_limit_and_when_to_send_it_again(shell: pytest.MonkeyPatch) -> None:
    shell.setenv("SCENGRID_API_URL", DEPLOYED)
    shell.setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENVENV1")
    shell.setenv("AWS_SECRET_ACCESS_KEY", "e")
    client = ApiClient.from_environment()
    body = {"error": "too many active runs: 32 of at most 32 are in flight; retry in 45 s, or ask the operator to raise "
            "max_active_runs (SCENGRID_MAX_ACTIVE_RUNS)", "limit": "max_active_runs", "maximum": 32, "current": 32,
            "requested": 1, "retry_after_s": 45}
    client._http.mount("https://", Canned(429, body, {"Retry-After": "45"}))
    with pytest.raises(ApiError) as refused:
        client.submit({"scenarios": {"count": 1000}})
    assert (refused.value.status, refused.value.exit_code, refused.value.retry_after_s) == (429, 75, 45)
    message = str(refused.value)
    assert message.startswith("429: too many active runs: 32 of at most 32")
    assert "limit max_active_runs" in message and "nothing was submitted" in message and "after 45 s (Retry-After)" in message
