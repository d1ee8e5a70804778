"""The embedded AWS: moto's server on a free loopback port, in a thread of this process."""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request

from moto.server import ThreadedMotoServer

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class Emulator:
    def __init__(self) -> None:
        self.port = free_port()
        self._server: ThreadedMotoServer | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Emulator:
        # Step Functions service tasks call back into the server at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per emulated request
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        self._server.start()
        self.set_state_machine_execution(True)
        return self

    def set_state_machine_execution(self, on: bool) -> None:
        self._configure({"stepfunctions": {"execute_state_machine": on}})

    def _configure(self, config: dict) -> None:
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
