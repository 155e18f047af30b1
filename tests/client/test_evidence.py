"""Photo fingerprints on the member's side, with ThreatExchange's test images and their
published PDQ hashes (shared/testdata/pdq), and doctored copies made here the way a
forged damage photo is made: a crack, a stain, recompression."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from refund_ledger_client.errors import UnusablePhoto
from refund_ledger_client.evidence import MIN_QUALITY, distance, fingerprint

# ThreatExchange's PDQ test images and published hashes, kept with the tests
# (tests/data/pdq/README.md says where from, LICENSE.ThreatExchange under what terms).
PDQ = Path(__file__).parents[1] / "data" / "pdq"
PUBLISHED: dict[str, str] = json.loads((PDQ / "hashes.json").read_text())["published"]
THRESHOLD = 31  # ThreatExchange's recommended match distance, of 256 bits

ORIGINAL = "bridge-mods/aaa-orig.jpg"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_hashes_are_bit_exact_with_the_published_ones(name: str) -> None:
    found = fingerprint(PDQ / name)
    assert found.pdq == PUBLISHED[name]
    assert found.quality >= MIN_QUALITY


def test_a_photo_too_small_to_hash_is_refused_and_not_sent() -> None:
    with pytest.raises(UnusablePhoto) as refused:
        fingerprint(PDQ / "misc" / "small.jpg")
    assert refused.value.quality == 0


def test_bytes_paths_and_images_give_the_same_fingerprint() -> None:
    path = PDQ / ORIGINAL
    assert fingerprint(path.read_bytes()) == fingerprint(str(path)) == fingerprint(path)
    assert fingerprint(Image.open(path)).pdq == PUBLISHED[ORIGINAL]


def test_ordinary_edits_are_near_copies_and_other_photos_are_not() -> None:
    original = PUBLISHED[ORIGINAL]
    for name, pdq in PUBLISHED.items():
        if name.startswith("bridge-mods/"):
            assert distance(original, pdq) <= THRESHOLD, name
    assert distance(original, PUBLISHED["misc/c.png"]) > 2 * THRESHOLD
    assert distance(PUBLISHED["misc/wee.jpg"], PUBLISHED["misc/c.png"]) > 2 * THRESHOLD


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _doctored(kind: str) -> bytes:
    """The seller's photo with a damage 'filter', as a refund-only forger makes it."""
    image = Image.open(PDQ / ORIGINAL).convert("RGB")
    w, h = image.size
    draw = ImageDraw.Draw(image)
    if kind == "crack":
        points = [(w * 0.30, h * 0.20), (w * 0.42, h * 0.38), (w * 0.37, h * 0.52),
                  (w * 0.55, h * 0.71), (w * 0.50, h * 0.85)]  # fmt: skip
        draw.line(points, fill=(20, 20, 20), width=max(2, w // 150))
    elif kind == "stain":
        box = (w * 0.55, h * 0.30, w * 0.75, h * 0.50)
        draw.ellipse(box, fill=(96, 64, 30))
    elif kind == "recompressed":
        return _jpeg(Image.open(io.BytesIO(_jpeg(image, quality=35))), quality=50)
    return _jpeg(image)


@pytest.mark.parametrize("kind", ["crack", "stain", "recompressed"])
def test_a_doctored_copy_matches_its_source(kind: str) -> None:
    assert distance(fingerprint(_doctored(kind)).pdq, PUBLISHED[ORIGINAL]) <= THRESHOLD


def test_rotations_match_only_when_the_dihedral_variants_are_sent() -> None:
    original = fingerprint(PDQ / "dihedral" / "bridge-1-original.jpg", dihedral=True)
    assert len(original.variants) == 7
    for rotated in sorted((PDQ / "dihedral").glob("bridge-[2-8]-*.jpg")):
        plain = fingerprint(rotated).pdq
        assert distance(plain, original.pdq) > THRESHOLD, rotated.name
        nearest = min(distance(plain, v) for v in original.variants)
        assert nearest <= THRESHOLD, rotated.name


def test_exif_orientation_is_applied_before_hashing() -> None:
    upright = Image.open(PDQ / ORIGINAL).convert("RGB")
    # Stored turned on its side, with the EXIF tag that tells a viewer to turn it back.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif)
    assert distance(fingerprint(out.getvalue()).pdq, PUBLISHED[ORIGINAL]) <= 8
