"""What the sync and async clients share, written once with no I/O in it.

Two layers of generators:

- ``Flows``: each API call as a generator that yields the ``Call`` s (HTTP requests) it
  needs and receives their responses; it returns the typed result.
- ``Engine``: turns one ``Call`` into primitive actions (``Send`` a request with a
  timeout, ``Sleep``, ``NeedToken``) under the call's ``Deadline``: the access token,
  retries with back-off that honours ``Retry-After``, one token refresh on 401, and the
  typed errors.

``LedgerClient`` and ``AsyncLedgerClient`` (client.py) only carry the actions out, with
``httpx.Client`` and ``httpx.AsyncClient``.
"""

from __future__ import annotations

import base64
import functools
import itertools
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from refund_ledger_client import models
from refund_ledger_client.errors import (
    DeadlineExceeded,
    PseudonymKeyError,
    TransportError,
    from_response,
    retry_after,
)
from refund_ledger_client.hooks import AttemptEvent, CallEvent, Observer, path_template
from refund_ledger_client.identifiers import Kind, oprf_input
from refund_ledger_client.merkle import ProofError, verify_consistency
from refund_ledger_client.proofs import CheckpointMemory, Invalid, open_checkpoint, verify_receipt
from refund_ledger_client.voprf import VOPRF, Suite, output_to_pseudonym

SUITE = Suite(VOPRF)
MAX_BATCH = 100
KEY_PATH = "/.well-known/refund-ledger/pseudonym-key"
RETRY_STATUSES = frozenset({429, 503})

T = TypeVar("T")

# A call: yields requests, receives responses, returns its result.
Flow = Generator["Call", httpx.Response, T]


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request of a flow, and whether it may be sent again after a network
    error (the server may have acted on it): reads, and writes made idempotent."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = True
    replayable: bool = True
    accept: frozenset[int] = frozenset()  # error statuses the flow handles itself


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries on 429, 503 and connection errors, only within the call's deadline: at
    most ``attempts`` sends in all, waiting ``Retry-After`` when the ledger gives one
    (up to ``max_wait`` seconds), otherwise ``base * 2**n`` with full jitter. A wait
    that would end past the deadline is not begun: the call fails at once with what
    the ledger last said."""

    attempts: int = 4
    base: float = 0.05
    max_wait: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (from 1), or None to stop."""
        if attempt >= self.attempts:
            return None
        if response is not None:
            given = retry_after(response.headers)
            if given is not None:
                return given if given <= self.max_wait else None
        return random.uniform(0, min(self.max_wait, self.base * 2 ** (attempt - 1)))  # noqa: S311


class Deadline:
    """When a call must have its answer, on the monotonic clock."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"a deadline is a number of seconds above 0, not {seconds!r}")
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()


# --- the actions a driver carries out -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` with at most ``timeout`` seconds for each network wait; the
    driver answers with the response, read in full, or the ``httpx.TransportError``."""

    request: httpx.Request
    timeout: float
    deadline: Deadline


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class NeedToken:
    """The driver answers with a usable access token, fetching one (``Engine.fetch_
    token``) when there is none; one fetch at a time, however many calls wait."""

    state: CallState


@dataclass(slots=True)
class CallState:
    operation: str
    deadline: Deadline
    attempts: int = 0


Action = Send | Sleep | NeedToken
Steps = Generator[Action, Any, T]


@dataclass
class TokenState:
    """The access token in hand and when to stop using it (30 s before it expires)."""

    value: str | None = None
    expires_at: float = 0.0

    def usable(self) -> bool:
        return self.value is not None and time.monotonic() < self.expires_at

    def accept(self, body: Mapping[str, Any]) -> None:
        self.value = str(body["access_token"])
        self.expires_at = time.monotonic() + max(0, int(body.get("expires_in", 60)) - 30)

    def clear(self) -> None:
        self.value = None


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body: object = response.json()
    except ValueError:
        body = response.text
    raise from_response(response.status_code, body, response.headers)


class Engine:
    """One call's requests under its deadline: tokens, retries, typed errors."""

    def __init__(
        self,
        http: httpx.Client | httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        scope: str | None,
        retry: RetryPolicy,
        timeout: float,
        observer: Observer,
    ) -> None:
        self.http = http
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.retry = retry
        self.timeout = timeout
        self.observer = observer
        self.token = TokenState()

    def run(self, operation: str, flow: Flow[T], deadline: Deadline) -> Steps[T]:
        """The whole call: every request ``flow`` needs, then its result; reports the
        call to the observer however it ends."""
        state = CallState(operation, deadline)
        outcome = "ok"
        try:
            call = next(flow)
            while True:
                response = yield from self.exchange(state, call)
                call = flow.send(response)
        except StopIteration as done:
            result: T = done.value
            return result
        except KeyError as exc:  # a documented field missing from an answer
            outcome = models.UnexpectedAnswer.__name__
            raise models.UnexpectedAnswer(
                f"{operation}: the ledger's answer lacks the documented field {exc}"
            ) from exc
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            elapsed = deadline.seconds - deadline.left()
            self.observer.call_finished(CallEvent(operation, outcome, elapsed, state.attempts))

    def exchange(self, state: CallState, call: Call) -> Steps[httpx.Response]:
        """Send ``call``, with a token when it needs one and a fresh one once if that
        is refused; raise the typed error unless the flow accepts the status."""
        for refreshed in (False, True):
            token = (yield NeedToken(state)) if call.authenticated else None
            response = yield from self.attempts(
                state, functools.partial(self._request, call, token), replayable=call.replayable
            )
            if response.status_code == 401 and call.authenticated and not refreshed:
                self.token.clear()  # expired or revoked early: one fresh token, once
                continue
            break
        if response.status_code >= 400 and response.status_code not in call.accept:
            raise_for_problem(response)
        _json_or_refuse(response)
        return response

    def fetch_token(self, state: CallState) -> Steps[str]:
        """The client-credentials grant (RFC 6749 §4.4), authenticated with HTTP Basic."""
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        secret = f"{self.client_id}:{self.client_secret}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(secret).decode("ascii")}
        response = yield from self.attempts(
            state,
            lambda: self.http.build_request("POST", "/oauth/token", data=data, headers=headers),
            replayable=True,
        )
        raise_for_problem(response)
        self.token.accept(response.json())
        assert self.token.value is not None
        return self.token.value

    def _request(self, call: Call, token: str | None) -> httpx.Request:
        headers = dict(call.headers)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.build_request(
            call.method, call.path, json=call.json, params=dict(call.params), headers=headers
        )

    def attempts(
        self, state: CallState, build: Callable[[], httpx.Request], *, replayable: bool
    ) -> Steps[httpx.Response]:
        """Send until an answer that needs no retry, or until retrying is not safe, not
        allowed, or would not end before the deadline."""
        deadline = state.deadline
        for attempt in itertools.count(1):
            left = deadline.left()
            if left <= 0:
                raise DeadlineExceeded(state.operation, deadline.seconds)
            request = build()
            state.attempts += 1
            began = time.monotonic()
            outcome = yield Send(request, min(self.timeout, left), deadline)
            elapsed = time.monotonic() - began
            response = outcome if isinstance(outcome, httpx.Response) else None
            if response is None:
                # A wait cut short by the deadline (its timeout was the time left).
                cut = isinstance(outcome, httpx.TimeoutException) and left < self.timeout
                if cut or deadline.left() <= 0:
                    self._report(
                        state,
                        request=request,
                        attempt=attempt,
                        response=None,
                        error=outcome,
                        elapsed=elapsed,
                        retry_in=None,
                    )
                    raise DeadlineExceeded(state.operation, deadline.seconds) from outcome
                wait = self.retry.delay(attempt, None) if replayable else None
            elif response.status_code in RETRY_STATUSES:
                wait = self.retry.delay(attempt, response)
            else:
                self._report(
                    state,
                    request=request,
                    attempt=attempt,
                    response=response,
                    error=None,
                    elapsed=elapsed,
                    retry_in=None,
                )
                return response
            if wait is not None and wait >= deadline.left():
                wait = None  # the answer would come too late: stop with what we have
            self._report(
                state,
                request=request,
                attempt=attempt,
                response=response,
                error=outcome,
                elapsed=elapsed,
                retry_in=wait,
            )
            if wait is None:
                if response is not None:
                    return response
                raise TransportError(
                    f"{state.operation}: the ledger could not be reached or did not answer "
                    f"({type(outcome).__name__}: {outcome})",
                    sent=not isinstance(outcome, httpx.ConnectError),
                ) from outcome
            yield Sleep(wait)
        raise AssertionError("unreachable")

    def _report(
        self,
        state: CallState,
        *,
        request: httpx.Request,
        attempt: int,
        response: httpx.Response | None,
        error: object,
        elapsed: float,
        retry_in: float | None,
    ) -> None:
        self.observer.attempt_finished(
            AttemptEvent(
                operation=state.operation,
                method=request.method,
                path=path_template(request.url.path),
                attempt=attempt,
                status=response.status_code if response is not None else None,
                error=type(error).__name__ if response is None else None,
                elapsed=elapsed,
                retry_in=retry_in,
            )
        )


def _json_or_refuse(response: httpx.Response) -> None:
    """An answer the flows can read as JSON, or ``UnexpectedAnswer`` (a proxy's error
    page, a captive portal, a server that is not the ledger)."""
    try:
        response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise models.UnexpectedAnswer(
            f"{response.request.method} {path_template(response.request.url.path)} answered "
            f"{response.status_code} with {kind}, not JSON: is the URL the ledger's?"
        ) from None


class PseudonymCache:
    """The last ``size`` pseudonyms, by VOPRF input, for one key id (LRU)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.key_id: str | None = None
        self._items: OrderedDict[bytes, str] = OrderedDict()

    def for_key(self, key_id: str) -> None:
        if key_id != self.key_id:  # pseudonyms under another key mean nothing now
            self._items.clear()
            self.key_id = key_id

    def get(self, item: bytes) -> str | None:
        value = self._items.get(item)
        if value is not None:
            self._items.move_to_end(item)
        return value

    def put(self, item: bytes, pseudonym: str) -> None:
        if self.size <= 0:
            return
        self._items[item] = pseudonym
        self._items.move_to_end(item)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Flows:
    """The API's calls as flows. State (the trusted key, the cache) lives here."""

    def __init__(
        self,
        *,
        pinned_key: str | None,
        cache_size: int,
        region: str,
        checkpoints: CheckpointMemory | None = None,
    ) -> None:
        self.pinned_key = pinned_key  # base64url public key, or None to trust on first use
        self.region = region
        self.checkpoints = checkpoints or CheckpointMemory()
        self.cache = PseudonymCache(cache_size)
        self.key: tuple[str, bytes] | None = None  # (key id, public key)

    # --- pseudonyms ---------------------------------------------------------------------

    def trusted_key(self) -> Flow[tuple[str, bytes]]:
        if self.key is None:
            body = (yield Call("GET", KEY_PATH, authenticated=False)).json()
            public = _unb64(body["public_key"])
            if self.pinned_key is not None and _unb64(self.pinned_key) != public:
                raise PseudonymKeyError(
                    "the ledger's published pseudonym key is not the pinned one: do not use "
                    "its pseudonyms; check with the ledger's operators"
                )
            self.key = (str(body["key_id"]), public)
            self.cache.for_key(self.key[0])
        return self.key

    def pseudonymize(self, items: Sequence[tuple[Kind | str, str]]) -> Flow[list[str]]:
        inputs = [oprf_input(kind, value, region=self.region) for kind, value in items]
        key_id, public = yield from self.trusted_key()
        known = {i: p for i in inputs if (p := self.cache.get(i)) is not None}
        missing = [i for i in dict.fromkeys(inputs) if i not in known]
        for start in range(0, len(missing), MAX_BATCH):
            chunk = missing[start : start + MAX_BATCH]
            blinds, blinded = zip(*(SUITE.blind(x) for x in chunk), strict=True)
            body = (
                yield Call(
                    "POST",
                    "/v1/pseudonyms:evaluate",
                    json={"blinded_elements": [_b64(b) for b in blinded]},
                )
            ).json()
            if body["key_id"] != key_id:
                self.key = None  # fetched again (and checked against the pin) next time
                raise PseudonymKeyError(
                    "the ledger evaluated with another key than the one it publishes; retry"
                )
            # Raises InvalidProof unless the ledger proves it used the published key.
            outputs = SUITE.finalize_batch(
                chunk,
                list(blinds),
                list(blinded),
                [_unb64(e) for e in body["evaluated_elements"]],
                public_key=public,
                proof=_unb64(body["proof"]),
            )
            for item, output in zip(chunk, outputs, strict=True):
                known[item] = output_to_pseudonym(output)
                self.cache.put(item, known[item])
        return [known[i] for i in inputs]

    def warm_up(self) -> Flow[None]:
        yield from self.trusted_key()
        yield Call("GET", "/v1/me")  # an access token, fetched on the way

    def pseudonym(self, kind: Kind | str, value: str) -> Flow[str]:
        return (yield from self.pseudonymize([(kind, value)]))[0]

    # --- risk ---------------------------------------------------------------------------

    @staticmethod
    def query_risk(body: Mapping[str, Any]) -> Flow[models.RiskAnswer]:
        response = yield Call("POST", "/v1/risk/query", json=dict(body))
        return models.from_json(models.RiskAnswer, response.json())

    @staticmethod
    def query_risk_batch(queries: Iterable[Mapping[str, Any]]) -> Flow[list[models.RiskBatchItem]]:
        body = {"queries": [dict(q) for q in queries]}
        items = (yield Call("POST", "/v1/risk/query:batch", json=body)).json()["items"]
        return [models.from_json(models.RiskBatchItem, item) for item in items]

    # --- evidence -----------------------------------------------------------------------

    @staticmethod
    def check_evidence(body: Mapping[str, Any]) -> Flow[models.EvidenceCheck]:
        response = yield Call("POST", "/v1/evidence:check", json=dict(body))
        return models.from_json(models.EvidenceCheck, response.json())

    @staticmethod
    def register_listing_photos(photos: list[dict[str, Any]]) -> Flow[models.ListingPhotos]:
        response = yield Call("POST", "/v1/listing-photos", json={"photos": photos})
        return models.from_json(models.ListingPhotos, response.json())

    @staticmethod
    def withdraw_listing_photos(reference: str) -> Flow[models.ListingWithdrawal]:
        body = {"reference": reference}
        response = yield Call("POST", "/v1/listing-photos/withdrawal", json=body)
        return models.from_json(models.ListingWithdrawal, response.json())

    # --- one refund, decided ------------------------------------------------------------

    def assess(
        self,
        identifiers: Sequence[tuple[Kind | str, str]],
        photos: Sequence[models.Fingerprint],
        *,
        reference: str,
        purpose: str,
    ) -> Flow[tuple[list[models.RiskAnswer], models.EvidenceCheck | None]]:
        """What a refund decision needs, in as few round trips as it can: the buyer's
        pseudonyms, their risk (one query, or one batch for several identifiers), and
        the claim photos checked."""
        answers: list[models.RiskAnswer] = []
        subjects = list(dict.fromkeys((yield from self.pseudonymize(identifiers))))
        queries = [{"subject": s, "purpose": purpose, "reference": reference} for s in subjects]
        if len(queries) == 1:
            answers.append((yield from self.query_risk(queries[0])))
        elif queries:
            for item in (yield from self.query_risk_batch(queries)):
                if item.answer is None:  # only a malformed query is rejected
                    raise ValueError(f"the ledger refused query {item.index}: {item.errors}")
                answers.append(item.answer)
        evidence = None
        if photos:
            body = {"photos": [p.to_json() for p in photos], "purpose": purpose}
            evidence = yield from self.check_evidence(body | {"reference": reference})
        return answers, evidence

    # --- reports ------------------------------------------------------------------------

    @staticmethod
    def report(body: Mapping[str, Any]) -> Flow[models.Report]:
        """File one report. ``case_ref`` is unique per member, so a retry after a lost
        answer gets 409 with the existing report's id: that report is returned."""
        response = yield Call("POST", "/v1/reports", json=dict(body), accept=frozenset({409}))
        if response.status_code == 409:
            problem = response.json()
            existing = problem.get("existing_report_id")
            if existing is not None:
                found = yield Call("GET", f"/v1/reports/{existing}", accept=frozenset({404}))
                if found.status_code == 200 and found.json().get("case_ref") == body.get(
                    "case_ref"
                ):
                    return models.from_json(models.Report, found.json())
            raise_for_problem(response)
        return models.from_json(models.Report, response.json())

    @staticmethod
    def report_batch(
        reports: Iterable[Mapping[str, Any]], idempotency_key: str | None
    ) -> Flow[models.BatchResult]:
        key = idempotency_key or str(uuid.uuid4())  # the same key on every retry
        response = yield Call(
            "POST",
            "/v1/reports:batch",
            json={"reports": [dict(r) for r in reports]},
            headers={"Idempotency-Key": key},
        )
        return models.from_json(models.BatchResult, response.json())

    @staticmethod
    def get_report(report_id: str) -> Flow[models.Report]:
        response = yield Call("GET", f"/v1/reports/{report_id}")
        return models.from_json(models.Report, response.json())

    @staticmethod
    def list_reports(filters: Mapping[str, Any]) -> Flow[models.ReportPage]:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        response = yield Call("GET", "/v1/reports", params=params)
        return models.from_json(models.ReportPage, response.json())

    @staticmethod
    def withdraw(report_id: str, reason: str) -> Flow[models.Report]:
        path = f"/v1/reports/{report_id}/withdrawal"
        response = yield Call("POST", path, json={"reason": reason})
        return models.from_json(models.Report, response.json())

    @staticmethod
    def record_notice(report_id: str, notified_at: str) -> Flow[models.Report]:
        path = f"/v1/reports/{report_id}/notice"
        response = yield Call("POST", path, json={"notified_at": notified_at})
        return models.from_json(models.Report, response.json())

    # --- the buyer's rights -------------------------------------------------------------

    @staticmethod
    def disclose(subject: str, reference: str) -> Flow[models.Disclosure]:
        body = {"subject": subject, "purpose": "subject_request", "reference": reference}
        response = yield Call("POST", "/v1/subjects/disclosure", json=body)
        return models.from_json(models.Disclosure, response.json())

    @staticmethod
    def dispute(
        subject: str, report_ids: Sequence[str] | None, reference: str
    ) -> Flow[models.Dispute]:
        body: dict[str, object] = {"subject": subject, "reference": reference}
        if report_ids is not None:
            body["report_ids"] = list(report_ids)
        # Not replayable after a network error: a second dispute would be opened.
        response = yield Call("POST", "/v1/disputes", json=body, replayable=False)
        return models.from_json(models.Dispute, response.json())

    @staticmethod
    def list_disputes(
        which: str, status: str | None, cursor: str | None
    ) -> Flow[models.DisputeList]:
        params = {which: "me"} | ({"status": status} if status else {})
        if cursor:
            params["cursor"] = cursor
        response = yield Call("GET", "/v1/disputes", params=params)
        return models.from_json(models.DisputeList, response.json())

    @staticmethod
    def resolve_dispute(
        dispute_id: str, report_id: str, body: Mapping[str, Any]
    ) -> Flow[models.DisputeItem]:
        path = f"/v1/disputes/{dispute_id}/reports/{report_id}/resolution"
        # Resolving twice is refused (409), so a lost answer may be sent again.
        response = yield Call("POST", path, json=dict(body))
        return models.from_json(models.DisputeItem, response.json())

    @staticmethod
    def add_statement(subject: str, report_id: str, text: str) -> Flow[models.Report]:
        body = {"subject": subject, "report_id": report_id, "text": text}
        response = yield Call("POST", "/v1/subjects/statements", json=body, replayable=False)
        return models.from_json(models.Report, response.json())

    @staticmethod
    def marker(path: str, body: Mapping[str, Any]) -> Flow[models.Marker]:
        response = yield Call("POST", path, json=dict(body), replayable=False)
        return models.from_json(models.Marker, response.json())

    # --- the audit log ------------------------------------------------------------------

    def audit_receipt(self, event_id: int, verifier_key: str) -> Flow[dict[str, object]]:
        receipt = (yield Call("GET", f"/v1/audit/events/{event_id}/receipt")).json()
        event = verify_receipt(receipt, verifier_key)
        yield from self.see_checkpoint(str(receipt["checkpoint"]), verifier_key)
        return event

    def latest_checkpoint(self, verifier_key: str) -> Flow[models.Checkpoint]:
        body = (yield Call("GET", "/v1/audit/checkpoints/latest")).json()
        yield from self.see_checkpoint(str(body["note"]), verifier_key)
        return models.from_json(models.Checkpoint, body)

    def see_checkpoint(self, note: str, verifier_key: str) -> Flow[None]:
        """Check a checkpoint against the newest one remembered: the same size must have
        the same root, and between two sizes the ledger must prove consistency. A log
        that forked, was rewritten, or no longer holds a tree it once showed (its tail
        deleted) is refused with ``Invalid``. The newest is remembered."""
        size, root = open_checkpoint(note, verifier_key)
        origin = verifier_key.split("+", 1)[0]
        known = self.checkpoints.get(origin)
        if known is not None and known[0] == size and known[1] != root:
            raise Invalid(f"the log shows two different trees of size {size}: it forked")
        if known is not None and known[0] != size:
            (old, old_root), (new, new_root) = sorted([known, (size, root)])
            response = yield Call(
                "GET",
                "/v1/audit/consistency",
                params={"old_size": str(old), "new_size": str(new)},
                accept=frozenset({422}),
            )
            if response.status_code != 200:
                raise Invalid(
                    f"the log cannot prove that its tree of size {new} extends the one of "
                    f"size {old}: it no longer holds a tree it showed before (shrunk)"
                )
            proof = [base64.b64decode(p) for p in response.json()["proof"]]
            try:
                verify_consistency(old, new, old_root, new_root, proof)
            except ProofError:
                raise Invalid(
                    f"the trees of size {old} and {new} are not consistent: the log was rewritten"
                ) from None
        if known is None or size > known[0]:
            self.checkpoints.remember(origin, size, root, note)
