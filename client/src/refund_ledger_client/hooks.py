"""Logging and metrics hooks: the client tells an ``Observer`` about each HTTP attempt
and each finished call. Neither names a buyer: an attempt carries the method, the
path's template (``/v1/reports/{id}``, never an id), the status and the time; a call
its operation name, its outcome and how long it took.

The default, ``LoggingObserver``, logs to the ``refund_ledger_client`` logger: retries
and failures at WARNING, every call at DEBUG. To count calls in Prometheus::

    from prometheus_client import Counter, Histogram

    CALLS = Histogram("ledger_sdk_call_seconds", "ledger SDK calls", ["operation", "outcome"])

    class Metrics(LoggingObserver):
        def call_finished(self, call: CallEvent) -> None:
            super().call_finished(call)
            CALLS.labels(call.operation, call.outcome).observe(call.elapsed)

    LedgerClient(url, client_id, secret, observer=Metrics())
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("refund_ledger_client")

# An id is an all-digit segment (audit event ids) or a long one holding a digit (UUIDs,
# ULIDs, key ids); "v1" and the words of a path are neither.
_ID = re.compile(r"/(?:\d+|(?=[^/]*\d)[0-9A-Za-z_-]{8,})(?=/|$)")


def path_template(path: str) -> str:
    """The path with its ids left out: ``/v1/reports/0196…/withdrawal`` →
    ``/v1/reports/{id}/withdrawal``, ``/v1/audit/events/48214/receipt`` →
    ``/v1/audit/events/{id}/receipt`` (a label of bounded cardinality)."""
    return _ID.sub("/{id}", path)


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One HTTP request sent (or tried) within a call."""

    operation: str  # e.g. "query_risk"
    method: str
    path: str  # the template, without ids
    attempt: int  # 1 for the first send
    status: int | None  # None when no answer came (see ``error``)
    error: str | None  # the transport failure's class name, when there was one
    elapsed: float  # seconds
    retry_in: float | None  # seconds until the next attempt, None when none follows


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One SDK method call, finished."""

    operation: str
    outcome: str  # "ok", or the error's class name ("DeadlineExceeded", "NotFound" …)
    elapsed: float
    attempts: int  # HTTP requests sent, token fetches included


class Observer(Protocol):
    def attempt_finished(self, attempt: AttemptEvent) -> None: ...

    def call_finished(self, call: CallEvent) -> None: ...


class LoggingObserver:
    """Logs retries and failures at WARNING, every call at DEBUG."""

    def attempt_finished(self, attempt: AttemptEvent) -> None:
        if attempt.retry_in is not None:
            log.warning(
                "ledger %s %s %s: %s; retrying in %.0f ms (attempt %d)",
                attempt.operation,
                attempt.method,
                attempt.path,
                attempt.status or attempt.error,
                attempt.retry_in * 1000,
                attempt.attempt,
            )

    def call_finished(self, call: CallEvent) -> None:
        level = logging.DEBUG if call.outcome == "ok" else logging.WARNING
        log.log(
            level,
            "ledger %s: %s in %.0f ms (%d requests)",
            call.operation,
            call.outcome,
            call.elapsed * 1000,
            call.attempts,
        )
