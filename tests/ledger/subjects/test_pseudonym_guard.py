"""The raw-identifier guard: it catches identifiers, padded ones included, and never a
real pseudonym."""

from __future__ import annotations

import base64
import os

import pytest

from ledger.errors import InvalidInput
from ledger.subjects.pseudonyms import RAW_IDENTIFIER, check_pseudonym


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
