"""Server-side console sessions, with idle and absolute expiry.

A session is a 32-byte random token in an HttpOnly, SameSite=Strict cookie; the table
keeps its SHA-256, so a copy of the database opens no session. Each session has its own
CSRF token, which every form carries. A session ends at sign-out, after
``idle`` without a request, at ``absolute`` after sign-in whatever the activity, or
when its user is disabled; an ended session is kept (with why it ended) for the audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.console.models import ConsoleSession
from ledger.context import Operation
from ledger.members.models import User
from ledger.members.service import UserView, user_view

# Only write last_seen_at when it is this stale: a page view is then a read.
TOUCH_EVERY = dt.timedelta(seconds=60)
# A session opened with the password alone awaits the second factor this long at most.
AWAITING_LIFETIME = dt.timedelta(minutes=5)
SECOND_FACTOR = "second_factor"  # what such a session awaits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(minutes=15)
    absolute: dt.timedelta = dt.timedelta(hours=8)


@dataclass(frozen=True, slots=True)
class OpenSession:
    token: str  # for the cookie; never stored
    csrf_token: str
    user: UserView


@dataclass(frozen=True, slots=True)
class LiveSession:
    token_hash: str
    csrf_token: str
    user: UserView
    expires_at: dt.datetime
    awaiting: str | None = None  # SECOND_FACTOR: nothing is open but the code's page


async def open_session(
    session: AsyncSession,
    user: UserView,
    *,
    now: dt.datetime,
    policy: SessionPolicy,
    awaiting: str | None = None,
) -> OpenSession:
    """A new session; one that ``awaits`` the second factor lives a few minutes."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + (AWAITING_LIFETIME if awaiting else policy.absolute),
            awaiting=awaiting,
        )
    )
    await session.flush()
    return OpenSession(token=token, csrf_token=csrf, user=user)


@dataclass(frozen=True, slots=True)
class Ended:
    """Why a presented session is not live (None if it was never a session)."""

    reason: str | None
    user_id: uuid.UUID | None


async def load_session(
    session: AsyncSession, token: str, *, now: dt.datetime, policy: SessionPolicy
) -> LiveSession | Ended:
    """The live session for ``token``, touched; or why there is none (ending it if it
    has just expired, so the end is recorded once)."""
    row = await session.get(ConsoleSession, token_hash(token))
    if row is None:
        return Ended(reason=None, user_id=None)
    if row.ended_at is not None:
        return Ended(reason=row.end_reason, user_id=row.user_id)
    user = await session.get(User, row.user_id)
    reason = None
    if user is None or user.disabled_at is not None:
        reason = "disabled"
    elif now >= row.expires_at:
        reason = "absolute"
    elif now - row.last_seen_at >= policy.idle:
        reason = "idle"
    if reason is not None:
        row.ended_at, row.end_reason = now, reason
        await session.flush()
        return Ended(reason=reason, user_id=row.user_id)
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        await session.flush()
    assert user is not None
    return LiveSession(
        token_hash=row.token_hash,
        csrf_token=row.csrf_token,
        user=user_view(user),
        expires_at=min(row.expires_at, row.last_seen_at + policy.idle),
        awaiting=row.awaiting,
    )


async def complete_second_factor(
    session: AsyncSession, hashed: str, user: UserView, *, now: dt.datetime, policy: SessionPolicy
) -> OpenSession:
    """The code was right: the awaiting session ends and a full one opens, under a new
    token (a token seen before the second factor never grants more than it did)."""
    await session.execute(
        sa.update(ConsoleSession)
        .where(ConsoleSession.token_hash == hashed, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, end_reason="completed")
    )
    return await open_session(session, user, now=now, policy=policy)


async def end_session(session: AsyncSession, op: Operation, hashed: str) -> None:
    """Sign out: the session ends now, recorded in the same transaction."""
    await session.execute(
        sa.update(ConsoleSession)
        .where(ConsoleSession.token_hash == hashed, ConsoleSession.ended_at.is_(None))
        .values(ended_at=op.now, end_reason="signed_out")
    )
    await record(session, op.event(Tag.USER_SIGNED_OUT, body={"via": "console"}), now=op.now)
