"""The evidence check through HTTP, with real photos: a doctored copy of a photo filed
as forged evidence by another platform is found; the same platform's own reports, a
withdrawn report's photos, and unrelated photos are not; the check is purpose-bound and
recorded like the risk query."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import sqlalchemy as sa
from refund_ledger_client.evidence import fingerprint

from ledger.audit.models import AuditEventRow
from ledger.audit.tags import Tag
from ledger.clock import FrozenClock
from ledger.evidence.models import EvidencePhoto
from ledger.reports.retention import purge_expired
from ledger.runtime import Runtime
from ledger.scoring import policies
from ledger.scoring.score import ScoringPolicy
from tests.api.test_reports import Member, payload, pseudonym
from tests.client.test_evidence import ORIGINAL, PDQ, PUBLISHED, _doctored
from tests.factories import op


def photo(pdq: str, quality: int = 100) -> dict[str, Any]:
    return {"pdq": pdq, "quality": quality}


def check(*photos: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "photos": list(photos),
        "purpose": "refund_review",
        "reference": "refund-77",
        "locale": "en",  # the texts these tests read; Chinese is tested on its own
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def file_forged(owner: Member, clock: FrozenClock, pdq: str) -> dict[str, Any]:
    return await owner.file(
        payload(
            clock,
            subject=pseudonym(),
            category="forged_evidence",
            evidence_photos=[photo(pdq)],
        )
    )


async def test_a_doctored_copy_of_forged_evidence_filed_elsewhere_is_found(
    acme: Member, shop: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    await file_forged(acme, clock, PUBLISHED[ORIGINAL])
    cracked = fingerprint(_doctored("crack")).pdq
    answer = await shop.post("/v1/evidence:check", check(photo(cracked)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (result,) = body["photos"]
    assert result["forged_elsewhere"]["reports"] == 1
    assert result["forged_elsewhere"]["members"] == 1
    assert 0 < result["forged_elsewhere"]["distance"] <= 31
    assert result["recommendation"] == body["recommendation"] == "manual_review"
    assert "one platform alone" in result["notes"][0]
    assert "another platform confirmed as forged" in body["explanation"]["summary"]
    assert "not a finding against you" in body["explanation"]["your_rights"]
    assert acme.credential.member.name not in answer.text  # never who filed it
    async with runtime.read_sessionmaker() as read:
        event = await read.get(AuditEventRow, body["audit_event_id"])
    assert event is not None
    assert (event.tag, event.purpose, event.reference) == (
        Tag.EVIDENCE_CHECKED.value,
        "refund_review",
        "refund-77",
    )


async def test_unrelated_photos_and_the_callers_own_reports_do_not_match(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    await file_forged(acme, clock, PUBLISHED[ORIGINAL])
    for pdq in (PUBLISHED["misc/c.png"], PUBLISHED["misc/wee.jpg"]):
        answer = (await shop.post("/v1/evidence:check", check(photo(pdq)))).json()
        assert answer["photos"][0]["forged_elsewhere"] is None
        assert answer["recommendation"] == "proceed"
        assert answer["explanation"]["summary"].startswith("None of the photos")
    own = (await acme.post("/v1/evidence:check", check(photo(PUBLISHED[ORIGINAL])))).json()
    assert own["photos"][0]["forged_elsewhere"] is None  # other platforms' reports only


async def test_a_withdrawn_reports_photos_stop_matching_at_once(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    filed = await file_forged(acme, clock, PUBLISHED[ORIGINAL])
    query = check(photo(PUBLISHED["bridge-mods/blur-a-lot.jpg"]))
    assert (await shop.post("/v1/evidence:check", query)).json()["recommendation"] == (
        "manual_review"
    )
    withdrawn = await acme.post(
        f"/v1/reports/{filed['id']}/withdrawal", {"reason": "confirmed_in_error"}
    )
    assert withdrawn.status_code == 200
    after = (await shop.post("/v1/evidence:check", query)).json()
    assert after["photos"][0]["forged_elsewhere"] is None


async def test_rotated_copies_match_only_with_the_dihedral_variants(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    original = fingerprint(PDQ / "dihedral" / "bridge-1-original.jpg")
    await file_forged(acme, clock, original.pdq)
    turned = fingerprint(PDQ / "dihedral" / "bridge-2-rotate-90.jpg", dihedral=True)
    plain = (await shop.post("/v1/evidence:check", check(photo(turned.pdq)))).json()
    assert plain["recommendation"] == "proceed"
    with_variants = {**photo(turned.pdq), "variants": list(turned.variants)}
    found = (await shop.post("/v1/evidence:check", check(with_variants))).json()
    assert found["recommendation"] == "manual_review"


async def test_a_check_without_purpose_is_refused_and_recorded(
    shop: Member, runtime: Runtime
) -> None:
    refused = await shop.post("/v1/evidence:check", check(photo(PUBLISHED[ORIGINAL]), purpose=None))
    assert refused.status_code == 422
    assert "purpose" in refused.text
    async with runtime.read_sessionmaker() as read:
        outcomes = list(
            await read.scalars(
                sa.select(AuditEventRow.outcome).where(
                    AuditEventRow.tag == Tag.EVIDENCE_CHECKED.value
                )
            )
        )
    assert outcomes == ["refused"]


async def test_low_quality_photos_are_refused(shop: Member) -> None:
    refused = await shop.post("/v1/evidence:check", check(photo(PUBLISHED[ORIGINAL], 20)))
    assert refused.status_code == 422
    assert "photos.0.quality" in refused.text


async def test_stored_fingerprints_are_keyed_and_erased_with_the_report(
    acme: Member, clock: FrozenClock, runtime: Runtime
) -> None:
    filed = await file_forged(acme, clock, PUBLISHED[ORIGINAL])
    async with runtime.read_sessionmaker() as read:
        (stored,) = list(await read.scalars(sa.select(EvidencePhoto.fingerprint)))
    assert stored != bytes.fromhex(PUBLISHED[ORIGINAL])
    assert runtime.fingerprint_key.invert(stored) == bytes.fromhex(PUBLISHED[ORIGINAL])
    clock.advance(dt.timedelta(days=6 * 366))
    async with runtime.sessionmaker() as session, session.begin():
        assert (
            await purge_expired(session, op(runtime), policy=runtime.settings.report_policy()) >= 1
        )
    async with runtime.read_sessionmaker() as read:
        left = await read.scalar(
            sa.select(sa.func.count()).where(EvidencePhoto.report_id == uuid.UUID(filed["id"]))
        )
    assert left == 0


def listing(reference: str, pdq: str) -> dict[str, Any]:
    return {"photos": [{"reference": reference, "pdq": pdq, "quality": 100}]}


async def test_a_claim_made_from_the_callers_own_listing_photo_is_found(
    shop: Member,
) -> None:
    registered = await shop.post("/v1/listing-photos", listing("sku-1/main", PUBLISHED[ORIGINAL]))
    assert registered.json() == {"registered": 1, "unchanged": 0}
    again = await shop.post("/v1/listing-photos", listing("sku-1/main", PUBLISHED[ORIGINAL]))
    assert again.json() == {"registered": 0, "unchanged": 1}  # idempotent
    stained = fingerprint(_doctored("stain")).pdq
    answer = (await shop.post("/v1/evidence:check", check(photo(stained)))).json()
    (result,) = answer["photos"]
    assert [m["reference"] for m in result["own_listings"]] == ["sku-1/main"]
    assert result["recommendation"] == "manual_review"
    assert "seller's own product photo" in answer["explanation"]["summary"]

    withdrawn = await shop.post("/v1/listing-photos/withdrawal", {"reference": "sku-1/main"})
    assert withdrawn.json() == {"withdrawn": 1}
    after = (await shop.post("/v1/evidence:check", check(photo(stained)))).json()
    assert after["photos"][0]["own_listings"] == []
    back = await shop.post("/v1/listing-photos", listing("sku-1/main", PUBLISHED[ORIGINAL]))
    assert back.json() == {"registered": 1, "unchanged": 0}  # registered again: back


async def test_other_members_listing_photos_are_not_matched_with_the_switch_off(
    acme: Member, shop: Member
) -> None:
    await acme.post("/v1/listing-photos", listing("sku-9", PUBLISHED[ORIGINAL]))
    answer = (await shop.post("/v1/evidence:check", check(photo(PUBLISHED[ORIGINAL])))).json()
    (result,) = answer["photos"]
    assert result["own_listings"] == []
    assert result["other_listings"] == 0
    assert answer["recommendation"] == "proceed"


async def test_with_the_switch_on_other_members_listings_are_counted_not_named(
    acme: Member, shop: Member, runtime: Runtime
) -> None:
    await acme.post("/v1/listing-photos", listing("sku-9", PUBLISHED[ORIGINAL]))
    document = policies.document_of(ScoringPolicy(version="listings-on", match_other_listings=True))
    async with runtime.sessionmaker() as session, session.begin():
        await policies.set_policy(session, op(runtime), json.dumps(document))
    runtime.evidence.policies = policies.PolicySource()  # no waiting for the cache
    answer = (await shop.post("/v1/evidence:check", check(photo(PUBLISHED[ORIGINAL])))).json()
    (result,) = answer["photos"]
    assert result["other_listings"] == 1
    assert result["own_listings"] == []
    assert "sku-9" not in json.dumps(answer)
    assert answer["recommendation"] == "manual_review"


async def test_the_buyers_file_says_how_many_photos_a_report_keeps(
    acme: Member, clock: FrozenClock
) -> None:
    subject = pseudonym()
    await acme.file(payload(clock, subject=subject, evidence_photos=[photo(PUBLISHED[ORIGINAL])]))
    disclosed = await acme.post(
        "/v1/subjects/disclosure",
        {"subject": subject, "purpose": "subject_request", "reference": "ask-1"},
    )
    assert disclosed.status_code == 200, disclosed.text
    (held,) = disclosed.json()["reports"]
    assert held["evidence_photos"] == 1
    assert PUBLISHED[ORIGINAL] not in disclosed.text  # a count, never the fingerprint


async def test_the_buyers_text_comes_in_chinese_by_default(
    acme: Member, shop: Member, clock: FrozenClock
) -> None:
    await file_forged(acme, clock, PUBLISHED[ORIGINAL])
    cracked = fingerprint(_doctored("crack")).pdq
    answer = await shop.post("/v1/evidence:check", check(photo(cracked), locale=None))
    assert answer.headers["content-language"] == "zh-CN"
    body = answer.json()
    assert "另一家平台此前确认为伪造证据" in body["explanation"]["summary"]
    assert "并不等于认定您有过错" in body["explanation"]["your_rights"]
    assert "同一家平台" in body["photos"][0]["notes"][0]
