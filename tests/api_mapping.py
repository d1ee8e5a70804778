"""POST /runs has no code behind it: API Gateway renders its mapping templates. This renders
them with a Velocity engine (airspeed) and the variables API Gateway gives a template
($input, $util, $context)."""

from __future__ import annotations

import json
from typing import Any

import airspeed

from tests.template_data import resources

REQUEST_ID = "c0ffee00-1234-4abc-9def-0123456789ab"


# ---------------------------------------------------------------- API Gateway's VTL variables
def escape_javascript(text: str) -> str:
    """$util.escapeJavaScript: Java's StringEscapeUtils.escapeJavaScript, which API Gateway uses."""
    named = {'"': '\\"', "'": "\\'", "\\": "\\\\", "/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
    return "".join(named.get(c) or (f"\\u{ord(c):04X}" if ord(c) < 32 or ord(c) > 0x7E else c) for c in text)


class Util:
    @staticmethod
    def escapeJavaScript(text: Any) -> str:  # noqa: N802 - the VTL name
        return escape_javascript(str(text))


class Input:
    def __init__(self, body: str) -> None:
        self._body = body

    def json(self, path: str) -> str:
        assert path == "$"
        return json.dumps(json.loads(self._body))

    def path(self, path: str) -> Any:
        assert path == "$"
        return json.loads(self._body)


def render(template: str, body: str) -> tuple[str, dict[str, Any]]:
    context: dict[str, Any] = {"requestId": REQUEST_ID, "responseOverride": {"header": {}}}
    out = airspeed.Template(template).merge({"input": Input(body), "util": Util(), "context": context})
    return out, context


# ---------------------------------------------------------------- the method as the template defines it
def runs_method() -> dict[str, Any]:
    return resources()["RunsPostMethod"]["Properties"]


def request_template() -> str:
    template, values = runs_method()["Integration"]["RequestTemplates"]["application/json"]["Fn::Sub"]
    assert set(values) == {"BusName"}
    return template.replace("${BusName}", "scengrid-bus")


def response_template(status: str) -> str:
    responses = {r["StatusCode"]: r for r in runs_method()["Integration"]["IntegrationResponses"]}
    return responses[status]["ResponseTemplates"]["application/json"]


def put_events_request(spec: dict[str, Any]) -> dict[str, Any]:
    out, _ = render(request_template(), json.dumps(spec))
    return json.loads(out)
