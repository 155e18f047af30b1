"""Retry a whole request whose transaction lost to a concurrent one.

A deadlock or a serialization failure on PostgreSQL (SQLSTATE 40P01, 40001), or a
``Contention`` from the core, means the request's transaction was rolled back and
nothing it did was kept. Running the request again is then safe and usually succeeds:
the other transaction has finished. The request owns its transaction, so the retry is
of the request as a whole, here, around the app.

The error handler (``api/errors.py``) renders such a failure as a 503 with
``Retry-After`` and marks the attempt retryable in its scope. This middleware holds
that answer back, replays the request body, and tries again, up to ``ATTEMPTS`` times
in all; only the last attempt's 503 reaches the client. Nothing else is retried.
"""

from __future__ import annotations

import asyncio
import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRYABLE = "ledger.retryable"
ATTEMPTS = 4
BACKOFF_SECONDS = 0.02  # doubled on every attempt, with jitter
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def mark_retryable(scope: Scope) -> None:
    """Say that this attempt failed only because a concurrent transaction won."""
    scope[RETRYABLE] = True


class RetryContention:
    def __init__(self, app: ASGIApp, *, attempts: int = ATTEMPTS) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body: list[Message] = []  # what the client sent so far, for the next attempt

        async def from_client() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message)
            return message

        for attempt in range(self.attempts):
            # The same scope each time (what routing writes into it, the route template
            # that the access log reads, is written again), without the last mark.
            scope.pop(RETRYABLE, None)
            retry = _Attempt(scope, send, last=attempt == self.attempts - 1)
            await self.app(scope, _replaying(list(body), from_client), retry.send)
            if not retry.held_back:
                return
            await asyncio.sleep(BACKOFF_SECONDS * 2**attempt * (0.5 + random.random()))  # noqa: S311


class _Attempt:
    """Passes an attempt's answer on, unless it is a retryable failure and not the last."""

    def __init__(self, scope: Scope, send: Send, *, last: bool) -> None:
        self.scope, self._send, self.last = scope, send, last
        self.held_back = False

    async def send(self, message: Message) -> None:
        if self.held_back:
            return
        if message["type"] == "http.response.start" and not self.last and self.scope.get(RETRYABLE):
            self.held_back = True
            return
        await self._send(message)


def _replaying(pending: list[Message], read_on: Receive) -> Receive:
    """A ``receive`` that hands out the body an earlier attempt read, then reads on."""

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await read_on()

    return receive
