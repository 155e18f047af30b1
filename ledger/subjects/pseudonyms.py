"""What the ledger accepts as a subject: a pseudonym, and never a raw identifier.

A pseudonym is 32 bytes written base64url without padding (43 characters), the output
of the VOPRF the member's SDK runs. Anything else is refused, and input that looks like
a phone number, a PRC resident ID number or an email address gets an error saying that
raw identifiers must never be sent. The value itself is never echoed or logged.

The guard stops accidents, not a member set on sending raw identifiers: one encoded to
look random passes. Such a member is in breach of its agreement, and every subject it
sent is in the audit log under its name.
"""

from __future__ import annotations

import re

from ledger.errors import InvalidInput

# 32 bytes in canonical unpadded base64url: 42 characters, then one whose two low bits
# (past the 256th) are zero. The OpenAPI description publishes this pattern.
PSEUDONYM_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
_CANONICAL = re.compile(PSEUDONYM_PATTERN.removeprefix("^").removesuffix("$"))
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_PRC_ID = re.compile(r"^\d{15}$|^\d{17}[\dXx]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

RAW_IDENTIFIER = (
    "this looks like a raw identifier (a phone number, an ID number or an email address); "
    "raw identifiers must never be sent to the ledger: turn it into a pseudonym with the "
    "SDK's pseudonymize() first"
)
NOT_A_PSEUDONYM = (
    "a subject is a pseudonym: 43 characters of base64url (32 bytes, no padding), as "
    "returned by the SDK's pseudonymize()"
)


# Inside a pseudonym-shaped string: a Chinese mobile number (11 digits, 1[3-9]…), or a
# run of 14 or more digits (ID numbers, international numbers). In 43 random base64url
# characters either occurs with probability about 3.3e-9 (docs/privacy.md): about one
# real pseudonym in 300 million would be refused, while a phone number padded out to
# 43 characters is caught.
_EMBEDDED = re.compile(r"1[3-9]\d{9}|\d{14,}")


def looks_raw(value: str) -> bool:
    text = value.strip()
    return bool(
        _PHONE.match(text) or _PRC_ID.match(text) or _EMAIL.match(text) or _EMBEDDED.search(text)
    )


def check_pseudonym(value: str, *, field: str = "subject") -> str:
    """Return ``value`` if it is a pseudonym; else raise without repeating it."""
    # 43 base64url characters are 32 bytes and 2 bits; the pattern's last character
    # class holds those whose 2 unused bits are zero, so a match is the canonical form
    # of 32 bytes (tests hold it to decoding), with no decoding here. ``fullmatch``: the
    # pattern's ``$`` would let a trailing newline through.
    if _CANONICAL.fullmatch(value) and not _EMBEDDED.search(value):
        return value
    raise InvalidInput(RAW_IDENTIFIER if looks_raw(value) else NOT_A_PSEUDONYM, fields=(field,))
