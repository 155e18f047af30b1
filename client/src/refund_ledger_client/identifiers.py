"""Buyer identifiers normalized the same way by every member, so the same buyer gets
the same pseudonym on every platform.

- ``phone``: E.164 (``+8613800138000``) with ``phonenumbers``; numbers without a
  country code are read in ``region`` (default ``CN``). A number that is not valid for
  its region is refused.
- ``prc_id``: a PRC resident identity card number. 18 characters (17 digits and a
  check character, ISO 7064 MOD 11-2, ``X`` upper-cased); a 15-digit number of the
  first generation is converted (``19`` inserted before the year, check character
  computed). The date of birth must be a real date.
- ``email``: trimmed and lower-cased; one ``@`` with a dotted domain.

The VOPRF input is ``kind:normalized``, UTF-8 (``phone:+8613800138000``). Errors never
repeat the value: it is personal data, and error messages end up in logs.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

import phonenumbers


class Kind(StrEnum):
    PHONE = "phone"
    PRC_ID = "prc_id"
    EMAIL = "email"


class InvalidIdentifier(ValueError):
    """The identifier cannot be normalized; the message says why, without the value."""


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalize_phone(value: str, *, region: str = "CN") -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(
            "not a valid phone number for its region (give +<country code> for numbers "
            f"outside {region})"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-character ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalize_prc_id(value: str) -> str:
    text = value.strip().upper()
    if re.fullmatch(r"\d{15}", text):
        first17 = text[:6] + "19" + text[6:]
        text = first17 + check_character(first17)
    if not re.fullmatch(r"\d{17}[\dX]", text):
        raise InvalidIdentifier(
            "a PRC resident ID number is 18 characters (17 digits and a digit or X), or 15 digits"
        )
    if check_character(text[:17]) != text[17]:
        raise InvalidIdentifier("the ID number's check character is wrong (mistyped?)")
    try:
        dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidIdentifier("the ID number's date of birth is not a real date") from None
    return text


def normalize_email(value: str) -> str:
    text = value.strip().lower()
    if not _EMAIL.fullmatch(text):
        raise InvalidIdentifier("not an email address (name@domain.tld)")
    return text


def normalize(kind: Kind | str, value: str, *, region: str = "CN") -> str:
    """``value`` in its normal form for ``kind``."""
    try:
        which = Kind(kind)
    except ValueError:
        raise InvalidIdentifier(
            f"unknown identifier kind; use one of {', '.join(k.value for k in Kind)}"
        ) from None
    if not isinstance(value, str):
        raise InvalidIdentifier("an identifier is a string")
    if which is Kind.PHONE:
        return normalize_phone(value, region=region)
    if which is Kind.PRC_ID:
        return normalize_prc_id(value)
    return normalize_email(value)


def oprf_input(kind: Kind | str, value: str, *, region: str = "CN") -> bytes:
    """The VOPRF input for an identifier: ``kind:normalized``, UTF-8."""
    normalized = normalize(kind, value, region=region)  # checks the kind too
    return f"{Kind(kind).value}:{normalized}".encode()
