"""The local API endpoint: HTTP on a loopback port, turned into the API Gateway (REST, proxy)
events the API Lambda receives on AWS, behind API Gateway's IAM auth (SigV4, ``sigv4.py``).
``POST /predict`` goes to the inference Lambda's handler, as the template routes it."""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from scengrid_cli.local.emulator import LOOPBACK, free_port
from scengrid_cli.local.pollers import LambdaContext, load_handler
from scengrid_cli.local.sigv4 import Caller, SignatureRefused, SigV4Verifier

API_HANDLER = "services.tracker.api.lambda_handler"
PREDICT_PATH = "/predict"
PREDICT_HANDLER = "services.inference.handler.lambda_handler"
JSON = {"Content-Type": "application/json"}


def proxy_event(method: str, url: str, headers: dict[str, str], body: str | None, identity: dict[str, Any]) -> dict[str, Any]:
    """The REST API proxy-integration event for one request, from the caller ``identity``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "local",
            "httpMethod": method,
            "path": parts.path,
            "identity": identity,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def send_reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """One HTTP response: the status, the headers, Content-Length and the body."""
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


class LoopbackServer:
    """A ThreadingHTTPServer (``_server``) served by a daemon thread (``_thread``) on ``port``."""

    port: int
    _server: ThreadingHTTPServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalApi(LoopbackServer):
    """Serves the API Lambda on ``http://127.0.0.1:<port>``, behind IAM auth: a request must be
    signed (SigV4, service execute-api, ``region``) with the key of one of ``callers`` (or of a
    caller registered later), else API Gateway's 403."""

    def __init__(self, callers: Iterable[Caller], region: str, port: int | None = None, host: str = LOOPBACK) -> None:
        self.verifier = SigV4Verifier(region, callers)
        self.port = port or free_port()
        self._handler: Callable[[dict[str, Any], Any], dict[str, Any]] = load_handler(API_HANDLER)
        self._predict: Callable[[dict[str, Any], Any], dict[str, Any]] = load_handler(PREDICT_HANDLER)
        # One invocation at a time per function, as one Lambda execution environment serves one
        # request at a time (the handlers keep per-request state: the resolver's context).
        self._environments = {"scengrid-api": threading.Lock(), "scengrid-inference": threading.Lock()}
        self._server = ThreadingHTTPServer((host, self.port), self._request_handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="scengrid-api", daemon=True)

    def register(self, caller: Caller) -> None:
        """Accept requests signed with this caller's key too."""
        self.verifier.register(caller)

    def invoke(
        self, method: str, url: str, header_items: list[tuple[str, str]], raw: bytes, source_ip: str = LOOPBACK
    ) -> tuple[int, dict[str, str], bytes]:
        """One request as API Gateway serves it: the signature checked, then the proxy event to
        the route's Lambda handler, and its response."""
        try:
            caller = self.verifier.verify(method, url, header_items, raw)
        except SignatureRefused as refused:
            return 403, {**JSON, "x-amzn-ErrorType": refused.error_type}, json.dumps({"message": refused.message}).encode()
        try:
            body = raw.decode() if raw else None
        except UnicodeDecodeError:  # a REST API without binary media types takes text bodies only
            return 400, JSON, json.dumps({"message": "the request body is not UTF-8: send JSON text"}).encode()
        headers = {k.lower(): v for k, v in header_items}
        event = proxy_event(method, url, headers, body, caller.identity(source_ip, headers.get("user-agent")))
        predict = event["path"] == PREDICT_PATH and method == "POST"
        handler, function = (self._predict, "scengrid-inference") if predict else (self._handler, "scengrid-api")
        try:
            with self._environments[function]:
                response = handler(event, LambdaContext(function_name=function, aws_request_id=event["requestContext"]["requestId"]))
        except Exception:  # a crashed Lambda: API Gateway answers 502, and so do we
            traceback.print_exc()
            return 502, JSON, json.dumps({"message": "Internal server error"}).encode()
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = values[-1]
        return int(response["statusCode"]), out_headers, (response.get("body") or "").encode()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, payload = api.invoke(self.command, self.path, self.headers.items(), raw, self.client_address[0])
                send_reply(self, status, headers, payload)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the API, as behind API Gateway: the resolver answers
                # the ones it has no route for (the server would otherwise answer 501).
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, *args: Any) -> None:  # requests are logged by the Lambda's logger
                return

        return Handler
