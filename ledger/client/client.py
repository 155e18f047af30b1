"""``LedgerClient`` (sync) and ``AsyncLedgerClient``: the member SDK.

Both take the ledger's URL and a client credential, fetch and refresh access tokens
themselves, retry on 429/503 and connection errors (waiting ``Retry-After``), and turn
the ledger's problem responses into ``LedgerApiError``. Every method is the same on
both; the async one is awaited::

    with LedgerClient("https://ledger.example", client_id, client_secret) as ledger:
        subject = ledger.pseudonymize("phone", "13800138000")
        answer = ledger.query_risk(subject, reference="refund-8841")
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from ledger.client._core import (
    RETRY_STATUSES,
    Call,
    Flow,
    Flows,
    RetryPolicy,
    TokenState,
    raise_for_problem,
    token_request,
)
from ledger.client.evidence import Fingerprint
from ledger.client.identifiers import Kind
from ledger.client.proofs import CheckpointMemory

USER_AGENT = "refund-ledger-sdk/0.1"


class _Api:
    """The methods and settings, written once over ``_run`` and ``_make_http`` (which
    each flavour implements)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        pseudonym_key: str | None = None,
        cache_size: int = 10_000,
        region: str = "CN",
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        checkpoint_store: str | os.PathLike[str] | None = None,
        locale: str | None = None,
    ) -> None:
        """``pseudonym_key``: the ledger's published VOPRF public key, pinned (see
        docs/sdk.md); ``cache_size``: pseudonyms kept in memory (0: none); ``region``:
        how phone numbers without a country code are read; ``transport``: an httpx
        transport (tests, proxies); ``checkpoint_store``: a file where the newest audit
        checkpoint seen is kept between runs (every later one must extend it);
        ``locale``: the language of the texts for the buyer (``zh-CN`` or ``en``; sent
        as ``Accept-Language``; without it the ledger's default, zh-CN)."""
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._retry = retry or RetryPolicy()
        self._flows = Flows(
            pinned_key=pseudonym_key,
            cache_size=cache_size,
            region=region,
            checkpoints=CheckpointMemory(checkpoint_store),
        )
        self._token = TokenState()
        self._http = self._make_http(base_url.rstrip("/"), timeout, transport)
        if locale is not None:
            self._http.headers["Accept-Language"] = locale

    def _make_http(self, base_url: str, timeout: float, transport: Any) -> Any:
        raise NotImplementedError

    def _run(self, flow: Flow) -> Any:
        raise NotImplementedError

    def _wait(
        self, attempt: int, response: httpx.Response | None, *, replayable: bool
    ) -> float | None:
        """Seconds before sending again, or None to stop: after a response (None when it
        needs no retry) or after a connection error (``response`` None)."""
        if response is None:
            return self._retry.delay(attempt, None) if replayable else None
        if response.status_code not in RETRY_STATUSES:
            return None
        return self._retry.delay(attempt, response)

    def _token_request(self) -> httpx.Request:
        return token_request(self._http, self._client_id, self._client_secret, self._scope)

    def pseudonymize(self, kind: Kind | str, value: str) -> Any:
        """The buyer's pseudonym (43 characters) for an identifier: ``kind`` is
        ``phone``, ``prc_id`` or ``email``. Normalized, blinded, evaluated by the
        ledger, the proof checked against its key, unblinded; cached."""
        return self._map(self._flows.pseudonymize([(kind, value)]), lambda r: r[0])

    def pseudonymize_many(self, items: Sequence[tuple[Kind | str, str]]) -> Any:
        """Pseudonyms for many identifiers, 100 per request, in order."""
        return self._run(self._flows.pseudonymize(items))

    def query_risk(
        self,
        subject: str,
        *,
        reference: str,
        purpose: str = "refund_review",
    ) -> Any:
        """The risk answer for a subject before a refund: score, band, reasons,
        ``recommendation`` (``proceed`` or ``manual_review``) and the explanation."""
        body: dict[str, Any] = {"subject": subject, "purpose": purpose, "reference": reference}
        return self._run(self._flows.query_risk(body))

    def query_risk_batch(self, queries: Iterable[Mapping[str, Any]]) -> Any:
        """Up to 100 queries (each as ``query_risk``'s body); an item per query."""
        return self._run(self._flows.query_risk_batch(queries))

    def check_evidence(
        self,
        photos: Sequence[Fingerprint],
        *,
        reference: str,
        purpose: str = "refund_review",
    ) -> Any:
        """Are these claim photos near copies of forged evidence confirmed at other
        platforms, or of your own listing photos? (``fingerprint()`` them first: the
        photos themselves are never sent.)"""
        body = {
            "photos": [p.to_json() for p in photos],
            "purpose": purpose,
            "reference": reference,
        }
        return self._run(self._flows.check_evidence(body))

    def register_listing_photos(self, photos: Iterable[tuple[str, Fingerprint]]) -> Any:
        """Register (listing reference, fingerprint) pairs: up to 1,000 per call,
        idempotent."""
        body = [
            {"reference": reference, "pdq": f.pdq, "quality": f.quality} for reference, f in photos
        ]
        return self._run(self._flows.register_listing_photos(body))

    def withdraw_listing_photos(self, reference: str) -> Any:
        """Stop a listing's photos matching."""
        return self._run(self._flows.withdraw_listing_photos(reference))

    def report(self, **fields: Any) -> Any:
        """File a confirmed case (fields as ``POST /v1/reports``; ``evidence_photos``
        may be ``Fingerprint`` objects). Safe to retry: the same ``case_ref`` never
        files twice."""
        photos = fields.get("evidence_photos")
        if photos:
            fields["evidence_photos"] = [
                p.to_json() if isinstance(p, Fingerprint) else p for p in photos
            ]
        return self._run(self._flows.report(fields))

    def report_batch(
        self, reports: Iterable[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> Any:
        """File up to 1000 reports; retried with one ``Idempotency-Key``."""
        return self._run(self._flows.report_batch(reports, idempotency_key))

    def get_report(self, report_id: str) -> Any:
        return self._run(self._flows.get_report(report_id))

    def list_reports(self, **filters: Any) -> Any:
        """A page of your reports (``status``, ``category``, ``subject``, ``filed_since``,
        ``filed_until``, ``cursor``, ``limit``); follow ``next_cursor`` for more."""
        return self._run(self._flows.list_reports(filters))

    def withdraw(self, report_id: str, reason: str) -> Any:
        return self._run(self._flows.withdraw(report_id, reason))

    def record_notice(self, report_id: str, notified_at: str) -> Any:
        return self._run(self._flows.record_notice(report_id, notified_at))

    def disclose(self, subject: str, *, reference: str) -> Any:
        """The buyer's own file, for a buyer's access request made to you."""
        return self._run(self._flows.disclose(subject, reference))

    def dispute(self, subject: str, report_ids: Sequence[str], *, reference: str) -> Any:
        """Open a dispute for the buyer (not retried after a lost connection)."""
        return self._run(self._flows.dispute(subject, report_ids, reference))

    def disputes_assigned(self, *, status: str | None = None) -> Any:
        """Dispute items on your reports, nearest deadline first: answer each within
        the window, or the report stops counting."""
        return self._run(self._flows.list_disputes("assigned", status))

    def disputes_opened(self, *, status: str | None = None) -> Any:
        """Disputes you opened on buyers' behalf, and where they stand."""
        return self._run(self._flows.list_disputes("opened", status))

    def resolve_dispute(
        self,
        dispute_id: str,
        report_id: str,
        *,
        outcome: str,
        reason_code: str,
        evidence_sha256: str | None = None,
    ) -> Any:
        """Answer a dispute on one of your reports: ``upheld`` (with the SHA-256 of the
        re-checked evidence) or ``withdrawn``."""
        body = {"outcome": outcome, "reason_code": reason_code}
        if evidence_sha256 is not None:
            body["evidence_sha256"] = evidence_sha256
        return self._run(self._flows.resolve_dispute(dispute_id, report_id, body))

    def add_statement(self, subject: str, report_id: str, text: str) -> Any:
        return self._run(self._flows.add_statement(subject, report_id, text))

    def audit_receipt(self, event_id: int, verifier_key: str) -> Any:
        """Fetch the receipt of one of your audit events (e.g. a risk answer's
        ``audit_event_id``) and verify it against the pinned checkpoint key; returns
        the event. Raises ``ledger.client.proofs.Invalid`` if it does not verify."""
        return self._run(self._flows.audit_receipt(event_id, verifier_key))

    def latest_checkpoint(self, verifier_key: str) -> Any:
        """The ledger's newest checkpoint, checked against the newest one this client
        has seen (consistency proved between them); raises ``Invalid`` for a log that
        shrank, forked or was rewritten."""
        return self._run(self._flows.latest_checkpoint(verifier_key))

    def _map(self, flow: Flow, f: Any) -> Any:
        def mapped() -> Flow:
            return f((yield from flow))

        return self._run(mapped())


def _request(
    http: httpx.Client | httpx.AsyncClient, call: Call, token: str | None
) -> httpx.Request:
    headers = dict(call.headers)
    if call.authenticated and token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.build_request(
        call.method, call.path, json=call.json, params=dict(call.params), headers=headers
    )


class LedgerClient(_Api):
    """The synchronous SDK (``httpx.Client``)."""

    _http: httpx.Client

    def _make_http(self, base_url: str, timeout: float, transport: Any) -> httpx.Client:
        return httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport,
            headers={"User-Agent": USER_AGENT},
        )  # fmt: skip

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, flow: Flow) -> Any:
        try:
            call = next(flow)
            while True:
                call = flow.send(self._send(call))
        except StopIteration as done:
            return done.value

    def _access_token(self) -> str:
        if not self._token.usable():
            request = self._token_request()
            response = self._with_retries(lambda: self._http.send(request), replayable=True)
            raise_for_problem(response)
            self._token.accept(response.json())
        assert self._token.value is not None
        return self._token.value

    def _send(self, call: Call) -> httpx.Response:
        for refreshed in (False, True):
            token = self._access_token() if call.authenticated else None
            response = self._with_retries(
                lambda token=token: self._http.send(_request(self._http, call, token)),
                replayable=call.replayable,
            )
            if response.status_code == 401 and call.authenticated and not refreshed:
                self._token.clear()  # expired or revoked early: one fresh token, once
                continue
            break
        if response.status_code >= 400 and response.status_code not in call.accept:
            raise_for_problem(response)
        return response

    def _with_retries(self, send: Any, *, replayable: bool) -> httpx.Response:
        for attempt in itertools.count():
            try:
                response: httpx.Response = send()
            except httpx.TransportError:
                if (wait := self._wait(attempt, None, replayable=replayable)) is None:
                    raise
            else:
                if (wait := self._wait(attempt, response, replayable=replayable)) is None:
                    return response
            time.sleep(wait)
        raise AssertionError("unreachable")


class AsyncLedgerClient(_Api):
    """The asynchronous SDK (``httpx.AsyncClient``); every method is awaited."""

    _http: httpx.AsyncClient

    def _make_http(self, base_url: str, timeout: float, transport: Any) -> httpx.AsyncClient:
        self._token_lock = asyncio.Lock()
        return httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport,
            headers={"User-Agent": USER_AGENT},
        )  # fmt: skip

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _run(self, flow: Flow) -> Any:
        return self._drive(flow)

    async def _drive(self, flow: Flow) -> Any:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._send(call))
        except StopIteration as done:
            return done.value

    async def _access_token(self) -> str:
        async with self._token_lock:  # one token fetch, however many calls wait on it
            if not self._token.usable():
                request = self._token_request()

                async def send() -> httpx.Response:
                    return await self._http.send(request)

                response = await self._with_retries(send, replayable=True)
                raise_for_problem(response)
                self._token.accept(response.json())
            assert self._token.value is not None
            return self._token.value

    async def _send(self, call: Call) -> httpx.Response:
        for refreshed in (False, True):
            token = await self._access_token() if call.authenticated else None

            async def send(token: str | None = token) -> httpx.Response:
                return await self._http.send(_request(self._http, call, token))

            response = await self._with_retries(send, replayable=call.replayable)
            if response.status_code == 401 and call.authenticated and not refreshed:
                self._token.clear()
                continue
            break
        if response.status_code >= 400 and response.status_code not in call.accept:
            raise_for_problem(response)
        return response

    async def _with_retries(self, send: Any, *, replayable: bool) -> httpx.Response:
        for attempt in itertools.count():
            try:
                response: httpx.Response = await send()
            except httpx.TransportError:
                if (wait := self._wait(attempt, None, replayable=replayable)) is None:
                    raise
            else:
                if (wait := self._wait(attempt, response, replayable=replayable)) is None:
                    return response
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")
