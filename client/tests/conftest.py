"""The SDK's own tests: they run with only refund-ledger-client installed, against a
live ledger whose address and credentials come from the environment. The ledger's
suite (tests/client/test_package.py) builds the wheel, installs it alone in a virtual
environment, starts a ledger and runs these:

    LEDGER_URL                        the ledger's base URL
    LEDGER_CLIENT_ID, _SECRET         a credential with every scope
    LEDGER_NARROW_CLIENT_ID, _SECRET  a credential with only risk:read
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Ledger:
    url: str
    client_id: str
    secret: str
    narrow_id: str
    narrow_secret: str


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(
            f"{name} is not set: these tests run against a live ledger (see conftest.py)"
        )
    return value


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return Ledger(
        url=_env("LEDGER_URL"),
        client_id=_env("LEDGER_CLIENT_ID"),
        secret=_env("LEDGER_CLIENT_SECRET"),
        narrow_id=_env("LEDGER_NARROW_CLIENT_ID"),
        narrow_secret=_env("LEDGER_NARROW_CLIENT_SECRET"),
    )


@pytest.fixture
def black_hole() -> Iterator[str]:
    """The URL of a server that accepts connections and never answers: a ledger that
    hangs (a stuck proxy, a paused process)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def closed_port() -> str:
    """The URL of a port nothing listens on: a ledger that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Scripted:
    """A real HTTP server that answers the token endpoint, and answers every other
    path from a script of (status, headers, body) it plays in order, the last one
    again and again; ``seen`` lists the paths asked."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = script
        self.seen: list[str] = []


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    import http.server  # noqa: PLC0415 - only this fixture serves HTTP itself

    state = Scripted([])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            if self.path == "/oauth/token":
                self._send(200, {}, b'{"access_token":"t","token_type":"Bearer","expires_in":300}')
                return
            self.do_GET()

        def do_GET(self) -> None:
            state.seen.append(self.path)
            step = state.script.pop(0) if len(state.script) > 1 else state.script[0]
            self._send(*step)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def hang_up() -> Iterator[tuple[list[int], str]]:
    """A server that reads each request and closes the connection without answering
    (a ledger that crashed while handling it); the list counts the requests."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    count: list[int] = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                if conn.recv(65536):
                    count[0] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield count, f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
