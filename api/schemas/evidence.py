"""Photo fingerprints as members send them, and the evidence check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.locales import LOCALE_FIELD, Locale
from api.schemas import (
    Integer,
    Pseudonym,
    Reference,
    RequestModel,
    checked_by_the_core,
    example,
)
from api.schemas.markers import MarkerNotice
from api.schemas.risk import Explanation
from ledger.evidence import photos
from ledger.evidence.photos import MAX_PHOTOS, Provenance, Verdict
from ledger.scoring.service import Purpose

PDQ_PATTERN = r"^[0-9a-fA-F]{64}$"
EXAMPLE_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


class ProvenanceIn(RequestModel):
    verdict: Verdict = Field(
        description="what the photo says of its origin, read by the SDK offline: a C2PA "
        "manifest that checks or not, an IPTC AI source type, China's AIGC label"
    )
    label: str | None = Field(
        default=None, max_length=64, description="the AIGC label's Label value"
    )
    producer: str | None = Field(
        default=None, max_length=128, description="the AIGC label's ContentProducer code"
    )


class PhotoIn(RequestModel):
    """A photo's fingerprint, made by the SDK's fingerprint(); never the photo."""

    model_config = example({"pdq": EXAMPLE_PDQ, "quality": 100})

    pdq: str = Field(
        json_schema_extra=checked_by_the_core(pattern=PDQ_PATTERN),
        description="the PDQ hash, 64 hex digits",
    )
    quality: Integer = Field(
        json_schema_extra=checked_by_the_core(minimum=photos.MIN_QUALITY, maximum=100),
        description="PDQ's quality, 50 to 100 (below 50 the SDK refuses the photo)",
    )
    variants: list[str] = Field(
        default_factory=list,
        max_length=7,
        description="for a check: the 7 rotations and mirror images' hashes, so that a "
        "turned or flipped copy is found too (the SDK's dihedral=True)",
    )
    provenance: list[ProvenanceIn] = Field(
        default_factory=list, max_length=5, description="verdict codes, never the metadata"
    )

    def photo(self, where: str) -> photos.PhotoInput:
        return photos.PhotoInput(
            pdq=photos.parse_hash(self.pdq, f"{where}.pdq"),
            quality=self.quality,
            variants=tuple(
                photos.parse_hash(v, f"{where}.variants.{n}") for n, v in enumerate(self.variants)
            ),
            provenance=tuple(
                Provenance(verdict=p.verdict, label=p.label, producer=p.producer)
                for p in self.provenance
            ),
        )


class EvidenceCheckIn(RequestModel):
    model_config = example(
        {
            "photos": [{"pdq": EXAMPLE_PDQ, "quality": 100}],
            "purpose": "refund_review",
            "reference": "refund-8841",
        }
    )

    photos: list[PhotoIn] = Field(
        json_schema_extra=checked_by_the_core(minItems=1, maxItems=MAX_PHOTOS),
        description="the claim's photos, fingerprinted by the SDK",
    )
    purpose: Purpose = Field(description="what the answer will be used for, and only for")
    reference: Reference = Field(description="your refund request id (audited with the check)")
    locale: Locale | None = LOCALE_FIELD
    subject: Pseudonym | None = Field(
        default=None,
        description="the claimant's pseudonym, if you want a protective marker on them "
        "shown with the answer (the photos are matched the same either way)",
    )


class ForgedElsewhereOut(BaseModel):
    distance: int = Field(description="bits of 256 to the nearest matching photo")
    reports: int = Field(description="counting forged-evidence reports with a matching photo")
    members: int = Field(description="how many platforms filed them (never which)")


class ListingMatchOut(BaseModel):
    distance: int = Field(description="bits of 256 to your listing photo")
    reference: str = Field(description="your own listing reference")


class PhotoResultOut(BaseModel):
    index: int = Field(description="the photo's position in the request, from 0")
    forged_elsewhere: ForgedElsewhereOut | None = Field(
        description="near copies among other platforms' confirmed forged evidence"
    )
    own_listings: list[ListingMatchOut] = Field(
        description="near copies of your own listing photos: the seller's photo, reused"
    )
    other_listings: int = Field(
        description="other platforms' listing photos matched (0 unless the ledger's "
        "policy matches them)"
    )
    recommendation: Literal["proceed", "manual_review"] = Field(
        description="manual_review when anything matched; never a denial"
    )
    notes: list[str] = Field(description="what a reviewer should weigh, in words")


class EvidenceCheckOut(BaseModel):
    model_config = example(
        {
            "photos": [
                {
                    "index": 0,
                    "forged_elsewhere": {"distance": 12, "reports": 2, "members": 2},
                    "own_listings": [{"distance": 6, "reference": "sku-88412/main"}],
                    "other_listings": 0,
                    "recommendation": "manual_review",
                    "notes": [],
                }
            ],
            "recommendation": "manual_review",
            "explanation": {
                "summary": "A photo with this claim closely resembles a photo that another "
                "platform confirmed as forged evidence in an earlier case. A person will "
                "look at the claim before it is decided.",
                "decision": "The refund ledger did not make this decision. …",
                "your_rights": "A resemblance is not a finding against you: …",
            },
            "audit_event_id": 48215,
        }
    )

    photos: list[PhotoResultOut] = Field(description="one per photo, in order")
    recommendation: Literal["proceed", "manual_review"] = Field(
        description="manual_review when any photo matched; a match never moves the risk "
        "score and is never a verdict on its own"
    )
    explanation: Explanation = Field(
        description="text a platform can show the buyer when their claim goes to review"
    )
    audit_event_id: int = Field(description="the check's audit event")
    protective_marker: MarkerNotice | None = Field(
        default=None,
        description="with subject: the buyer said their identity was misused; verify who "
        "you deal with (the recommendation is then manual_review)",
    )


class ListingPhotoIn(RequestModel):
    reference: Reference = Field(description="your listing (catalogue) reference, e.g. a SKU")
    pdq: str = Field(
        json_schema_extra=checked_by_the_core(pattern=PDQ_PATTERN),
        description="the listing photo's PDQ hash, from the SDK's fingerprint()",
    )
    quality: Integer = Field(
        json_schema_extra=checked_by_the_core(minimum=photos.MIN_QUALITY, maximum=100),
        description="PDQ's quality, 50 to 100",
    )


class ListingPhotosIn(RequestModel):
    model_config = example(
        {"photos": [{"reference": "sku-88412/main", "pdq": EXAMPLE_PDQ, "quality": 100}]}
    )

    photos: list[ListingPhotoIn] = Field(
        json_schema_extra=checked_by_the_core(minItems=1, maxItems=1000),
        description="up to 1,000 listing photos; sending one again changes nothing",
    )


class ListingPhotosOut(BaseModel):
    model_config = example({"registered": 1, "unchanged": 0})

    registered: int = Field(description="photos registered now (or brought back)")
    unchanged: int = Field(description="photos registered before")


class ListingWithdrawalIn(RequestModel):
    model_config = example({"reference": "sku-88412/main"})

    reference: Reference = Field(description="the listing whose photos stop matching")


class ListingWithdrawalOut(BaseModel):
    model_config = example({"withdrawn": 3})

    withdrawn: int = Field(description="photos withdrawn now")
