"""Provenance read on the member's side, offline, from photos made here: a C2PA
manifest signed by a test certificate (then tampered with), an IPTC source type in
XMP, and China's AIGC label in a PNG text chunk, in EXIF UserComment and in XMP."""

from __future__ import annotations

import datetime as dt
import io
import json

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, PngImagePlugin
from refund_ledger_client import provenance
from refund_ledger_client.evidence import fingerprint

from tests.client.test_evidence import ORIGINAL, PDQ

AIGC = {"Label": "1", "ContentProducer": "001191110108MA01KP2T5U00000", "ProduceID": "gen-8841"}
EMAIL_PROTECTION = ExtendedKeyUsageOID.EMAIL_PROTECTION
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=not signer,
        crl_sign=not signer, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _signer() -> c2pa.Signer:
    """An ES256 signer under a throwaway CA: valid signatures, an untrusted signer."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    days = (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    ca = (
        x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(days[0]).not_valid_after(days[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(_name("Test signer")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2)
        .not_valid_before(days[0]).not_valid_after(days[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([EMAIL_PROTECTION]), critical=False)
        .add_extension(authority, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private, ta_url=None)
    return c2pa.Signer.from_info(info)


CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def _signed(source_type: str) -> bytes:
    action = {"action": "c2pa.created", "digitalSourceType": source_type}
    manifest = {
        "claim_generator_info": [{"name": "refund-ledger tests", "version": "1"}],
        "title": "claim photo",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }
    out = io.BytesIO()
    builder = c2pa.Builder(json.dumps(manifest))
    builder.sign(_signer(), "image/jpeg", io.BytesIO((PDQ / ORIGINAL).read_bytes()), out)
    return out.getvalue()


def _verdicts(photo: bytes) -> list[str]:
    return [v["verdict"] for v in provenance.read(photo)]


def test_a_plain_photo_says_nothing() -> None:
    assert provenance.read((PDQ / ORIGINAL).read_bytes()) == ()


def test_a_signed_c2pa_manifest_checks_and_names_ai_generation() -> None:
    assert _verdicts(_signed(IPTC)) == ["c2pa_valid", "ai_generated"]
    assert _verdicts(_signed(CAPTURE)) == ["c2pa_valid"]  # a camera's photo


def test_a_photo_changed_after_signing_is_invalid() -> None:
    signed = bytearray(_signed(CAPTURE))
    signed[-2000] ^= 0xFF  # one byte of the image data, after the manifest was made
    assert _verdicts(bytes(signed)) == ["c2pa_invalid"]


def _png(**text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.open(PDQ / ORIGINAL).convert("RGB").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_the_aigc_label_in_a_png_text_chunk() -> None:
    (label,) = provenance.read(_png(AIGC=json.dumps(AIGC)))
    assert label == {"verdict": "aigc_label", "label": "1", "producer": AIGC["ContentProducer"]}


def test_the_aigc_label_in_exif_user_comment() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + json.dumps({"AIGC": AIGC}).encode()
    out = io.BytesIO()
    Image.open(PDQ / ORIGINAL).convert("RGB").save(out, "JPEG", exif=exif)
    assert _verdicts(out.getvalue()) == ["aigc_label"]


@pytest.mark.parametrize("with_iptc", [False, True])
def test_the_aigc_label_and_the_iptc_source_type_in_xmp(with_iptc: bool) -> None:
    source = f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{IPTC}"/>' if with_iptc else ""
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        '02/22-rdf-syntax-ns#"><rdf:Description xmlns:TC260="http://www.tc260.org.cn/ns/'
        f'AIGC/1.0/" TC260:AIGC="{json.dumps(AIGC).replace(chr(34), "&quot;")}">'
        f"{source}</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    out = io.BytesIO()
    Image.open(PDQ / ORIGINAL).convert("RGB").save(out, "JPEG", xmp=xmp.encode())
    expected = ["ai_generated", "aigc_label"] if with_iptc else ["aigc_label"]
    assert _verdicts(out.getvalue()) == expected


def test_the_fingerprint_carries_the_verdicts_and_a_decoded_image_none() -> None:
    photo = _png(AIGC=json.dumps(AIGC))
    assert fingerprint(photo).to_json()["provenance"][0]["verdict"] == "aigc_label"
    assert fingerprint(Image.open(io.BytesIO(photo))).provenance == ()
