"""Console passwords: the user changes their own; an operator resets someone else's.

A password someone else chose (an operator at creation or reset, ``ledger init
--demo``) is only good for setting one's own: until then the console shows nothing but
the change form, and ``/v1/auth/token`` refuses to issue a token. A change or a reset
ends the user's other console sessions, and is recorded.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.secrets import SecretHasher
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.console.models import ConsoleSession
from ledger.context import Operation
from ledger.errors import InvalidCredentials, InvalidInput, NotFound
from ledger.i18n import N_
from ledger.members.models import User
from ledger.members.service import UserView, check_password_strength, user_view

RESET_PASSWORD_BYTES = 18  # 24 URL-safe characters


def given_password() -> str:
    """A random password for someone else to use once (24 URL-safe characters)."""
    return secrets.token_urlsafe(RESET_PASSWORD_BYTES)


async def _set(
    session: AsyncSession,
    op: Operation,
    user: User,
    password_hash: str,
    *,
    given: bool,
    keep_session: str | None,
    tag: Tag,
) -> UserView:
    """Store the new hash, end the user's sessions (but ``keep_session``), record."""
    user.password_hash = password_hash
    user.must_change_password = given
    user.password_changed_at = op.now
    query = sa.update(ConsoleSession).where(
        ConsoleSession.user_id == user.id, ConsoleSession.ended_at.is_(None)
    )
    if keep_session is not None:
        query = query.where(ConsoleSession.token_hash != keep_session)
    await session.execute(query.values(ended_at=op.now, end_reason="password"))
    body = {"user_id": str(user.id), "username": user.username}
    await record(session, op.event(tag, body=body), now=op.now)
    await session.flush()
    return user_view(user)


async def change_password(
    session: AsyncSession,
    hasher: SecretHasher,
    op: Operation,
    *,
    user_id: object,
    current: str,
    new: str,
    keep_session: str | None = None,
) -> UserView:
    """The user sets their own password, proving the current one. Other sessions end."""
    user = await session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise NotFound("no such user")
    if not await hasher.verify(user.password_hash, current):
        raise InvalidCredentials(N_("the current password is wrong"))
    check_password_strength(new)
    if new == current:
        raise InvalidInput(
            N_("the new password must differ from the one you were given"),
            fields=("new_password",),
        )
    return await _set(
        session,
        op,
        user,
        await hasher.hash(new),
        given=False,
        keep_session=keep_session,
        tag=Tag.USER_PASSWORD_CHANGED,
    )


async def reset_password(
    session: AsyncSession, hasher: SecretHasher, op: Operation, *, username: str
) -> tuple[UserView, str]:
    """An operator gives a user a new password, shown once; the user must change it at
    their next sign-in, and every session they have ends now."""
    user = await session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound("no user with that username")
    password = given_password()
    view = await _set(
        session,
        op,
        user,
        await hasher.hash(password),
        given=True,
        keep_session=None,
        tag=Tag.USER_PASSWORD_RESET,
    )
    return view, password
