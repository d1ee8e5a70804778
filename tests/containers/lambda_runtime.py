"""A stand-in for the Lambda Runtime API, the part that a runtime interface client (awslambdaric)
talks to: it hands out one invocation at a time on ``GET .../invocation/next`` and records what
the function answers (``.../response``, ``.../error``, ``init/error``).

With it a Lambda image runs as Lambda runs it, its own ENTRYPOINT and CMD, where the runtime
interface emulator cannot be downloaded: start the container with
``AWS_LAMBDA_RUNTIME_API=<api.address>`` and ``--network host``, then ``api.invoke(event)``.
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
ACCOUNT = "123456789012"


@dataclass
class Answer:
    kind: str  # "response" or "error"
    body: Any
    headers: dict[str, str]
    seconds: float  # from handing out the event to the answer


@dataclass
class _Invocation:
    request_id: str
    event: Any
    deadline_ms: int
    handed_out: float = 0.0
    answered: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None


class RuntimeApi:
    """``with RuntimeApi("scengrid-tracker") as api: ...``; the function's ARN and names come from
    ``function_name``."""

    def __init__(self, function_name: str, region: str = "us-east-1") -> None:
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.init_error: Any = None
        self.next_calls = 0
        self.first_answer_s: float | None = None  # from the API coming up (the container starts then) to the first answer
        self._started = time.monotonic()
        self._pending: queue.Queue[_Invocation] = queue.Queue()
        self._invocations: dict[str, _Invocation] = {}
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> RuntimeApi:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: Any, timeout_s: float = 120) -> Answer:
        """Queue ``event`` for the function and wait for its answer."""
        invocation = _Invocation(str(uuid.uuid4()), event, int((time.time() + timeout_s) * 1000))
        self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        deadline = time.monotonic() + timeout_s
        while not invocation.answered.wait(0.2):
            if self.init_error is not None:
                raise AssertionError(f"the function failed to start: {self.init_error}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to {invocation.request_id} in {timeout_s} s (next calls: {self.next_calls})")
        assert invocation.answer is not None
        return invocation.answer

    # ------------------------------------------------------------ HTTP
    def _next(self) -> _Invocation | None:
        self.next_calls += 1
        while not self._stopping.is_set():
            try:
                invocation = self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
            invocation.handed_out = time.monotonic()
            return invocation
        return None

    def _answer(self, request_id: str, kind: str, body: Any, headers: dict[str, str]) -> bool:
        invocation = self._invocations.get(request_id)
        if invocation is None:
            return False
        invocation.answer = Answer(kind, body, headers, time.monotonic() - invocation.handed_out)
        if self.first_answer_s is None:
            self.first_answer_s = time.monotonic() - self._started
        invocation.answered.set()
        return True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the container was removed meanwhile
                    self.close_connection = True

            def _body(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode(errors="replace")

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path != f"{PREFIX}/invocation/next":
                    return self._send(404)
                invocation = api._next()
                if invocation is None:  # the test is over, and the container is going away
                    self.close_connection = True
                    return None
                self._send(200, json.dumps(invocation.event).encode(), {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                })

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body, headers = self._body(), dict(self.headers.items())
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = body
                    return self._send(202, b'{"status": "OK"}')
                parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
                if len(parts) == 2 and parts[1] in ("response", "error") and api._answer(parts[0], parts[1], body, headers):
                    return self._send(202, b'{"status": "OK"}')
                self._send(404)

        return Handler
