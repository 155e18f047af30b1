"""What a photo says of its own origin, read on the member's side with no network call.

Three sources, each turned into verdict codes (only the codes reach the ledger):

- a **C2PA** manifest, read and validated by ``c2pa-python`` (the Content Authenticity
  Initiative's own library) with remote manifests and OCSP off: ``c2pa_valid`` when its
  signature and hashes check (the signer need not be on a trust list: that is for the
  reviewer to weigh), ``c2pa_invalid`` when they do not (the photo was changed after
  signing); and, from its actions, ``ai_generated`` / ``ai_composite`` when the IPTC
  digital source type says ``trainedAlgorithmicMedia`` /
  ``compositeWithTrainedAlgorithmicMedia``;
- the same IPTC digital source type in the photo's **XMP**, without C2PA;
- China's implicit **AIGC label** (人工智能生成合成内容标识办法, in force since 2025-09-01;
  GB 45438-2025): the ``AIGC`` JSON (``Label``, ``ContentProducer``, ``ProduceID``, …)
  in XMP, in a PNG text chunk, or in EXIF ``UserComment`` → ``aigc_label`` with its
  label value and producer code.

A missing label or manifest proves nothing: a screenshot or a re-save strips them. A
present one is evidence for a reviewer to weigh, never a verdict (docs/evidence.md).
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image

SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "ai_generated",
    "compositeWithTrainedAlgorithmicMedia": "ai_composite",
}
# C2PA failures that say nothing of the photo's integrity: an unknown signer, a
# revocation check not made (offline by design).
_NOT_INTEGRITY = ("signingCredential.untrusted", "signingCredential.ocsp")
_MIME = {b"\xff\xd8": "image/jpeg", b"\x89P": "image/png", b"RI": "image/webp"}
_USER_COMMENT = 0x9286
_EXIF_IFD = 0x8769
_SOURCE_TYPE_IN_XMP = re.compile(
    r"DigitalSourceType[^>]{0,200}?digitalsourcetype/(trainedAlgorithmicMedia|"
    r"compositeWithTrainedAlgorithmicMedia)\b",
    re.IGNORECASE | re.DOTALL,
)
_AIGC_IN_TEXT = re.compile(r"AIGC[\"'>=:\s]*(\{.*?\})", re.DOTALL)


def read(photo: bytes | str | os.PathLike[str]) -> tuple[dict[str, str], ...]:
    """The photo's provenance verdicts, each ``{"verdict", "label"?, "producer"?}``."""
    data = photo if isinstance(photo, bytes) else Path(photo).read_bytes()
    found: list[dict[str, str]] = []
    found += _c2pa(data)
    image = Image.open(io.BytesIO(data))
    xmp = _xmp(image)
    if not any(v["verdict"] in SOURCE_TYPES.values() for v in found):
        match = _SOURCE_TYPE_IN_XMP.search(xmp)
        if match:
            found.append({"verdict": SOURCE_TYPES[match.group(1)]})
    label = _aigc(image, xmp)
    if label is not None:
        found.append(label)
    return tuple(found)


def _c2pa(data: bytes) -> list[dict[str, str]]:
    import c2pa  # noqa: PLC0415  (a native library: loaded when a photo is read)

    mime = _MIME.get(data[:2])
    if mime is None:
        return []
    settings = c2pa.Settings.from_dict(
        {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    )
    try:
        reader = c2pa.Reader(mime, io.BytesIO(data), context=c2pa.Context(settings=settings))
    except c2pa.C2paError:
        return []  # no manifest, or none this library can read: nothing is said
    try:
        results = reader.get_validation_results() or {}
        failures = [
            f.get("code", "")
            for f in results.get("activeManifest", {}).get("failure", [])
            if not str(f.get("code", "")).startswith(_NOT_INTEGRITY)
        ]
        manifest: dict[str, Any] = json.loads(reader.json())
    finally:
        reader.close()
    verdicts = [{"verdict": "c2pa_invalid" if failures else "c2pa_valid"}]
    active = manifest.get("manifests", {}).get(manifest.get("active_manifest", ""), {})
    kinds = {
        SOURCE_TYPES[kind]
        for assertion in active.get("assertions", [])
        if str(assertion.get("label", "")).startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
        for kind in SOURCE_TYPES
        if str(action.get("digitalSourceType", "")).endswith("/" + kind)
    }
    verdicts += [{"verdict": kind} for kind in sorted(kinds)]
    return verdicts


def _xmp(image: Image.Image) -> str:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _aigc(image: Image.Image, xmp: str) -> dict[str, str] | None:
    """China's implicit label, wherever the standard lets it be written."""
    candidates: list[str] = []
    text = getattr(image, "text", None) or {}
    if "AIGC" in text:  # a PNG tEXt / iTXt chunk
        candidates.append(str(text["AIGC"]))
    exif = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(exif, bytes):  # 8 bytes of character code, then the comment
        charset, body = exif[:8], exif[8:]
        encoding = "utf-16" if charset.startswith(b"UNICODE") else "utf-8"
        candidates.append(body.decode(encoding, "replace"))
    elif isinstance(exif, str):
        candidates.append(exif)
    candidates += [html.unescape(m.group(1)) for m in _AIGC_IN_TEXT.finditer(xmp)]
    for candidate in candidates:
        label = _label(candidate)
        if label is not None:
            return label
    return None


def _label(text: str) -> dict[str, str] | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        document = json.loads(text[start : text.rfind("}") + 1])
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    fields = document.get("AIGC", document)
    if not isinstance(fields, dict) or "Label" not in fields:
        return None
    label = {"verdict": "aigc_label", "label": str(fields["Label"])[:64]}
    producer = fields.get("ContentProducer")
    if producer:
        label["producer"] = str(producer)[:128]
    return label
