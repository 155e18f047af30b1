"""Evidence fingerprints in the ledger: stored with reports and listings, and checked.

``check`` is the evidence query, made like the risk query: purpose-bound, recorded
before it is answered, refused and recorded without a purpose. For each claim photo it
finds, among the stored fingerprints within the policy's distance:

- the photos of *other* members' reports that count now, of category
  ``forged_evidence``: how near, how many reports and how many members, never which;
- the caller's own listing photos: how near, and the caller's own listing reference;
- other members' listing photos only when the policy's switch is on (off by default):
  a count, never whose.

A match is a reason for a person to look: the recommendation is ``proceed`` or
``manual_review``, never a denial, and a match never moves the risk score. Which
stored photos may match is decided here, by the database, at the moment of the check:
a withdrawn, suppressed or expired report's photos stop matching at once, and a
withdrawn listing photo too. The in-memory index (ledger/evidence/index.py) only
proposes candidates by distance.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal, require
from ledger.audit.reads import Audited, Recorder
from ledger.audit.tags import Tag
from ledger.errors import InvalidInput
from ledger.evidence.keys import FingerprintKey
from ledger.evidence.models import EvidencePhoto, ListingPhoto
from ledger.evidence.photos import PhotoInput, check_photos
from ledger.evidence.upkeep import Indexes
from ledger.i18n import DEFAULT_LOCALE, gettext
from ledger.reports.models import Report
from ledger.reports.policy import COUNTING, Category, ReportPolicy
from ledger.reports.queries import status_is
from ledger.scoring.explanations import ONE_PLATFORM_ALONE, Explanation, explain_evidence
from ledger.scoring.policies import PolicySource
from ledger.scoring.score import ScoringPolicy
from ledger.scoring.service import MarkerRow, Purpose, marker_in_force
from ledger.subjects.pseudonyms import check_pseudonym


async def store_report_photos(
    session: AsyncSession,
    key: FingerprintKey,
    photos: dict[uuid.UUID, tuple[PhotoInput, ...]],
    *,
    member_id: uuid.UUID,
    now: dt.datetime,
) -> None:
    """Keep each new report's photos, keyed (the variants are for checks, not kept)."""
    rows = [
        {
            "report_id": report_id,
            "member_id": member_id,
            "fingerprint": key.transform(photo.pdq),
            "quality": photo.quality,
            "provenance": json.dumps([p.to_json() for p in photo.provenance]),
            "created_at": now,
        }
        for report_id, items in photos.items()
        for photo in items
    ]
    if rows:
        await session.execute(sa.insert(EvidencePhoto), rows)


async def photo_counts(
    session: AsyncSession, report_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not report_ids:
        return {}
    rows = await session.execute(
        sa.select(EvidencePhoto.report_id, sa.func.count())
        .where(EvidencePhoto.report_id.in_(report_ids))
        .group_by(EvidencePhoto.report_id)
    )
    return {report_id: int(n) for report_id, n in rows}


class Recommendation(StrEnum):
    PROCEED = "proceed"
    MANUAL_REVIEW = "manual_review"


@dataclass(frozen=True, slots=True)
class ReportMatch:
    distance: int  # the nearest of the matching photos
    reports: int
    members: int


@dataclass(frozen=True, slots=True)
class ListingMatch:
    distance: int
    reference: str


@dataclass(frozen=True, slots=True)
class PhotoResult:
    index: int
    forged_elsewhere: ReportMatch | None
    own_listings: list[ListingMatch]
    other_listings: int  # only with the policy's switch on
    recommendation: Recommendation
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Checked:
    photos: list[PhotoResult]
    recommendation: Recommendation  # manual_review when any photo matched
    explanation: Explanation  # for the buyer whose claim it is
    marker: MarkerRow | None = None  # with a subject: a protective marker in force


@dataclass(frozen=True, slots=True)
class CheckQuery:
    photos: tuple[PhotoInput, ...]
    purpose: Purpose
    reference: str
    locale: str = DEFAULT_LOCALE  # the language of the texts for people
    subject: str | None = None  # the claimant, for a protective marker on them


class EvidenceChecks:
    """The evidence query as the core answers it."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        key: FingerprintKey,
        report_policy: ReportPolicy,
        policies: PolicySource,
        dsn: str | None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._key = key
        self._report_policy = report_policy
        self.policies = policies  # shared with the risk query's cache
        self.indexes = Indexes(sessionmaker, dsn)

    async def refuse(self, rec: Recorder, fields: Sequence[str], why: str) -> int:
        return await rec.refused(Tag.EVIDENCE_CHECKED, reason=why, fields=",".join(fields))

    async def check(
        self, rec: Recorder, principal: ClientPrincipal, query: CheckQuery
    ) -> Audited[Checked]:
        require(principal, Permission.EVIDENCE_CHECK)
        try:
            check_photos(query.photos, "photos", least=1)
        except InvalidInput as exc:
            await self.refuse(rec, exc.fields, "invalid photos")
            raise
        policy = await self.policies.get(self._sessionmaker)
        low = [n for n, p in enumerate(query.photos) if p.quality < policy.match_quality]
        if low:
            fields = [f"photos.{n}.quality" for n in low]
            await self.refuse(rec, fields, "quality below the policy's floor")
            raise InvalidInput(
                f"these photos are below the quality this ledger matches on "
                f"({policy.match_quality}): take or send better ones",
                fields=fields,
            )
        if query.subject is not None:
            try:
                check_pseudonym(query.subject)
            except InvalidInput as exc:
                await self.refuse(rec, exc.fields, "invalid subject")
                raise
        await self.indexes.refresh()
        # Candidates by distance for every photo, then two queries for the whole check:
        # which of the matched photos may still match, and whose they are.
        found = [self._search(photo, policy.match_distance) for photo in query.photos]
        async with self._sessionmaker() as session:
            reports = await self._live_reports(
                session, principal, {i for hits, _ in found for i in hits}, rec.op.now
            )
            listings = await self._live_listings(session, {i for _, hits in found for i in hits})
            marker = None
            if query.subject is not None:
                marker = await marker_in_force(session, query.subject, rec.op.now)
        results = [
            self._result(n, hits, principal, reports, listings, policy, query.locale)
            for n, hits in enumerate(found)
        ]
        matched = sum(r.recommendation is Recommendation.MANUAL_REVIEW for r in results)
        event_id = await rec.record(
            Tag.EVIDENCE_CHECKED,
            subject=query.subject,
            purpose=query.purpose.value,
            reference=query.reference,
            body={"photos": len(results), "matched": matched}
            | ({"protective_marker": marker.kind} if marker else {}),
        )
        review = matched or marker is not None
        overall = Recommendation.MANUAL_REVIEW if review else Recommendation.PROCEED
        explanation = explain_evidence(
            forged_elsewhere=any(r.forged_elsewhere for r in results),
            own_listing=any(r.own_listings or r.other_listings for r in results),
            locale=query.locale,
        )
        return Audited(Checked(results, overall, explanation, marker), event_id)

    def _search(self, photo: PhotoInput, limit: int) -> tuple[dict[int, int], dict[int, int]]:
        """Stored report and listing photos within ``limit`` bits of the photo or of any
        of its variants: id → nearest distance."""
        report_hits: dict[int, int] = {}
        listing_hits: dict[int, int] = {}
        for raw in (photo.pdq, *photo.variants):
            stored = self._key.transform(raw)
            for hit in self.indexes.reports.search(stored, limit):
                report_hits[hit.id] = min(hit.distance, report_hits.get(hit.id, 256))
            for hit in self.indexes.listings.search(stored, limit):
                listing_hits[hit.id] = min(hit.distance, listing_hits.get(hit.id, 256))
        return report_hits, listing_hits

    def _result(  # noqa: PLR0917  (one photo's part of a check)
        self,
        n: int,
        hits: tuple[dict[int, int], dict[int, int]],
        principal: ClientPrincipal,
        reports: dict[int, tuple[uuid.UUID, uuid.UUID]],
        listings: dict[int, tuple[uuid.UUID, str]],
        policy: ScoringPolicy,
        locale: str,
    ) -> PhotoResult:
        report_hits, listing_hits = hits
        live = {i: reports[i] for i in report_hits if i in reports}
        forged = None
        if live:
            forged = ReportMatch(
                distance=min(report_hits[i] for i in live),
                reports=len({report_id for report_id, _ in live.values()}),
                members=len({member for _, member in live.values()}),
            )
        own = sorted(
            (
                ListingMatch(distance=d, reference=listings[i][1])
                for i, d in listing_hits.items()
                if i in listings and listings[i][0] == principal.member_id
            ),
            key=lambda m: (m.distance, m.reference),
        )
        others = sum(
            1 for i in listing_hits if i in listings and listings[i][0] != principal.member_id
        )
        notes = []
        if forged is not None and forged.members == 1:
            notes.append(gettext(locale, ONE_PLATFORM_ALONE))
        shown_others = others if policy.match_other_listings else 0
        looks = forged is not None or bool(own) or shown_others > 0
        return PhotoResult(
            index=n,
            forged_elsewhere=forged,
            own_listings=own,
            other_listings=shown_others,
            recommendation=Recommendation.MANUAL_REVIEW if looks else Recommendation.PROCEED,
            notes=notes,
        )

    async def _live_reports(
        self,
        session: AsyncSession,
        principal: ClientPrincipal,
        photo_ids: set[int],
        now: dt.datetime,
    ) -> dict[int, tuple[uuid.UUID, uuid.UUID]]:
        """Of these stored photos, those of other members' counting forged-evidence
        reports: photo id → (report id, member id)."""
        if not photo_ids:
            return {}
        counting = sa.or_(*(status_is(s, now=now, policy=self._report_policy) for s in COUNTING))
        rows = await session.execute(
            sa.select(EvidencePhoto.id, Report.id, Report.member_id)
            .join(Report, Report.id == EvidencePhoto.report_id)
            .where(
                EvidencePhoto.id.in_(sorted(photo_ids)),
                Report.member_id != principal.member_id,
                Report.category == Category.FORGED_EVIDENCE,
                Report.expires_at > now,
                counting,
            )
        )
        return {photo_id: (report_id, member) for photo_id, report_id, member in rows}

    async def _live_listings(
        self, session: AsyncSession, photo_ids: set[int]
    ) -> dict[int, tuple[uuid.UUID, str]]:
        """Of these listing photos, those not withdrawn: id → (member id, reference)."""
        if not photo_ids:
            return {}
        rows = await session.execute(
            sa.select(ListingPhoto.id, ListingPhoto.member_id, ListingPhoto.reference).where(
                ListingPhoto.id.in_(sorted(photo_ids)), ListingPhoto.withdrawn_at.is_(None)
            )
        )
        return {photo_id: (member, reference) for photo_id, member, reference in rows}
