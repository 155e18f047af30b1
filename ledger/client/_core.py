"""What the sync and async clients share: each API call written once, as a generator
that yields the requests it needs and receives their responses (no I/O here), plus the
retry policy, the token state, the pseudonym cache and the errors.

``LedgerClient`` and ``AsyncLedgerClient`` (client.py) run these generators with
``httpx.Client`` and ``httpx.AsyncClient``: authentication, retries with back-off that
honours ``Retry-After``, and token refresh happen in one place per flavour.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.audit.merkle import ProofError, verify_consistency
from ledger.client.identifiers import Kind, oprf_input
from ledger.client.proofs import CheckpointMemory, Invalid, open_checkpoint, verify_receipt
from ledger.pseudonyms.voprf import VOPRF, Suite, output_to_pseudonym

SUITE = Suite(VOPRF)
MAX_BATCH = 100
KEY_PATH = "/.well-known/refund-ledger/pseudonym-key"

# A call: yields requests, receives responses, returns its result.
Flow = Generator["Call", httpx.Response, Any]


class LedgerApiError(Exception):
    """The ledger answered with an error (RFC 9457 problem details in ``problem``)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.type = str(problem.get("type", ""))
        self.detail = str(problem.get("detail", ""))
        self.request_id = problem.get("request_id")
        super().__init__(f"{status} {self.type}: {self.detail}")


class RateLimitedError(LedgerApiError):
    """429 after every retry: the member's limit has no room yet (see ``retry_after``)."""

    def __init__(self, status: int, problem: Mapping[str, Any], retry_after: float) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class PseudonymKeyError(Exception):
    """The ledger's pseudonym key is not the one this client trusts, or changed."""


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
    """Retries on 429, 503 and connection errors: at most ``attempts`` sends in all,
    waiting ``Retry-After`` when the ledger gives one (up to ``max_wait`` seconds),
    otherwise ``base * 2**n`` with full jitter."""

    attempts: int = 5
    base: float = 0.25
    max_wait: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if attempt + 1 >= self.attempts:
            return None
        if response is not None:
            given = _retry_after(response)
            if given is not None:
                return given if given <= self.max_wait else None
        return random.uniform(0, min(self.max_wait, self.base * 2**attempt))  # noqa: S311


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


RETRY_STATUSES = frozenset({429, 503})


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:200]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)[:200]}
    if response.status_code == 429:
        raise RateLimitedError(429, problem, _retry_after(response) or 0.0)
    raise LedgerApiError(response.status_code, problem)


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


def token_request(
    http: httpx.Client | httpx.AsyncClient, client_id: str, client_secret: str, scope: str | None
) -> httpx.Request:
    """The client-credentials grant (RFC 6749 §4.4), authenticated with HTTP Basic."""
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
    return http.build_request(
        "POST", "/oauth/token", data=data, headers={"Authorization": f"Basic {basic}"}
    )


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

    def _trusted_key(self) -> Flow:
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

    def pseudonymize(self, items: Sequence[tuple[Kind | str, str]]) -> Flow:
        inputs = [oprf_input(kind, value, region=self.region) for kind, value in items]
        key_id, public = yield from self._trusted_key()
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

    # --- risk ---------------------------------------------------------------------------

    @staticmethod
    def query_risk(body: Mapping[str, Any]) -> Flow:
        return (yield Call("POST", "/v1/risk/query", json=dict(body))).json()

    @staticmethod
    def query_risk_batch(queries: Iterable[Mapping[str, Any]]) -> Flow:
        body = {"queries": [dict(q) for q in queries]}
        return (yield Call("POST", "/v1/risk/query:batch", json=body)).json()["items"]

    # --- evidence -----------------------------------------------------------------------

    @staticmethod
    def check_evidence(body: Mapping[str, Any]) -> Flow:
        return (yield Call("POST", "/v1/evidence:check", json=dict(body))).json()

    @staticmethod
    def register_listing_photos(photos: list[dict[str, Any]]) -> Flow:
        return (yield Call("POST", "/v1/listing-photos", json={"photos": photos})).json()

    @staticmethod
    def withdraw_listing_photos(reference: str) -> Flow:
        body = {"reference": reference}
        return (yield Call("POST", "/v1/listing-photos/withdrawal", json=body)).json()

    # --- reports ------------------------------------------------------------------------

    @staticmethod
    def report(body: Mapping[str, Any]) -> Flow:
        """File one report. ``case_ref`` is unique per member, so a retry after a lost
        answer gets 409 with the existing report's id: that report is returned."""
        response = yield Call("POST", "/v1/reports", json=dict(body), accept=frozenset({409}))
        if response.status_code == 409:
            problem = response.json()
            existing = problem.get("existing_report_id")
            if existing is not None:
                found = yield Call("GET", f"/v1/reports/{existing}")
                if found.status_code == 200 and found.json().get("case_ref") == body.get(
                    "case_ref"
                ):
                    return found.json()
        raise_for_problem(response)
        return response.json()

    @staticmethod
    def report_batch(reports: Iterable[Mapping[str, Any]], idempotency_key: str | None) -> Flow:
        key = idempotency_key or str(uuid.uuid4())  # the same key on every retry
        return (
            yield Call(
                "POST",
                "/v1/reports:batch",
                json={"reports": [dict(r) for r in reports]},
                headers={"Idempotency-Key": key},
            )
        ).json()

    @staticmethod
    def get_report(report_id: str) -> Flow:
        return (yield Call("GET", f"/v1/reports/{report_id}")).json()

    @staticmethod
    def list_reports(filters: Mapping[str, Any]) -> Flow:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        return (yield Call("GET", "/v1/reports", params=params)).json()

    @staticmethod
    def withdraw(report_id: str, reason: str) -> Flow:
        path = f"/v1/reports/{report_id}/withdrawal"
        return (yield Call("POST", path, json={"reason": reason})).json()

    @staticmethod
    def record_notice(report_id: str, notified_at: str) -> Flow:
        path = f"/v1/reports/{report_id}/notice"
        return (yield Call("POST", path, json={"notified_at": notified_at})).json()

    # --- the buyer's rights -------------------------------------------------------------

    @staticmethod
    def disclose(subject: str, reference: str) -> Flow:
        body = {"subject": subject, "purpose": "subject_request", "reference": reference}
        return (yield Call("POST", "/v1/subjects/disclosure", json=body)).json()

    @staticmethod
    def dispute(subject: str, report_ids: Sequence[str], reference: str) -> Flow:
        body = {"subject": subject, "report_ids": list(report_ids), "reference": reference}
        # Not replayable after a network error: a second dispute would be opened.
        return (yield Call("POST", "/v1/disputes", json=body, replayable=False)).json()

    @staticmethod
    def list_disputes(which: str, status: str | None) -> Flow:
        params = {which: "me"} | ({"status": status} if status else {})
        return (yield Call("GET", "/v1/disputes", params=params)).json()

    @staticmethod
    def resolve_dispute(dispute_id: str, report_id: str, body: Mapping[str, Any]) -> Flow:
        path = f"/v1/disputes/{dispute_id}/reports/{report_id}/resolution"
        # Resolving twice is refused (409), so a lost answer may be sent again.
        return (yield Call("POST", path, json=dict(body))).json()

    @staticmethod
    def add_statement(subject: str, report_id: str, text: str) -> Flow:
        body = {"subject": subject, "report_id": report_id, "text": text}
        return (yield Call("POST", "/v1/subjects/statements", json=body, replayable=False)).json()

    # --- the audit log ------------------------------------------------------------------

    def audit_receipt(self, event_id: int, verifier_key: str) -> Flow:
        receipt = (yield Call("GET", f"/v1/audit/events/{event_id}/receipt")).json()
        event = verify_receipt(receipt, verifier_key)
        yield from self.see_checkpoint(str(receipt["checkpoint"]), verifier_key)
        return event

    def latest_checkpoint(self, verifier_key: str) -> Flow:
        body = (yield Call("GET", "/v1/audit/checkpoints/latest")).json()
        yield from self.see_checkpoint(str(body["note"]), verifier_key)
        return body

    def see_checkpoint(self, note: str, verifier_key: str) -> Flow:
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
