"""The ledger served over real sockets (uvicorn in a thread), for the SDK and browser
tests."""

from __future__ import annotations

import gc
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from api.app import create_app
from ledger.cli import uvicorn_options
from ledger.clock import Clock
from ledger.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(
    settings: Settings, *, clock: Clock | None = None, as_served: bool = False
) -> Iterator[tuple[str, FastAPI]]:
    """``(base URL, app)`` of the ledger on a free port, until the block ends; with
    ``as_served``, with the options `ledger serve` gives uvicorn (proxy headers …)."""
    app = create_app(settings, clock=clock)
    with serving_app(app, **(uvicorn_options(settings) if as_served else {})) as url:
        yield url, app


@contextmanager
def serving_app(app: ASGIApp, **options: Any) -> Iterator[str]:
    """The base URL of any ASGI app served on a free port, until the block ends."""
    port = free_port()
    options.pop("log_config", None)  # the test run's logging stays as it is
    server = uvicorn.Server(
        # loop="asyncio": "auto" would install uvloop's policy for the whole test process.
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            loop="asyncio",
            **options,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        # The server's loop ends with its last keep-alive transports still "closing";
        # they are collected here, where their ResourceWarning says nothing of a test.
        # A full collection: collecting only the young generations left an old, unclosed
        # database socket to be found during a later test (late in a run this costs
        # seconds per live-server test; the unclosed socket's owner is still to be found).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
