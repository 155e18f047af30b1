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
from typing import Any

import numpy as np
import pdqhash
from PIL import Image, ImageOps

from refund_ledger_client import provenance
from refund_ledger_client.errors import UnusablePhoto
from refund_ledger_client.models import Fingerprint

MIN_QUALITY = 50
HASH_BITS = 256


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
    provenance.py), as verdict codes; a decoded image has none to give."""
    pixels = np.asarray(load(photo))
    if dihedral:
        hashes, quality = pdqhash.compute_dihedral(pixels)
        first, *rest = (_hex(h) for h in hashes)
    else:
        bits, quality = pdqhash.compute(pixels)
        first, rest = _hex(bits), []
    if quality < MIN_QUALITY:
        raise UnusablePhoto(int(quality), MIN_QUALITY)
    said = () if isinstance(photo, Image.Image) else provenance.read(photo)
    return Fingerprint(pdq=first, quality=int(quality), variants=tuple(rest), provenance=said)


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hashes in hex (0-256)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
