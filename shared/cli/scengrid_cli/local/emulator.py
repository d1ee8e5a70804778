"""The embedded AWS: moto's server in a thread of this process (on a free loopback port by
default; on a given address for docker-compose)."""

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


def set_state_machine_execution(url: str, on: bool) -> None:
    """Turn moto's execution of state machines on or off, on the server at ``url``."""
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": on}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local emulator
        response.read()


class Emulator:
    def __init__(self, host: str = LOOPBACK, port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self._server: ThreadedMotoServer | None = None

    @property
    def url(self) -> str:
        """Where this process reaches the server."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Emulator:
        # Step Functions service tasks call back into the server at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per emulated request
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.set_state_machine_execution(True)
        return self

    def set_state_machine_execution(self, on: bool) -> None:
        set_state_machine_execution(self.url, on)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
