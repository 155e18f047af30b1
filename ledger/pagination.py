"""Opaque cursors for keyset pagination, the same on every list endpoint.

A page is ``limit`` items and a ``next_cursor``, which is None on the last page. The
cursor holds the sort key of the page's last item, so the next page is one index range
scan from there, whatever page it is: no offsets, and no cost that grows with what came
before. Its encoding is not a contract: pass it back unchanged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from ledger.errors import InvalidInput

Key = int | str | uuid.UUID | dt.datetime

_VERSION = "c1"
_BAD_CURSOR = "the cursor is not one this ledger gave out for this list: pass next_cursor unchanged"


T = TypeVar("T")


def cut(
    rows: Sequence[T], limit: int, kind: str, key: Callable[[T], tuple[Key, ...]]
) -> tuple[list[T], str | None]:
    """A page from ``limit + 1`` rows read in the list's order: the first ``limit``, and
    the cursor after the last of them if the extra row shows there is more."""
    page = list(rows[:limit])
    if len(rows) <= limit:
        return page, None
    return page, encode(kind, *key(page[-1]))


def encode(kind: str, *key: Key) -> str:
    """The cursor after an item whose sort key is ``key``, for the list ``kind``."""
    values = [_plain(v) for v in key]
    text = json.dumps([_VERSION, kind, *values])
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _plain(value: Key) -> int | str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def decode(cursor: str, kind: str, types: Sequence[type]) -> tuple[Key, ...]:
    """The sort key in ``cursor``; ``InvalidInput`` unless it is a cursor of ``kind``."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raw = None
    values = raw[2:] if isinstance(raw, list) and raw[:2] == [_VERSION, kind] else None
    if values is None or len(values) != len(types):
        raise InvalidInput(_BAD_CURSOR, fields=("query.cursor",))
    try:
        return tuple(_typed(value, t) for value, t in zip(values, types, strict=True))
    except (ValueError, TypeError):
        raise InvalidInput(_BAD_CURSOR, fields=("query.cursor",)) from None


def decode_int(cursor: str, kind: str) -> int:
    """The one integer in a cursor of ``kind`` (a tree size, an event id)."""
    (value,) = decode(cursor, kind, [int])
    assert isinstance(value, int)
    return value


def _typed(value: object, kind: type) -> Key:
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError(value)
        return value
    if isinstance(value, str):
        if kind is str:
            return value
        if kind is uuid.UUID:
            return uuid.UUID(value)
        if kind is dt.datetime:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError(value)
            return moment
    raise ValueError(value)
