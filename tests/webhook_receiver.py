"""A member's webhook receiver on a real loopback socket, for the delivery tests: it
verifies every delivery's signature with the ``standardwebhooks`` library and answers
as a script of faults tells it (500s, timeouts, hang-ups, slow bodies, held requests)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

# What the receiver does with a request, in turn; "ok" once the script runs out.
OK, ERROR, SLOW, HANG_UP, TRICKLE, HOLD = "ok", "error", "slow", "hang_up", "trickle", "hold"


@dataclass
class Received:
    webhook_id: str
    signature: str
    raw: bytes
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    answered: str


@dataclass
class Receiver:
    port: int
    secrets: list[str] = field(default_factory=list)  # any of them may verify
    script: list[str] = field(default_factory=list)
    slow_seconds: float = 3.0
    delay: float = 0.0  # every answer waits this long (to make deliveries overlap)
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    held: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ledger-events"

    def next_fault(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else OK

    def verify(self, raw: bytes, headers: dict[str, str]) -> bool:
        """Whether one of the signatures is by one of ``secrets``. The timestamp is taken
        as sent: the tests move the ledger's clock by days, past the 5-minute tolerance
        a real receiver applies (``verify_webhook`` does; tested with a clock at now)."""
        sent = headers.get("webhook-signature", "").split()
        at = dt.datetime.fromtimestamp(int(headers["webhook-timestamp"]), dt.UTC)
        return any(
            Webhook(secret).sign(headers["webhook-id"], at, raw.decode("utf-8")) in sent
            for secret in self.secrets
        )

    def delivered(self) -> list[Received]:
        """Deliveries answered 2xx, in order."""
        return [r for r in self.received if r.answered == OK]

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count:
            assert time.monotonic() < deadline, f"{len(self.delivered())} of {count} arrived"
            time.sleep(0.02)
        return self.delivered()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            fault = receiver.next_fault()
            with receiver.lock:
                receiver.in_flight += 1
                receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
            try:
                self._answer(fault, raw, headers)
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1

        def _answer(self, fault: str, raw: bytes, headers: dict[str, str]) -> None:
            receiver.received.append(
                Received(
                    webhook_id=headers.get("webhook-id", ""),
                    signature=headers.get("webhook-signature", ""),
                    raw=raw,
                    headers=headers,
                    body=json.loads(raw),
                    verified=receiver.verify(raw, headers),
                    answered=fault,
                )
            )
            time.sleep(receiver.delay)
            if fault == HANG_UP:
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == SLOW:
                time.sleep(receiver.slow_seconds)
            if fault == HOLD:
                receiver.held.release()
                receiver.released.wait(30)
            status = 500 if fault == ERROR else 200
            body = b'{"ok": true}' if status == 200 else b"down"
            self.send_response(status)
            self.send_header("content-length", str(len(body) * (50 if fault == TRICKLE else 1)))
            self.end_headers()
            if fault == TRICKLE:  # a body that never finishes in time
                for _ in range(50):
                    self.wfile.write(body)
                    self.wfile.flush()
                    time.sleep(receiver.slow_seconds / 10)
                return
            self.wfile.write(body)

    return Handler


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a worker that timed out and hung up mid-answer: expected here


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    """Serve ``receiver`` on its port until the block ends (it may be started again on
    the same port, to play a receiver that was down)."""
    server = _Server(("127.0.0.1", receiver.port), _handler(receiver))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
