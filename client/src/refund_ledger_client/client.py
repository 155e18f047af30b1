"""``LedgerClient`` (sync) and ``AsyncLedgerClient``: the member SDK.

Both take the ledger's URL and a client credential, fetch and refresh access tokens
themselves, and give every call an overall deadline: ``deadline`` (0.8 s by default)
for the calls a refund decision waits on, ``background_deadline`` (30 s) for the rest;
any call takes ``deadline=`` to override it. Within it they retry 429 and 503 (waiting
``Retry-After``) and, for requests that are safe to send again, lost connections. They
return typed results (models.py) and raise typed errors (errors.py). Every method is the
same on both; the async one is awaited::

    with LedgerClient("https://ledger.example", client_id, client_secret) as ledger:
        subject = ledger.pseudonymize("phone", "13800138000")
        answer = ledger.query_risk(subject, reference="refund-8841")
        if answer.needs_review: ...
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from refund_ledger_client import models
from refund_ledger_client._core import (
    Action,
    CallState,
    Deadline,
    Engine,
    Flow,
    Flows,
    NeedToken,
    RetryPolicy,
    Send,
    Sleep,
    Steps,
)
from refund_ledger_client.hooks import LoggingObserver, Observer
from refund_ledger_client.identifiers import Kind
from refund_ledger_client.models import Fingerprint
from refund_ledger_client.proofs import CheckpointMemory

USER_AGENT = "refund-ledger-client/0.1"

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Plan(Generic[T]):
    """A call, ready to run: its name (for the observer), its flow, its deadline."""

    operation: str
    flow: Flow[T]
    deadline: float | None  # seconds; None: the client's default for the kind of call
    decision: bool  # a refund decision waits on it: the short default deadline


class api_call(Generic[P, T]):  # noqa: N801 - used as a decorator, like property
    """A method written once, returning ``T`` on ``LedgerClient`` and an awaitable
    ``T`` on ``AsyncLedgerClient`` (the two descriptors' overloads tell type checkers
    which)."""

    def __init__(self, build: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: LedgerClient, owner: type[Any] | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncLedgerClient, owner: type[Any] | None = None
    ) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: _Api | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        build = self._build

        @functools.wraps(build)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return obj._execute(build(obj, *args, **kwargs))

        return bound


class _Api:
    """The methods and settings, written once over ``_execute`` (which each flavour
    implements)."""

    _engine: Engine

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        deadline: float = 0.8,
        background_deadline: float = 30.0,
        scope: str | None = None,
        pseudonym_key: str | None = None,
        cache_size: int = 10_000,
        region: str = "CN",
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        checkpoint_store: str | os.PathLike[str] | None = None,
        locale: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        """``deadline``: seconds a refund-decision call (``pseudonymize``,
        ``query_risk``, ``check_evidence``, ``assess``) may take in all, retries
        included; ``background_deadline``: the same for every other call;
        ``pseudonym_key``: the ledger's published VOPRF public key, pinned (see
        docs/sdk.md); ``cache_size``: pseudonyms kept in memory (0: none); ``region``:
        how phone numbers without a country code are read; ``timeout``: the most any
        one network wait may take, within the deadline; ``transport``: an httpx
        transport (tests, proxies); ``checkpoint_store``: a file where the newest audit
        checkpoint seen is kept between runs (every later one must extend it);
        ``locale``: the language of the texts for the buyer (``zh-CN`` or ``en``; sent
        as ``Accept-Language``; without it the ledger's default, zh-CN); ``observer``:
        logging and metrics hooks (hooks.py; ``LoggingObserver`` by default)."""
        Deadline(deadline), Deadline(background_deadline)  # refused here, not on first use
        self._deadline = deadline
        self._background_deadline = background_deadline
        self._flows = Flows(
            pinned_key=pseudonym_key,
            cache_size=cache_size,
            region=region,
            checkpoints=CheckpointMemory(checkpoint_store),
        )
        http = self._make_http(base_url.rstrip("/"), transport)
        if locale is not None:
            http.headers["Accept-Language"] = locale
        self._engine = Engine(
            http,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            observer=observer or LoggingObserver(),
        )

    def _make_http(self, base_url: str, transport: Any) -> httpx.Client | httpx.AsyncClient:
        raise NotImplementedError

    def _execute(self, plan: Plan[T]) -> Any:
        raise NotImplementedError

    def _steps(self, plan: Plan[T]) -> Steps[T]:
        seconds = plan.deadline or (self._deadline if plan.decision else self._background_deadline)
        return self._engine.run(plan.operation, plan.flow, Deadline(seconds))

    # --- the calls --------------------------------------------------------------------

    @api_call
    def warm_up(self, *, deadline: float | None = None) -> Plan[None]:
        """Fetch an access token and the pseudonym key now, so that the first refund
        does not wait for them (call it when the service starts)."""

        return Plan("warm_up", self._flows.warm_up(), deadline, decision=False)

    @api_call
    def pseudonymize(
        self, kind: Kind | str, value: str, *, deadline: float | None = None
    ) -> Plan[str]:
        """The buyer's pseudonym (43 characters) for an identifier: ``kind`` is
        ``phone``, ``prc_id`` or ``email``. Normalized, blinded, evaluated by the
        ledger, the proof checked against its key, unblinded; cached."""
        return Plan("pseudonymize", self._flows.pseudonym(kind, value), deadline, decision=True)

    @api_call
    def pseudonymize_many(
        self, items: Sequence[tuple[Kind | str, str]], *, deadline: float | None = None
    ) -> Plan[list[str]]:
        """Pseudonyms for many identifiers, 100 per request, in order."""
        return Plan("pseudonymize", self._flows.pseudonymize(items), deadline, decision=False)

    @api_call
    def query_risk(
        self,
        subject: str,
        *,
        reference: str,
        purpose: str = "refund_review",
        deadline: float | None = None,
    ) -> Plan[models.RiskAnswer]:
        """The risk answer for a subject before a refund: score, band, reasons,
        ``recommendation`` (``proceed`` or ``manual_review``) and the explanation."""
        body = {"subject": subject, "purpose": purpose, "reference": reference}
        return Plan("query_risk", self._flows.query_risk(body), deadline, decision=True)

    @api_call
    def query_risk_batch(
        self, queries: Iterable[Mapping[str, Any]], *, deadline: float | None = None
    ) -> Plan[list[models.RiskBatchItem]]:
        """Up to 100 queries (each as ``query_risk``'s body); an item per query."""
        flow = self._flows.query_risk_batch(queries)
        return Plan("query_risk_batch", flow, deadline, decision=False)

    @api_call
    def check_evidence(
        self,
        photos: Sequence[Fingerprint],
        *,
        reference: str,
        purpose: str = "refund_review",
        subject: str | None = None,
        deadline: float | None = None,
    ) -> Plan[models.EvidenceCheck]:
        """Are these claim photos near copies of forged evidence confirmed at other
        platforms, or of your own listing photos? (``fingerprint()`` them first: the
        photos themselves are never sent.) With the claimant's ``subject``, a protective
        marker on them comes with the answer."""
        body: dict[str, Any] = {"photos": [p.to_json() for p in photos], "purpose": purpose}
        if subject is not None:
            body["subject"] = subject
        flow = self._flows.check_evidence(body | {"reference": reference})
        return Plan("check_evidence", flow, deadline, decision=True)

    @api_call
    def assess(
        self,
        identifiers: Sequence[tuple[Kind | str, str]],
        *,
        reference: str,
        photos: Sequence[Fingerprint] = (),
        purpose: str = "refund_review",
        deadline: float | None = None,
    ) -> Plan[tuple[list[models.RiskAnswer], models.EvidenceCheck | None]]:
        """Everything one refund decision needs under one deadline: the buyer's
        identifiers pseudonymized, their risk, and the claim photos checked. The
        ``RefundGate`` turns it into a decision."""
        flow = self._flows.assess(identifiers, photos, reference=reference, purpose=purpose)
        return Plan("assess", flow, deadline, decision=True)

    @api_call
    def register_listing_photos(
        self, photos: Iterable[tuple[str, Fingerprint]], *, deadline: float | None = None
    ) -> Plan[models.ListingPhotos]:
        """Register (listing reference, fingerprint) pairs: up to 1,000 per call,
        idempotent."""
        body = [{"reference": ref, "pdq": f.pdq, "quality": f.quality} for ref, f in photos]
        flow = self._flows.register_listing_photos(body)
        return Plan("register_listing_photos", flow, deadline, decision=False)

    @api_call
    def withdraw_listing_photos(
        self, reference: str, *, deadline: float | None = None
    ) -> Plan[models.ListingWithdrawal]:
        """Stop a listing's photos matching."""
        flow = self._flows.withdraw_listing_photos(reference)
        return Plan("withdraw_listing_photos", flow, deadline, decision=False)

    @api_call
    def report(self, /, *, deadline: float | None = None, **fields: Any) -> Plan[models.Report]:
        """File a confirmed case (fields as ``POST /v1/reports``; ``evidence_photos``
        may be ``Fingerprint`` objects). Safe to retry: the same ``case_ref`` never
        files twice."""
        photos = fields.get("evidence_photos")
        if photos:
            fields["evidence_photos"] = [
                p.to_json() if isinstance(p, Fingerprint) else p for p in photos
            ]
        return Plan("report", self._flows.report(fields), deadline, decision=False)

    @api_call
    def report_batch(
        self,
        reports: Iterable[Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> Plan[models.BatchResult]:
        """File up to 1000 reports; retried with one ``Idempotency-Key``."""
        flow = self._flows.report_batch(reports, idempotency_key)
        return Plan("report_batch", flow, deadline, decision=False)

    @api_call
    def get_report(self, report_id: str, *, deadline: float | None = None) -> Plan[models.Report]:
        return Plan("get_report", self._flows.get_report(report_id), deadline, decision=False)

    @api_call
    def list_reports(
        self, /, *, deadline: float | None = None, **filters: Any
    ) -> Plan[models.ReportPage]:
        """A page of your reports (``status``, ``category``, ``subject``, ``filed_since``,
        ``filed_until``, ``cursor``, ``limit``); follow ``next_cursor`` for more."""
        return Plan("list_reports", self._flows.list_reports(filters), deadline, decision=False)

    @api_call
    def withdraw(
        self, report_id: str, reason: str, *, deadline: float | None = None
    ) -> Plan[models.Report]:
        """Withdraw one of your reports (``reason``: docs/reporting.md)."""
        flow = self._flows.withdraw(report_id, reason)
        return Plan("withdraw", flow, deadline, decision=False)

    @api_call
    def record_notice(
        self, report_id: str, notified_at: str, *, deadline: float | None = None
    ) -> Plan[models.Report]:
        """Record when you told the buyer of the report (art. 15: before it counts)."""
        flow = self._flows.record_notice(report_id, notified_at)
        return Plan("record_notice", flow, deadline, decision=False)

    @api_call
    def disclose(
        self, subject: str, *, reference: str, deadline: float | None = None
    ) -> Plan[models.Disclosure]:
        """The buyer's own file, for a buyer's access request made to you."""
        flow = self._flows.disclose(subject, reference)
        return Plan("disclose", flow, deadline, decision=False)

    @api_call
    def dispute(
        self,
        subject: str,
        report_ids: Sequence[str] | None = None,
        *,
        reference: str,
        deadline: float | None = None,
    ) -> Plan[models.Dispute]:
        """Open a dispute for the buyer (not resent after a lost connection): against
        ``report_ids``, or, without them, against every report on the buyer that counts
        now, each routed to the member that filed it."""
        flow = self._flows.dispute(subject, report_ids, reference)
        return Plan("dispute", flow, deadline, decision=False)

    @api_call
    def disputes_assigned(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        deadline: float | None = None,
    ) -> Plan[models.DisputeList]:
        """Dispute items on your reports, nearest deadline first (``.items``): answer
        each within the window, or the report stops counting."""
        flow = self._flows.list_disputes("assigned", status, cursor)
        return Plan("disputes_assigned", flow, deadline, decision=False)

    @api_call
    def disputes_opened(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        deadline: float | None = None,
    ) -> Plan[models.DisputeList]:
        """Disputes you opened on buyers' behalf, and where they stand (``.disputes``)."""
        flow = self._flows.list_disputes("opened", status, cursor)
        return Plan("disputes_opened", flow, deadline, decision=False)

    @api_call
    def resolve_dispute(
        self,
        dispute_id: str,
        report_id: str,
        *,
        outcome: str,
        reason_code: str,
        evidence_sha256: str | None = None,
        deadline: float | None = None,
    ) -> Plan[models.DisputeItem]:
        """Answer a dispute on one of your reports: ``upheld`` (with the SHA-256 of the
        re-checked evidence) or ``withdrawn``."""
        body = {"outcome": outcome, "reason_code": reason_code}
        if evidence_sha256 is not None:
            body["evidence_sha256"] = evidence_sha256
        flow = self._flows.resolve_dispute(dispute_id, report_id, body)
        return Plan("resolve_dispute", flow, deadline, decision=False)

    @api_call
    def add_statement(
        self, subject: str, report_id: str, text: str, *, deadline: float | None = None
    ) -> Plan[models.Report]:
        """Attach the buyer's statement to a report about them."""
        flow = self._flows.add_statement(subject, report_id, text)
        return Plan("add_statement", flow, deadline, decision=False)

    @api_call
    def place_marker(
        self, subject: str, *, reference: str, deadline: float | None = None
    ) -> Plan[models.Marker]:
        """At the buyer's request, mark their identity as misused (``identity_misused``):
        for two years every answer about them advises verifying who you deal with."""
        body = {"subject": subject, "reference": reference}
        flow = self._flows.marker("/v1/subjects/markers", body)
        return Plan("place_marker", flow, deadline, decision=False)

    @api_call
    def renew_marker(
        self, subject: str, marker_id: str, *, reference: str, deadline: float | None = None
    ) -> Plan[models.Marker]:
        """At the buyer's request, renew their marker for two more years from now."""
        body = {"subject": subject, "reference": reference}
        flow = self._flows.marker(f"/v1/subjects/markers/{marker_id}/renewal", body)
        return Plan("renew_marker", flow, deadline, decision=False)

    @api_call
    def remove_marker(
        self,
        subject: str,
        marker_id: str,
        *,
        reference: str,
        at_buyers_request: bool,
        deadline: float | None = None,
    ) -> Plan[models.Marker]:
        """Remove the buyer's marker: only because the buyer asked for it themself
        (``at_buyers_request=True``; the ledger refuses anything else)."""
        body = {"subject": subject, "reference": reference, "at_buyers_request": at_buyers_request}
        flow = self._flows.marker(f"/v1/subjects/markers/{marker_id}/removal", body)
        return Plan("remove_marker", flow, deadline, decision=False)

    @api_call
    def audit_receipt(
        self, event_id: int, verifier_key: str, *, deadline: float | None = None
    ) -> Plan[dict[str, object]]:
        """Fetch the receipt of one of your audit events (e.g. a risk answer's
        ``audit_event_id``) and verify it against the pinned checkpoint key; returns
        the event. Raises ``InvalidReceipt`` if it does not verify."""
        flow = self._flows.audit_receipt(event_id, verifier_key)
        return Plan("audit_receipt", flow, deadline, decision=False)

    @api_call
    def latest_checkpoint(
        self, verifier_key: str, *, deadline: float | None = None
    ) -> Plan[models.Checkpoint]:
        """The ledger's newest checkpoint, checked against the newest one this client
        has seen (consistency proved between them); raises ``InvalidReceipt`` for a
        log that shrank, forked or was rewritten."""
        flow = self._flows.latest_checkpoint(verifier_key)
        return Plan("latest_checkpoint", flow, deadline, decision=False)


_ENCODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _timeout(action: Send) -> None:
    action.request.extensions["timeout"] = httpx.Timeout(action.timeout).as_dict()


def _too_late(action: Send) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("no answer within the call's deadline", request=action.request)


class LedgerClient(_Api):
    """The synchronous SDK (``httpx.Client``); safe to share between threads."""

    _http: httpx.Client

    def _make_http(self, base_url: str, transport: Any) -> httpx.Client:
        self._token_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url, transport=transport, headers={"User-Agent": USER_AGENT}
        )
        return self._http

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _execute(self, plan: Plan[T]) -> T:
        return self._drive(self._steps(plan))

    def _drive(self, steps: Steps[T]) -> T:
        try:
            action = next(steps)
            while True:
                try:
                    outcome = self._perform(action)
                except BaseException as exc:  # an interrupt: the engine records it
                    steps.throw(exc)
                    raise
                action = steps.send(outcome)
        except StopIteration as done:
            result: T = done.value
            return result

    def _perform(self, action: Action) -> Any:
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            return None
        if isinstance(action, NeedToken):
            return self._token(action.state)
        return self._send(action)

    def _token(self, state: CallState) -> str:
        with self._token_lock:  # one token fetch, however many threads wait on it
            token = self._engine.token
            if token.usable() and token.value is not None:
                return token.value
            return self._drive(self._engine.fetch_token(state))

    def _send(self, action: Send) -> httpx.Response | httpx.RequestError:
        """The response read in full, checking the deadline between chunks (a network
        wait is bounded by ``timeout``, a trickling answer by the deadline)."""
        _timeout(action)
        try:
            response = self._http.send(action.request, stream=True)
            try:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if action.deadline.left() <= 0:
                        return _too_late(action)
            finally:
                response.close()
        except httpx.RequestError as exc:
            return exc
        # Decoded already: the copy does not say it is compressed.
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in _ENCODED]
        return httpx.Response(
            response.status_code, headers=headers, content=b"".join(chunks), request=action.request
        )


class AsyncLedgerClient(_Api):
    """The asynchronous SDK (``httpx.AsyncClient``); every method is awaited."""

    _http: httpx.AsyncClient

    def _make_http(self, base_url: str, transport: Any) -> httpx.AsyncClient:
        self._token_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=base_url, transport=transport, headers={"User-Agent": USER_AGENT}
        )
        return self._http

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _execute(self, plan: Plan[T]) -> Awaitable[T]:
        return self._drive(self._steps(plan))

    async def _drive(self, steps: Steps[T]) -> T:
        try:
            action = next(steps)
            while True:
                try:
                    outcome = await self._perform(action)
                except BaseException as exc:  # cancelled: the engine records it
                    steps.throw(exc)
                    raise
                action = steps.send(outcome)
        except StopIteration as done:
            result: T = done.value
            return result

    async def _perform(self, action: Action) -> Any:
        if isinstance(action, Sleep):
            await asyncio.sleep(action.seconds)
            return None
        if isinstance(action, NeedToken):
            return await self._token(action.state)
        return await self._send(action)

    async def _token(self, state: CallState) -> str:
        async with self._token_lock:  # one token fetch, however many calls wait on it
            token = self._engine.token
            if token.usable() and token.value is not None:
                return token.value
            return await self._drive(self._engine.fetch_token(state))

    async def _send(self, action: Send) -> httpx.Response | httpx.RequestError:
        """The response read in full, all of it within the time left."""
        _timeout(action)
        try:
            return await asyncio.wait_for(self._http.send(action.request), action.deadline.left())
        except TimeoutError:
            return _too_late(action)
        except httpx.RequestError as exc:
            return exc
