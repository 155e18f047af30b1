"""Identifier normalization: every member must turn the same buyer into the same input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from refund_ledger_client.identifiers import (
    InvalidIdentifier,
    check_character,
    normalize,
    oprf_input,
)


@pytest.mark.parametrize(
    "value",
    ["13800138000", "+86 138 0013 8000", "+8613800138000", "0086 13800138000", "138-0013-8000"],
)
def test_a_cn_mobile_number_in_any_common_form_is_one_input(value: str) -> None:
    assert oprf_input("phone", value) == b"phone:+8613800138000"


def test_a_number_abroad_needs_its_country_code_or_region() -> None:
    assert normalize("phone", "+1 650-253-0000") == "+16502530000"
    assert normalize("phone", "650-253-0000", region="US") == "+16502530000"


@pytest.mark.parametrize("value", ["12345", "not a number", "+86 123", ""])
def test_an_invalid_phone_number_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize("phone", value)
    if value:
        assert value not in str(caught.value)


def test_prc_id_numbers_are_checked_and_upper_cased() -> None:
    # GB 11643-1999's own example, with a lower-case check character.
    assert normalize("prc_id", " 11010519491231002x ") == "11010519491231002X"
    # A 15-digit first-generation number becomes the 18-character one.
    assert normalize("prc_id", "110105491231002") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("110105194912310021", "check character"),
        ("11010519491331002" + check_character("11010519491331002"), "date of birth"),
        ("1101051949123100", "18 characters"),
        ("11010519491231002Y", "18 characters"),
    ],
)
def test_a_bad_prc_id_number_says_what_is_wrong(value: str, why: str) -> None:
    with pytest.raises(InvalidIdentifier, match=why) as caught:
        normalize("prc_id", value)
    assert value not in str(caught.value)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_the_check_character_catches_any_single_digit_change(first17: str) -> None:
    good = first17 + check_character(first17)
    for position in range(17):
        digit = (int(first17[position]) + 1) % 10
        changed = first17[:position] + str(digit) + first17[position + 1 :]
        assert check_character(changed) != good[17]


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert oprf_input("email", "  Buyer.One@Example.COM ") == b"email:buyer.one@example.com"
    for bad in ["no-at-sign", "a@b", "two@@example.com", "a b@example.com"]:
        with pytest.raises(InvalidIdentifier):
            normalize("email", bad)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="unknown identifier kind"):
        oprf_input("passport", "E12345678")
