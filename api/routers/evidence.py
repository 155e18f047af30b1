"""The evidence check: are a claim's photos near copies of forged evidence confirmed
elsewhere, or of the caller's own listing photos?

The route reads its own body so that a refused check is recorded too; the check itself
is ``ledger.evidence.service.EvidenceChecks.check`` (``runtime.evidence``), which
records the audit event before it answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.auth import authorize_client, operation, recorder
from api.deps import RuntimeDep, SessionDep
from api.locales import language_headers, locale_of
from api.middleware import body_limit
from api.schemas import json_body, parse_recorded
from api.schemas.evidence import (
    EvidenceCheckIn,
    EvidenceCheckOut,
    ForgedElsewhereOut,
    ListingMatchOut,
    ListingPhotosIn,
    ListingPhotosOut,
    ListingWithdrawalIn,
    ListingWithdrawalOut,
    PhotoResultOut,
)
from api.schemas.markers import marker_notice
from api.schemas.risk import Explanation
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.errors import InvalidInput
from ledger.evidence import listings
from ledger.evidence.photos import PhotoInput, parse_hash
from ledger.evidence.service import CheckQuery, PhotoResult
from ledger.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["evidence"])

Checker = Annotated[ClientPrincipal, Depends(authorize_client(Permission.EVIDENCE_CHECK))]


def _out(result: PhotoResult) -> PhotoResultOut:
    forged = result.forged_elsewhere
    return PhotoResultOut(
        index=result.index,
        forged_elsewhere=(
            None
            if forged is None
            else ForgedElsewhereOut(
                distance=forged.distance, reports=forged.reports, members=forged.members
            )
        ),
        own_listings=[
            ListingMatchOut(distance=m.distance, reference=m.reference) for m in result.own_listings
        ],
        other_listings=result.other_listings,
        recommendation=result.recommendation.value,
        notes=result.notes,
    )


@router.post(
    "/evidence:check",
    response_model=EvidenceCheckOut,
    openapi_extra=json_body(EvidenceCheckIn),
)
async def check_evidence(request: Request, principal: Checker) -> Response:
    """Check up to 20 claim photos' fingerprints before a refund.

    Names a purpose and your refund request id, both audited; the check is recorded
    before it is answered. Each photo is compared with the photos of other platforms'
    counting forged-evidence reports (how near, how many reports and platforms, never
    which) and with your own listing photos. The answer is ``proceed`` or
    ``manual_review``, never a denial, and a match never changes the risk score.
    """
    runtime: Runtime = request.app.state.runtime
    rec = recorder(runtime, principal)
    body = await parse_recorded(
        EvidenceCheckIn,
        await request.body(),
        lambda fields: runtime.evidence.refuse(rec, fields, "invalid check"),
    )
    try:
        query = CheckQuery(
            photos=tuple(p.photo(f"photos.{n}") for n, p in enumerate(body.photos)),
            purpose=body.purpose,
            reference=body.reference,
            locale=locale_of(request, body.locale),
            subject=body.subject,
        )
    except InvalidInput as exc:
        await runtime.evidence.refuse(rec, exc.fields, "invalid photos")
        raise
    checked = await runtime.evidence.check(rec, principal, query)
    answer = EvidenceCheckOut(
        photos=[_out(r) for r in checked.value.photos],
        recommendation=checked.value.recommendation.value,
        explanation=Explanation.model_validate(checked.value.explanation, from_attributes=True),
        audit_event_id=checked.audit_event_id,
        protective_marker=marker_notice(checked.value.marker, query.locale),
    )
    return Response(
        answer.model_dump_json(),
        media_type="application/json",
        headers=language_headers(query.locale),
    )


@router.post(
    "/listing-photos",
    response_model=ListingPhotosOut,
    openapi_extra=body_limit(512 * 1024),  # 1,000 photos
)
async def register_listing_photos(
    body: ListingPhotosIn, principal: Checker, session: SessionDep, runtime: RuntimeDep
) -> ListingPhotosOut:
    """Register your listing photos' fingerprints, so that a claim photo made from your
    own listing photo is found by your evidence checks. Idempotent per listing
    reference and photo; recorded."""
    items = [
        listings.ListingPhotoInput(
            reference=p.reference,
            photo=PhotoInput(pdq=parse_hash(p.pdq, f"photos.{n}.pdq"), quality=p.quality),
        )
        for n, p in enumerate(body.photos)
    ]
    done = await listings.register(
        session, operation(runtime, principal), principal, items, key=runtime.fingerprint_key
    )
    return ListingPhotosOut(registered=done.registered, unchanged=done.unchanged)


@router.post("/listing-photos/withdrawal", response_model=ListingWithdrawalOut)
async def withdraw_listing_photos(
    body: ListingWithdrawalIn, principal: Checker, session: SessionDep, runtime: RuntimeDep
) -> ListingWithdrawalOut:
    """Withdraw a listing's photos: they stop matching at once. Recorded."""
    count = await listings.withdraw(
        session, operation(runtime, principal), principal, body.reference
    )
    return ListingWithdrawalOut(withdrawn=count)
