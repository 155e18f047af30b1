"""A second factor for console users: TOTP codes (RFC 6238) and one-time recovery codes.

Setting up: the console shows a new secret (as a QR code an authenticator app scans,
and as text); it is kept sealed as *pending* until the user types a code it produced,
which proves the app holds it. Then it is the user's secret, and ten recovery codes are
shown once. Each recovery code stands in for an authenticator code once.

Signing in: the password first, then the code. A code is accepted for the current
30-second step or one step either side (clock drift, RFC 6238 §5.2), and never twice:
the step of the last accepted code is kept, and a code for that step or an earlier one
is refused, with a conditional update so that two sign-ins racing on one code cannot
both win. Wrong codes count against the account like wrong passwords
(ledger/access/sign_in_guard.py), so six digits cannot be guessed online.

Which roles must have a second factor is a setting (``LEDGER_SECOND_FACTOR_ROLES``,
operators by default): a user of such a role who has none yet can do nothing in the
console but set one up, and gets no API token. Every change is recorded in the audit
log; an operator can remove a user's second factor (a lost phone and lost codes), after
which the user sets it up again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

import pyotp
import segno
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.access.secrets import SecretHasher
from ledger.audit.events import JsonValue
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.console.models import ConsoleSession
from ledger.context import Operation
from ledger.errors import Conflict, InvalidCredentials, InvalidInput, NotFound
from ledger.i18n import N_
from ledger.members.models import RecoveryCode, User
from ledger.members.sealing import SealingKey, UnsealError
from ledger.members.service import UserView, user_view

ISSUER = "Refund ledger"  # how authenticator apps label the account
DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1  # accept the step before and after the current one
SECRET_CHARACTERS = 32  # base32: 160 bits, RFC 4226 §4's recommended length
RECOVERY_CODES = 10
# A recovery code is 16 base32 characters in four groups, e.g. ``K7QF-2M4X-PA9R-ZC3D``
# (80 bits): the first group is its public lookup, the other 60 bits its secret.
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
LOOKUP_CHARACTERS = 4
RECOVERY_CHARACTERS = 16
_SIX_DIGITS = re.compile(r"^[0-9]{6}$")
# Base32 has no 0, 1 or 8: someone typing a recovery code meant O, I or B.
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


class Via:
    """How the second step of a sign-in was passed (in the sign-in event's body)."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A secret being set up: what the authenticator app needs, as text and as QR."""

    secret: str  # base32, grouped in fours for typing
    uri: str  # otpauth://totp/…
    qr_svg: str  # an inline <svg> of the URI

    @property
    def grouped_secret(self) -> str:
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


@dataclass(frozen=True, slots=True)
class SecondFactorState:
    enabled: bool
    pending: bool
    recovery_codes_left: int


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def _enrolment(secret: str, username: str) -> Enrolment:
    uri = _totp(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=4, border=2, dark="#1a1a1a", light="#ffffff", omitsize=True)
    return Enrolment(secret=secret, uri=uri, qr_svg=svg)


def normalized_code(code: str) -> str:
    """What the user typed, without spaces, hyphens or case."""
    return re.sub(r"[\s\-]", "", code).upper()


def matching_step(secret: str, code: str, *, now: dt.datetime) -> int | None:
    """The time step whose code ``code`` is (the current one or one either side)."""
    if not _SIX_DIGITS.match(code):
        return None
    totp = _totp(secret)
    current = totp.timecode(now)
    found = None
    for step in range(max(0, current - DRIFT_STEPS), current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step  # no early exit: the time taken says nothing of which step
    return found


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise NotFound("no such user")
    return user


async def state(session: AsyncSession, user_id: uuid.UUID) -> SecondFactorState:
    user = await _user(session, user_id)
    left = await session.scalar(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return SecondFactorState(
        enabled=user.totp_enabled_at is not None,
        pending=user.totp_pending_secret is not None,
        recovery_codes_left=int(left or 0),
    )


async def enrolment(
    session: AsyncSession, key: SealingKey, user_id: uuid.UUID, *, fresh: bool = False
) -> Enrolment:
    """The secret being set up: the pending one if there is one (so that reloading the
    page shows the same QR code) and not ``fresh``, else a new one, kept pending."""
    user = await _user(session, user_id)
    if user.totp_pending_secret is not None and not fresh:
        try:
            secret = key.open(user.id, user.totp_pending_secret).decode("ascii")
            return _enrolment(secret, user.username)
        except UnsealError:
            pass  # sealed under a key since replaced: start again
    secret = pyotp.random_base32(length=SECRET_CHARACTERS)
    user.totp_pending_secret = key.seal(user.id, secret.encode("ascii"))
    await session.flush()
    return _enrolment(secret, user.username)


async def forget_pending(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Drop the secret being set up; the one in use (if any) stays."""
    user = await _user(session, user_id)
    user.totp_pending_secret = None
    await session.flush()


def _new_recovery_codes() -> list[str]:
    codes: list[str] = []
    lookups: set[str] = set()
    while len(codes) < RECOVERY_CODES:
        raw = "".join(secrets.choice(_BASE32) for _ in range(RECOVERY_CHARACTERS))
        if raw[:LOOKUP_CHARACTERS] in lookups:
            continue
        lookups.add(raw[:LOOKUP_CHARACTERS])
        codes.append(raw)
    return codes


def formatted(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


async def _replace_codes(
    session: AsyncSession, hasher: SecretHasher, user: User, now: dt.datetime
) -> list[str]:
    await session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = _new_recovery_codes()
    for code in codes:
        session.add(
            RecoveryCode(
                user_id=user.id,
                lookup=code[:LOOKUP_CHARACTERS],
                code_hash=await hasher.hash(code[LOOKUP_CHARACTERS:]),
                created_at=now,
            )
        )
    await session.flush()
    return [formatted(code) for code in codes]


async def confirm_enrolment(
    session: AsyncSession,
    hasher: SecretHasher,
    key: SealingKey,
    op: Operation,
    *,
    user_id: uuid.UUID,
    code: str,
) -> list[str]:
    """Make the pending secret the user's, on a code it produced; returns the new
    recovery codes, to be shown once."""
    user = await _user(session, user_id)
    if user.totp_pending_secret is None:
        raise Conflict(N_("there is no second factor being set up: start again"))
    try:
        secret = key.open(user.id, user.totp_pending_secret).decode("ascii")
    except UnsealError:
        user.totp_pending_secret = None
        raise Conflict(N_("there is no second factor being set up: start again")) from None
    step = matching_step(secret, normalized_code(code), now=op.now)
    if step is None:
        raise InvalidCredentials(N_("that code is not right: type the 6 digits the app shows now"))
    replacing = user.totp_enabled_at is not None
    user.totp_secret = user.totp_pending_secret
    user.totp_pending_secret = None
    user.totp_enabled_at = op.now
    user.totp_last_step = step
    codes = await _replace_codes(session, hasher, user, op.now)
    body: dict[str, JsonValue] = {
        "user_id": str(user.id),
        "username": user.username,
        "replaced": replacing,
    }
    await record(session, op.event(Tag.USER_SECOND_FACTOR_ENABLED, body=body), now=op.now)
    return codes


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """A code that was right, and what it used up."""

    via: str  # Via.TOTP or Via.RECOVERY_CODE
    step: int | None = None  # the TOTP step
    recovery_code_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class StoredCode:
    """What checking one typed code needs from the database, read in one go so that
    the check itself (``verify_code``) runs with no session or transaction held."""

    user_id: uuid.UUID
    typed: str  # normalized
    totp_secret: str  # sealed
    totp_last_step: int | None
    recovery_hash: str | None = None  # the unused recovery code the typed one may be
    recovery_id: uuid.UUID | None = None


async def stored_code(session: AsyncSession, *, user_id: uuid.UUID, code: str) -> StoredCode:
    """The user's second-factor state for ``code``: a read (``Conflict`` if the account
    has none). For a recovery code, the one unused code with its lookup prefix."""
    user = await _user(session, user_id)
    if user.totp_secret is None:
        raise Conflict(N_("this account has no second factor"))
    typed = normalized_code(code)
    if not _SIX_DIGITS.match(typed):
        typed = typed.translate(_LOOKALIKES)
    stored = StoredCode(user.id, typed, user.totp_secret, user.totp_last_step)
    if _SIX_DIGITS.match(typed) or not _recovery_shaped(typed):
        return stored
    row = await session.scalar(
        sa.select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.lookup == typed[:LOOKUP_CHARACTERS],
            RecoveryCode.used_at.is_(None),
        )
    )
    if row is None:
        return stored
    return dataclasses.replace(stored, recovery_hash=row.code_hash, recovery_id=row.id)


def _recovery_shaped(typed: str) -> bool:
    return len(typed) == RECOVERY_CHARACTERS and not set(typed) - set(_BASE32)


async def verify_code(
    hasher: SecretHasher, key: SealingKey, stored: StoredCode, *, now: dt.datetime
) -> CodeCheck:
    """Whether the typed code is right, without using it up (``spend`` does): an
    authenticator code of the current step or one either side, newer than the last one
    used; or an unused recovery code (one argon2 check, a decoy when none matched)."""
    typed = stored.typed
    wrong = InvalidCredentials(N_("wrong one-time code"))
    if _SIX_DIGITS.match(typed):
        try:
            secret = key.open(stored.user_id, stored.totp_secret).decode("ascii")
        except UnsealError:
            raise wrong from None
        step = matching_step(secret, typed, now=now)
        last = stored.totp_last_step
        if step is None or (last is not None and step <= last):
            raise wrong
        return CodeCheck(via=Via.TOTP, step=step)
    if not _recovery_shaped(typed):
        raise wrong
    if stored.recovery_hash is None:
        await hasher.verify_decoy(typed[LOOKUP_CHARACTERS:])
        raise wrong
    if not await hasher.verify(stored.recovery_hash, typed[LOOKUP_CHARACTERS:]):
        raise wrong
    return CodeCheck(via=Via.RECOVERY_CODE, recovery_code_id=stored.recovery_id)


async def spend(session: AsyncSession, op: Operation, user_id: uuid.UUID, check: CodeCheck) -> None:
    """Use the code up, in the sign-in's transaction: a TOTP step is kept as the last
    accepted one, a recovery code is marked used. If another sign-in spent it first,
    the code is refused (a conditional update: one of two racing sign-ins wins)."""
    wrong = InvalidCredentials(N_("wrong one-time code"))
    if check.via == Via.TOTP:
        assert check.step is not None
        done = await session.execute(
            sa.update(User)
            .where(
                User.id == user_id,
                sa.or_(User.totp_last_step.is_(None), User.totp_last_step < check.step),
            )
            .values(totp_last_step=check.step)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise wrong
        return
    done = await session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.id == check.recovery_code_id, RecoveryCode.used_at.is_(None))
        .values(used_at=op.now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise wrong
    left = await session.scalar(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    body: dict[str, JsonValue] = {"user_id": str(user_id), "recovery_codes_left": int(left or 0)}
    await record(session, op.event(Tag.USER_RECOVERY_CODE_USED, body=body), now=op.now)


async def replace_recovery_codes(
    session: AsyncSession, hasher: SecretHasher, op: Operation, *, user_id: uuid.UUID
) -> list[str]:
    """New recovery codes for a user with a second factor (who has just given a code);
    the old ones stop working."""
    user = await _user(session, user_id)
    if user.totp_enabled_at is None:
        raise Conflict(N_("this account has no second factor"))
    codes = await _replace_codes(session, hasher, user, op.now)
    body = {"user_id": str(user.id), "username": user.username}
    await record(session, op.event(Tag.USER_RECOVERY_CODES_REPLACED, body=body), now=op.now)
    return codes


async def _remove(session: AsyncSession, user: User) -> None:
    user.totp_secret = None
    user.totp_pending_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


async def turn_off(
    session: AsyncSession, op: Operation, *, user_id: uuid.UUID, roles: frozenset[Role]
) -> None:
    """The user turns off their own second factor (having just given a code), unless
    their role requires one."""
    user = await _user(session, user_id)
    if user.role in roles:
        raise InvalidInput(
            N_("your role requires a second factor: it cannot be turned off"),
            fields=("second_factor",),
        )
    if user.totp_enabled_at is None:
        return
    await _remove(session, user)
    body = {"user_id": str(user.id), "username": user.username}
    await record(session, op.event(Tag.USER_SECOND_FACTOR_DISABLED, body=body), now=op.now)
    await session.flush()


async def reset(session: AsyncSession, op: Operation, *, username: str) -> UserView:
    """An operator removes a user's second factor (a lost phone and lost codes); the
    user's console sessions end, and they set one up again at their next sign-in."""
    user = await session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound("no user with that username")
    await _remove(session, user)
    await session.execute(
        sa.update(ConsoleSession)
        .where(ConsoleSession.user_id == user.id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=op.now, end_reason="second_factor")
    )
    body = {"user_id": str(user.id), "username": user.username}
    await record(session, op.event(Tag.USER_SECOND_FACTOR_RESET, body=body), now=op.now)
    await session.flush()
    return user_view(user)
