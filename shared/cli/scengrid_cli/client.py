"""The API client the CLI uses: the endpoint and key come from ``SCENGRID_API_URL`` and
``SCENGRID_API_KEY``, or from the state file ``scengrid local up`` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from scengrid.errors import ScengridError

LOCAL_STATE = Path(".scengrid") / "local.json"
TIMEOUT_S = 30


class ApiError(ScengridError):
    """The API refused a request; the message says what to do next."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.exit_code = {401: 5, 403: 5, 404: 4, 409: 3}.get(status, 2 if status < 500 else 1)
        super().__init__(message)


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCENGRID_", extra="ignore")

    api_url: str | None = Field(None, description="the API endpoint, e.g. https://…/prod")
    api_key: str | None = Field(None, description="the API key")


def local_state(path: Path = LOCAL_STATE) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


class ApiClient:
    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self._http = requests.Session()

    @classmethod
    def from_environment(cls) -> ApiClient:
        settings = ClientSettings()
        state = local_state() or {}
        url = settings.api_url or state.get("api_url")
        key = settings.api_key or state.get("api_key")
        if not url or not key:
            raise ScengridError(
                "no API to talk to: start one with `scengrid local up`, or set SCENGRID_API_URL and SCENGRID_API_KEY"
            )
        return cls(url, key)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        try:
            response = self._http.request(
                method,
                self.url + path,
                json=body,
                headers={"x-api-key": self.key, **(headers or {})},
                timeout=TIMEOUT_S,
            )
        except requests.ConnectionError as exc:
            raise ScengridError(f"cannot reach the API at {self.url}: is `scengrid local up` running?") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _explain(response))
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


def _explain(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("error") or body.get("message") or response.text[:300]
    advice = {
        401: "send an API key: set SCENGRID_API_KEY (or use the one `scengrid local up` wrote)",
        403: "the API key was refused: check SCENGRID_API_KEY",
        404: "check the run id with `scengrid runs`",
        409: "see `scengrid status RUN` for the run's state",
        413: "send a smaller request",
    }.get(response.status_code, "fix the request and send it again")
    return f"{response.status_code}: {message} ({advice})"
