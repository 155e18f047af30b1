"""The raw-identifier guard: it catches identifiers, padded ones included, and never a
real pseudonym."""

from __future__ import annotations

import base64
import binascii
import os
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.subjects.pseudonyms import _EMBEDDED, RAW_IDENTIFIER, check_pseudonym


def _pseudonym(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        "13812345679" + "A" * 32,  # a phone number padded out to a pseudonym's length
        "A" * 32 + "13812345679",
        "AAAA8613812345679" + "B" * 26,  # with the country code, digits only
        "11010519491231002X" + "C" * 25,  # an ID number, padded
        "1" * 43,
        "+8613800138000",
        "13800138000",
        "buyer@example.com",
    ],
)
def test_raw_identifiers_are_refused_as_such_without_echo(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_pseudonym(value)
    assert caught.value.message == RAW_IDENTIFIER
    assert value not in caught.value.message


def test_real_pseudonyms_pass() -> None:
    # 200,000 VOPRF outputs are uniformly random 32-byte strings: none may be refused.
    for _ in range(200_000):
        value = _pseudonym(os.urandom(32))
        assert check_pseudonym(value) == value


def test_short_digit_runs_in_a_pseudonym_pass() -> None:
    value = _pseudonym(b"\x00" * 32)[:30] + "1234567890123"[:10] + "AAA"
    assert len(value) == 43
    assert check_pseudonym(value) == value


def _decodes_canonically(value: str) -> bool:
    """The reference: 32 bytes whose unpadded base64url is exactly ``value``."""
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32 and _pseudonym(raw) == value


_ALPHABET = string.ascii_letters + string.digits + "-_"


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.text(_ALPHABET, min_size=41, max_size=45),
        st.text(_ALPHABET + "=+/\n ", min_size=43, max_size=44),
        st.binary(min_size=32, max_size=32).map(_pseudonym),
    )
)
def test_the_pattern_is_decoding_canonical_32_bytes(value: str) -> None:
    if _EMBEDDED.search(value):  # refused as a raw identifier, whatever it decodes to
        return
    try:
        check_pseudonym(value)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted is _decodes_canonically(value)


def test_a_trailing_newline_is_refused() -> None:
    value = _pseudonym(b"\x01" * 32)
    assert check_pseudonym(value) == value
    with pytest.raises(InvalidInput):
        check_pseudonym(value + "\n")
