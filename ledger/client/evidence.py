"""Photo fingerprints, made on the member's side: the photo never leaves the member.

``fingerprint(photo)`` turns a claim or listing photo into what the ledger takes: a PDQ
hash (Meta's perceptual hash, 256 bits; the one ThreatExchange and hash-sharing
programmes use) and its quality (0-100). The photo is decoded with Pillow, turned the
way its EXIF orientation says (a phone photo is hashed as it is seen), and hashed with
``pdqhash``, the maintained binding of ThreatExchange's own C++ implementation, so the
hashes are bit-exact with the published ones (tests/client/test_evidence.py checks the
ThreatExchange test images).

A photo of quality below 50 says too little to match on (a flat or tiny image): it is
refused with ``UnusablePhoto`` and never sent. With ``dihedral=True`` the seven rotated
and mirrored variants are hashed too, so that a rotated or flipped copy is found.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pdqhash
from PIL import Image, ImageOps

from ledger.client import provenance

MIN_QUALITY = 50
HASH_BITS = 256


class UnusablePhoto(ValueError):
    """A photo too flat or too small to fingerprint usefully (PDQ quality below 50)."""

    def __init__(self, quality: int) -> None:
        super().__init__(
            f"this photo's PDQ quality is {quality} (below {MIN_QUALITY}): it is too flat or "
            "too small to match on; it was not fingerprinted and nothing is sent"
        )
        self.quality = quality


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A photo as the ledger sees it: never the photo."""

    pdq: str  # 64 lowercase hex digits, as PDQ's reference implementations print it
    quality: int
    variants: tuple[str, ...] = ()  # the 7 rotations and mirror images, when asked for
    provenance: tuple[dict[str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"pdq": self.pdq, "quality": self.quality}
        if self.variants:
            body["variants"] = list(self.variants)
        if self.provenance:
            body["provenance"] = [dict(v) for v in self.provenance]
        return body


Photo = bytes | str | os.PathLike[str] | Image.Image


def load(photo: Photo) -> Image.Image:
    """The photo as an RGB image, turned upright per its EXIF orientation."""
    if isinstance(photo, Image.Image):
        image = photo
    elif isinstance(photo, bytes):
        image = Image.open(io.BytesIO(photo))
    else:
        image = Image.open(photo)
    upright = ImageOps.exif_transpose(image)
    return upright.convert("RGB")


def _hex(bits: np.ndarray[Any, Any]) -> str:
    # Bit 0 first, most significant first in each byte: the hex PDQ's tools print.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def fingerprint(photo: Photo, *, dihedral: bool = False) -> Fingerprint:
    """The photo's PDQ fingerprint; ``UnusablePhoto`` below quality 50. From bytes or
    a path, the photo's provenance is read too (C2PA, IPTC, China's AIGC label:
    ledger/client/provenance.py), as verdict codes; a decoded image has none to give."""
    pixels = np.asarray(load(photo))
    if dihedral:
        hashes, quality = pdqhash.compute_dihedral(pixels)
        first, *rest = (_hex(h) for h in hashes)
    else:
        bits, quality = pdqhash.compute(pixels)
        first, rest = _hex(bits), []
    if quality < MIN_QUALITY:
        raise UnusablePhoto(int(quality))
    said = () if isinstance(photo, Image.Image) else provenance.read(photo)
    return Fingerprint(pdq=first, quality=int(quality), variants=tuple(rest), provenance=said)


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hashes in hex (0-256)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
