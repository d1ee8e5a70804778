"""A local Lambda Invoke endpoint: the real handlers, in this process, behind Lambda's own
HTTP API (``POST /2015-03-31/functions/{name}/invocations``, the path the Lambda Runtime
Interface Emulator serves too), so that boto3's ``lambda.invoke`` works unchanged against it
(``SCENGRID_LAMBDA_ENDPOINT_URL``). moto's Lambda runs no code without Docker (moto_gaps 12).

As Lambda does: a payload over 6 MB is refused (413 RequestEntityTooLargeException), a
payload that is not JSON is refused (400 InvalidRequestContentException), an unknown
function is 404 ResourceNotFoundException, and a handler that raises is a 200 with
``X-Amz-Function-Error: Unhandled`` and ``{"errorMessage", "errorType", "stackTrace"}``; so is
a response over 6 MB (``Function.ResponseSizeTooLarge``)."""

from __future__ import annotations

import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from scengrid_cli.local.emulator import LOOPBACK, free_port
from scengrid_cli.local.http_api import LoopbackServer, send_reply
from scengrid_cli.local.pollers import LambdaContext, load_handler

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
Handler = Callable[[Any, Any], Any]


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"Type": "User", "message": message, "__type": kind}).encode()


class LocalLambdaEndpoint(LoopbackServer):
    """Serves ``functions`` (name -> dotted handler path) on ``http://127.0.0.1:<port>``."""

    def __init__(self, functions: dict[str, str], port: int | None = None, host: str = LOOPBACK,
                 memory_mb: int = 2048) -> None:
        self.port = port or free_port()
        self.memory_mb = memory_mb
        self._paths = dict(functions)
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self.invocations = 0  # accepted invocations, handled or failed
        self._server = ThreadingHTTPServer((host, self.port), self._request_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scengrid-lambda", daemon=True)

    def _handler(self, name: str) -> Handler:
        with self._lock:
            if name not in self._handlers:
                self._handlers[name] = load_handler(self._paths[name])
            return self._handlers[name]

    def invoke(self, name: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one RequestResponse invocation."""
        json_type = {"Content-Type": "application/json"}
        name = unquote(name).split(":function:")[-1].split(":")[0]  # a name, an ARN, or either with a qualifier
        if name not in self._paths:
            return 404, json_type, _error("ResourceNotFoundException", f"Function not found: {name}")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return 413, json_type, _error("RequestEntityTooLargeException",
                                          f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation")
        try:
            event = json.loads(payload or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return 400, json_type, _error("InvalidRequestContentException", f"Could not parse request body into json: {exc}")
        request_id = str(uuid.uuid4())
        context = LambdaContext(function_name=name, memory_limit_in_mb=self.memory_mb, aws_request_id=request_id,
                                invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{name}")
        headers = {**json_type, "X-Amz-Executed-Version": "$LATEST", "X-Amzn-RequestId": request_id}
        with self._lock:
            self.invocations += 1
        try:
            body = json.dumps(self._handler(name)(event, context)).encode()
        except Exception as exc:  # the function's error, reported as Lambda reports it
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                     "stackTrace": traceback.format_tb(exc.__traceback__)}
            return 200, {**headers, "X-Amz-Function-Error": "Unhandled"}, json.dumps(error).encode()
        if len(body) > MAX_PAYLOAD_BYTES:
            error = {"errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
                     "errorType": "Function.ResponseSizeTooLarge"}
            return 200, {**headers, "X-Amz-Function-Error": "Unhandled"}, json.dumps(error).encode()
        return 200, headers, body

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b""
                match = INVOKE_PATH.match(self.path.split("?")[0])
                if match is None:
                    status, headers, body = 404, {"Content-Type": "application/json"}, _error("UnknownOperationException", self.path)
                else:
                    status, headers, body = endpoint.invoke(match["name"], payload)
                send_reply(self, status, headers, body)

            def log_message(self, *args: Any) -> None:  # the handlers log for themselves
                return

        return Handler
