"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 (an ephemeral port) in a thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "T0KEN-s3cret"  # in the path, as chat services put it: it must never be printed


@dataclass(frozen=True)
class Received:
    path: str
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST and answers each with status and answer."""

    status: int = 200
    answer: bytes = b"ok"
    received: list[Received] = field(default_factory=list)
    port: int = 0
    headers: tuple[tuple[str, str], ...] = ()  # more headers for every answer (a Location)
    trickle: float = 0.0  # seconds between the answer's bytes: a receiver that is slow on purpose
    got_other: list[str] = field(default_factory=list)  # requests other than POST, by method and path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{TOKEN}"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(size)
            receiver.received.append(Received(self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(receiver.status)
            for name, value in receiver.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.answer)))
            self.end_headers()
            if not receiver.trickle:
                self.wfile.write(receiver.answer)
                return
            for byte in receiver.answer:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(receiver.trickle)

        def do_GET(self) -> None:
            receiver.got_other.append(f"GET {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts what arrived."""

    return Handler


@contextmanager
def receiving(
    status: int = 200, answer: bytes = b"ok", *, headers: tuple[tuple[str, str], ...] = (), trickle: float = 0.0
) -> Iterator[Receiver]:
    """A receiver listening until the block ends."""
    receiver = Receiver(status, answer, headers=headers, trickle=trickle)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers: requests time out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]
