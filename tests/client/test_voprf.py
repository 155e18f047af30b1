"""RFC 9497 Appendix A.1 (ristretto255-SHA512) reproduced exactly, RFC 9496 A.2's bad
encodings refused, and a forged or mismatched proof rejected."""

from __future__ import annotations

import os

import pytest
import rbcl
from hypothesis import given, settings
from hypothesis import strategies as st
from refund_ledger_client.voprf import (
    OPRF,
    VOPRF,
    InvalidElement,
    InvalidProof,
    Suite,
    deserialize_element,
    expand_message_xmd,
)

SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
INPUTS = [bytes.fromhex("00"), bytes.fromhex("5a" * 17)]
BLIND = bytes.fromhex("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706")
BLIND_2 = bytes.fromhex("222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e")

# A.1.1, OPRF mode
OPRF_SK = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"
OPRF_VECTORS = [
    (
        "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
        "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
        "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
        "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
    ),
    (
        "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
        "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
        "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
        "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
    ),
]

# A.1.2, VOPRF mode
VOPRF_SK = "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909"
VOPRF_PK = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e"
VOPRF_BLINDED = [
    "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
    "cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c",
]
VOPRF_EVALUATED = [
    "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
    "60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468",
]
VOPRF_PROOFS = [
    "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06"
    "6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
    "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a"
    "67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
]
VOPRF_OUTPUTS = [
    "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
    "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c",
    "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
    "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6",
]
PROOF_SCALAR = BLIND_2
# Test Vector 3, batch size 2: blinds BLIND and BLIND_2, one proof for both.
BATCH_BLINDED = [
    "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
    "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654",
]
BATCH_EVALUATED = [
    "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
    "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a",
]
BATCH_PROOF = (
    "cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a"
    "5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08"
)
BATCH_PROOF_SCALAR = "419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c"

# RFC 9496 Appendix A.2: encodings every decoder must refuse.
BAD_ENCODINGS = [
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
    "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
    "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
    "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
    "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
    "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
    "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
    "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
    "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
    "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
    "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
    "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
    "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
    "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
    "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]

oprf = Suite(OPRF)
voprf = Suite(VOPRF)


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_derive_key_pair_matches_the_rfc_in_both_modes() -> None:
    assert oprf.derive_key_pair(SEED, KEY_INFO)[0].hex() == OPRF_SK
    secret, public = voprf.derive_key_pair(SEED, KEY_INFO)
    assert (secret.hex(), public.hex()) == (VOPRF_SK, VOPRF_PK)


@pytest.mark.parametrize("index", [0, 1])
def test_oprf_mode_vectors(index: int) -> None:
    blinded_hex, evaluated_hex, output_hex = OPRF_VECTORS[index]
    blind, blinded = oprf.blind(INPUTS[index], BLIND)
    assert blinded.hex() == blinded_hex
    evaluated, proof = oprf.blind_evaluate(h(OPRF_SK), [blinded])
    assert (evaluated[0].hex(), proof) == (evaluated_hex, None)
    assert oprf.finalize(INPUTS[index], blind, evaluated[0]).hex() == output_hex


@pytest.mark.parametrize("index", [0, 1])
def test_voprf_mode_vectors(index: int) -> None:
    blind, blinded = voprf.blind(INPUTS[index], BLIND)
    assert blinded.hex() == VOPRF_BLINDED[index]
    evaluated, proof = voprf.blind_evaluate(h(VOPRF_SK), [blinded], proof_scalar=PROOF_SCALAR)
    assert evaluated[0].hex() == VOPRF_EVALUATED[index]
    assert proof is not None
    assert proof.hex() == VOPRF_PROOFS[index]
    output = voprf.finalize(
        INPUTS[index], blind, evaluated[0], blinded=blinded, public_key=h(VOPRF_PK), proof=proof
    )
    assert output.hex() == VOPRF_OUTPUTS[index]


def test_voprf_batch_of_two_has_one_proof_and_matches_the_rfc() -> None:
    blinds = [BLIND, BLIND_2]
    blinded = [voprf.blind(x, r)[1] for x, r in zip(INPUTS, blinds, strict=True)]
    assert [b.hex() for b in blinded] == BATCH_BLINDED
    evaluated, proof = voprf.blind_evaluate(
        h(VOPRF_SK), blinded, proof_scalar=h(BATCH_PROOF_SCALAR)
    )
    assert [e.hex() for e in evaluated] == BATCH_EVALUATED
    assert proof is not None
    assert proof.hex() == BATCH_PROOF
    outputs = voprf.finalize_batch(
        INPUTS, blinds, blinded, evaluated, public_key=h(VOPRF_PK), proof=proof
    )
    assert [o.hex() for o in outputs] == VOPRF_OUTPUTS


@pytest.mark.parametrize("encoding", BAD_ENCODINGS)
def test_rfc_9496_bad_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(InvalidElement):
        deserialize_element(h(encoding))


@pytest.mark.parametrize("data", [bytes(32), b"", bytes(31), bytes(33)])
def test_the_identity_and_wrong_lengths_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidElement):
        deserialize_element(data)


def _batch(secret: bytes) -> tuple[list[bytes], list[bytes], list[bytes], bytes]:
    blinds, blinded = zip(*(voprf.blind(x) for x in INPUTS), strict=True)
    evaluated, proof = voprf.blind_evaluate(secret, list(blinded))
    assert proof is not None
    return list(blinds), list(blinded), evaluated, proof


def test_a_proof_from_another_key_is_rejected() -> None:
    other_secret = bytes(rbcl.crypto_core_ristretto255_scalar_random())
    blinds, blinded, evaluated, proof = _batch(other_secret)
    with pytest.raises(InvalidProof):
        voprf.finalize_batch(
            INPUTS, blinds, blinded, evaluated, public_key=h(VOPRF_PK), proof=proof
        )


def test_a_tampered_evaluation_or_proof_is_rejected() -> None:
    blinds, blinded, evaluated, proof = _batch(h(VOPRF_SK))
    swapped = [evaluated[1], evaluated[0]]
    with pytest.raises(InvalidProof):
        voprf.finalize_batch(INPUTS, blinds, blinded, swapped, public_key=h(VOPRF_PK), proof=proof)
    flipped = bytes([proof[0] ^ 1]) + proof[1:]
    with pytest.raises(InvalidProof):
        voprf.finalize_batch(
            INPUTS, blinds, blinded, evaluated, public_key=h(VOPRF_PK), proof=flipped
        )
    # The honest answer still verifies: the rejections above are about the tampering.
    assert (
        len(
            voprf.finalize_batch(
                INPUTS, blinds, blinded, evaluated, public_key=h(VOPRF_PK), proof=proof
            )
        )
        == 2
    )


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_blinding_never_changes_the_output(message: bytes) -> None:
    # The ledger sees a fresh random element every time; the member gets one output.
    first = _finalized(message)
    assert first == _finalized(message)


def _finalized(message: bytes) -> bytes:
    blind, blinded = voprf.blind(message)
    evaluated, proof = voprf.blind_evaluate(h(VOPRF_SK), [blinded])
    assert proof is not None
    return voprf.finalize(
        message, blind, evaluated[0], blinded=blinded, public_key=h(VOPRF_PK), proof=proof
    )


def test_expand_message_xmd_matches_rfc_9380_k1() -> None:
    # RFC 9380 K.3 (expand_message_xmd, SHA-512), msg "", len_in_bytes 0x20.
    dst = b"QUUX-V01-CS02-with-expander-SHA512-256"
    assert expand_message_xmd(b"", dst, 32).hex() == (
        "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"
    )


def test_random_keys_round_trip() -> None:
    seed = os.urandom(32)
    secret, public = voprf.derive_key_pair(seed, b"ledger key 1")
    blind, blinded = voprf.blind(b"phone:+8613800138000")
    evaluated, proof = voprf.blind_evaluate(secret, [blinded])
    assert proof is not None
    voprf.finalize(
        b"phone:+8613800138000",
        blind,
        evaluated[0],
        blinded=blinded,
        public_key=public,
        proof=proof,
    )
