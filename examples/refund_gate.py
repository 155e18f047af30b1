"""The auto-refund gate a platform runs before granting a "refund only" request.

    make run                                   # in another terminal: prints a credential
    LEDGER_CLIENT_ID=cl_… LEDGER_CLIENT_SECRET=lsk_… python examples/refund_gate.py

For each refund request: fingerprint the claim's photos (they never leave the platform);
then, in one call under one deadline (``RefundGate``), pseudonymize the buyer (the
ledger never sees the phone number), ask for the risk, and check the photos against
forged evidence confirmed at other platforms and the platform's own listing photos. Then
decide: refund at once, or route to a person with the ledger's explanation. The ledger
never denies anything; a manual review is a person looking at the case. When that person
confirms abuse (here: the seller's own listing photo with a crack drawn on it), the
platform files the confirmed case with its photos' fingerprints, which is what other
platforms will find.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import sys
from dataclasses import dataclass, field

from PIL import Image, ImageDraw
from refund_ledger_client import (
    EvidenceCheck,
    Fingerprint,
    LedgerClient,
    LedgerError,
    RefundGate,
    Report,
    UnusablePhoto,
    fingerprint,
)


@dataclass(frozen=True)
class RefundRequest:
    id: str
    buyer_phone: str
    amount_minor: int  # fen
    claim: str
    photos: list[bytes] = field(default_factory=list)  # the claim's photos, as uploaded


@dataclass(frozen=True)
class Outcome:
    refund_now: bool
    subject: str
    score: int
    band: str
    explanation: str  # what the platform may show the buyer
    photos: list[Fingerprint] = field(default_factory=list)
    photo_findings: list[str] = field(default_factory=list)  # for the reviewer


def fingerprints(photos: list[bytes]) -> list[Fingerprint]:
    """The usable photos' fingerprints, with their rotations (a turned copy is found)."""
    found = []
    for photo in photos:
        try:
            found.append(fingerprint(photo, dihedral=True))
        except UnusablePhoto:
            continue  # too flat or small to match on: never sent
    return found


def findings(evidence: EvidenceCheck | None) -> list[str]:
    """What the photo check found, in words for the reviewer."""
    found: list[str] = []
    for result in evidence.photos if evidence else ():
        if forged := result.forged_elsewhere:
            found.append(
                f"photo {result.index}: {forged.distance} bits from forged evidence in "
                f"{forged.reports} report(s) at {forged.members} other platform(s)"
            )
        found += [
            f"photo {result.index}: {m.distance} bits from our listing {m.reference}"
            for m in result.own_listings
        ]
    return found


def decide(gate: RefundGate, request: RefundRequest) -> Outcome:
    """Refund at once, or send to manual review: never deny on the score alone, nor on
    a photo match alone (a match is a reason for a person to look). One deadline for
    the whole decision; if the ledger cannot answer in it, the gate's fallback."""
    photos = fingerprints(request.photos)
    decision = gate.decide(
        identifiers=[("phone", request.buyer_phone)], reference=request.id, photos=photos
    )
    if not decision.answered:
        return Outcome(
            decision.action == "proceed", "", 0, "unknown", "(the ledger did not answer)", photos
        )
    (answer,) = decision.risk
    # Shown to the buyer, so in the buyer's language, as the ledger's own texts are.
    reasons = "；".join(r.text for r in answer.reasons) or "无"
    shown = [answer.explanation.summary, f"原因：{reasons}。"]
    if decision.evidence is not None and decision.evidence.needs_review:
        said = decision.evidence.explanation
        shown += [said.summary, said.your_rights]
    return Outcome(
        refund_now=decision.action == "proceed",
        subject=answer.subject,
        score=answer.score,
        band=answer.band,
        explanation=" ".join([*shown, answer.explanation.decision]),
        photos=photos,
        photo_findings=findings(decision.evidence),
    )


def file_confirmed_case(ledger: LedgerClient, request: RefundRequest, decision: Outcome) -> Report:
    """After a reviewer confirmed the abuse and the buyer was told (notice), file it,
    with the fingerprints of the forged photos. ``case_ref`` makes a retry safe: the
    same case is never filed twice."""
    now = dt.datetime.now(dt.UTC)
    return ledger.report(
        case_ref=f"case-{request.id}",
        subject=decision.subject,
        category="forged_evidence",
        basis="platform_review",
        amount_minor=request.amount_minor,
        currency="CNY",
        occurred_at=(now - dt.timedelta(days=3)).isoformat(),
        confirmed_at=now.isoformat(),
        evidence_sha256=[hashlib.sha256(p).hexdigest() for p in request.photos],
        evidence_photos=decision.photos,
        subject_notified_at=now.isoformat(),
    )


def listing_photo(seed: int) -> Image.Image:
    """A stand-in for a catalogue photo: smooth, textured, different for each seed."""
    noise = Image.effect_noise((24, 24), 80 + seed % 40).convert("RGB")
    return noise.resize((640, 640), Image.Resampling.BICUBIC)


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def with_a_crack(image: Image.Image) -> bytes:
    """The forger's 'damage': a dark crack drawn across the seller's own photo."""
    damaged = image.copy()
    ImageDraw.Draw(damaged).line(
        [(180, 120), (260, 260), (230, 360), (340, 520)], fill=(25, 25, 25), width=6
    )
    return jpeg(damaged)


def main() -> int:
    url = os.environ.get("LEDGER_URL", "http://127.0.0.1:8000")
    client_id = os.environ.get("LEDGER_CLIENT_ID")
    secret = os.environ.get("LEDGER_CLIENT_SECRET")
    if not client_id or not secret:
        sys.stderr.write(__doc__ or "")
        return 2
    run = os.urandom(3).hex()  # fresh references, so the example can run again
    catalogue = listing_photo(int(run, 16))
    requests = [
        RefundRequest(
            f"rf-{run}-1",
            "13800138000",
            12900,
            "arrived broken (photo attached)",
            photos=[with_a_crack(catalogue)],
        ),
        RefundRequest(f"rf-{run}-2", "+86 139 0013 9000", 45900, "parcel was empty"),
    ]
    # Texts for the buyer in Chinese (the default; "en" for English).
    with LedgerClient(url, client_id, secret, locale="zh-CN") as ledger:
        # Refunds wait at most 0.8 s for the ledger (the client's default deadline);
        # if it cannot answer in time, a person looks: this platform fails closed.
        gate = RefundGate(ledger, if_unavailable="fail_closed")
        try:
            ledger.warm_up()  # the token and the pseudonym key, before the first refund
            # The platform registers its own catalogue photos once, as it lists them.
            listed = fingerprint(jpeg(catalogue))
            ledger.register_listing_photos([(f"sku-{run}/main", listed)])
            decisions = []
            for request in requests:
                decision = decide(gate, request)
                decisions.append(decision)
                action = "refund now" if decision.refund_now else "manual review"
                sys.stdout.write(
                    f"{request.id}: score {decision.score} ({decision.band}) -> {action}\n"
                    f"  shown to the buyer: {decision.explanation}\n"
                )
                for finding in decision.photo_findings:
                    sys.stdout.write(f"  for the reviewer: {finding}\n")
            # A reviewer looks at the first claim: the "damage" is drawn on our own photo.
            first = requests[0]
            report = file_confirmed_case(ledger, first, decisions[0])
            sys.stdout.write(f"{first.id}: confirmed case filed as report {report.id}\n")
            after = decide(gate, RefundRequest(f"rf-{run}-3", first.buyer_phone, 8800, "again"))
            sys.stdout.write(
                f"rf-{run}-3 (same buyer): score {after.score} ({after.band}) -> "
                f"{'refund now' if after.refund_now else 'manual review'}\n"
            )
        except LedgerError as exc:
            sys.stderr.write(f"the ledger refused: {exc}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
