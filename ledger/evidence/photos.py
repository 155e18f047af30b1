"""A photo's fingerprint as a member sends it, and what its provenance says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ledger.errors import InvalidInput

MAX_PHOTOS = 20
MIN_QUALITY = 50
HASH_HEX = 64


class Verdict(StrEnum):
    """What a photo says of its own origin, read by the SDK with no network call."""

    C2PA_VALID = "c2pa_valid"  # a C2PA manifest whose signature and hashes check
    C2PA_INVALID = "c2pa_invalid"  # a manifest that does not check (edited after signing)
    AI_GENERATED = "ai_generated"  # IPTC digital source type: trainedAlgorithmicMedia
    AI_COMPOSITE = "ai_composite"  # …: compositeWithTrainedAlgorithmicMedia
    AIGC_LABEL = "aigc_label"  # China's implicit AIGC label (GB 45438-2025)


@dataclass(frozen=True, slots=True)
class Provenance:
    verdict: Verdict
    label: str | None = None  # the AIGC label's value
    producer: str | None = None  # the AIGC label's ContentProducer code

    def to_json(self) -> dict[str, str]:
        out = {"verdict": self.verdict.value}
        if self.label is not None:
            out["label"] = self.label
        if self.producer is not None:
            out["producer"] = self.producer
        return out


@dataclass(frozen=True, slots=True)
class PhotoInput:
    """A photo's fingerprint as a member sends it: the raw PDQ hash, never stored as is."""

    pdq: bytes  # 32 bytes
    quality: int
    variants: tuple[bytes, ...] = ()
    provenance: tuple[Provenance, ...] = ()


def parse_hash(text: str, field_name: str) -> bytes:
    if len(text) != HASH_HEX or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise InvalidInput(
            "a PDQ hash is 64 hex digits, as the SDK's fingerprint() gives it",
            fields=(field_name,),
        )
    return bytes.fromhex(text)


def check_photos(photos: Sequence[PhotoInput], field_name: str, *, least: int = 0) -> None:
    if not least <= len(photos) <= MAX_PHOTOS:
        raise InvalidInput(f"send {least} to {MAX_PHOTOS} photos", fields=(field_name,))
    for n, photo in enumerate(photos):
        if not MIN_QUALITY <= photo.quality <= 100:
            raise InvalidInput(
                f"a photo's PDQ quality is {MIN_QUALITY} to 100: below {MIN_QUALITY} it is "
                "too flat or small to match on, and must not be sent",
                fields=(f"{field_name}.{n}.quality",),
            )
        if len(photo.variants) > 7:
            raise InvalidInput(
                "at most the 7 rotations and mirror images", fields=(f"{field_name}.{n}",)
            )
