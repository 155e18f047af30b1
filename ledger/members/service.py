"""Onboarding members, issuing and revoking their credentials, and human users.

Every function takes the caller's session and never commits: the request or the CLI
command that called it owns the transaction. Every change records its audit event in
that same transaction, so the two commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role, Scope, format_scopes
from ledger.access.secrets import SecretHasher, generate_client_id, generate_client_secret
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.errors import (
    Conflict,
    InvalidClient,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
)
from ledger.i18n import N_
from ledger.members.models import Client, Member, MemberStatus, User

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
DISPLAY_NAME_MAX = 100
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")
MIN_PASSWORD_LENGTH = 12
MAX_SECRET_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class MemberView:
    id: uuid.UUID
    name: str  # the short ASCII name, for the CLI and the API
    status: MemberStatus
    created_at: dt.datetime
    status_changed_at: dt.datetime
    display_name: str  # in any script, for people: the console, exports, disclosures


@dataclass(frozen=True, slots=True)
class ClientView:
    client_id: str
    member_id: uuid.UUID
    label: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """A new credential; the secret exists here and nowhere else, and is shown once."""

    client: ClientView
    client_secret: str


@dataclass(frozen=True, slots=True)
class UserView:
    id: uuid.UUID
    username: str
    role: Role
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    must_change_password: bool = False  # someone else chose it: change it to go on
    second_factor: bool = False  # has a TOTP secret (ledger/members/second_factor.py)


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    client_id: str
    member_id: uuid.UUID
    scopes: frozenset[Scope]
    rehashed_secret: str | None = None


def _member_view(m: Member) -> MemberView:
    return MemberView(
        m.id, m.name, m.status, m.created_at, m.status_changed_at, display_name=m.display_name
    )


def _client_view(c: Client) -> ClientView:
    return ClientView(
        client_id=c.client_id,
        member_id=c.member_id,
        label=c.label,
        scopes=tuple(c.scopes.split()),
        created_at=c.created_at,
        revoked_at=c.revoked_at,
        last_used_at=c.last_used_at,
    )


def user_view(u: User) -> UserView:
    return UserView(
        u.id,
        u.username,
        u.role,
        u.created_at,
        u.disabled_at,
        must_change_password=u.must_change_password,
        second_factor=u.totp_enabled_at is not None,
    )


# --- members ----------------------------------------------------------------------


def check_display_name(value: str) -> str:
    """A display name as people write it, in any script: 1-100 characters once trimmed,
    no control characters or line breaks."""
    shown = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(shown) <= DISPLAY_NAME_MAX or any(
        unicodedata.category(c).startswith("C") for c in shown
    ):
        raise InvalidInput(
            N_(
                "a display name is 1-100 characters, in any script, without control "
                "characters or line breaks"
            ),
            fields=("display_name",),
        )
    return shown


async def create_member(
    session: AsyncSession, op: Operation, *, name: str, display_name: str | None = None
) -> MemberView:
    """Onboard a member platform under a unique short name (``acme``, ``shop-east``)
    and a display name in any script (``京东``; the short name when none is given)."""
    if not _NAME.match(name):
        raise InvalidInput(
            N_("a member name is 1-64 lowercase letters, digits and inner hyphens"),
            fields=("name",),
        )
    shown = check_display_name(display_name if display_name is not None else name)
    existing = await session.scalar(sa.select(Member.id).where(Member.name == name))
    if existing is not None:
        raise Conflict(f"a member named {name!r} already exists")
    member = Member(
        name=name,
        display_name=shown,
        status=MemberStatus.ACTIVE,
        created_at=op.now,
        status_changed_at=op.now,
    )
    session.add(member)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a member named {name!r} already exists") from None
    await record(
        session,
        op.event(
            Tag.MEMBER_CREATED,
            body={"member_id": str(member.id), "name": name, "display_name": shown},
        ),
        now=op.now,
    )
    return _member_view(member)


async def list_members(session: AsyncSession) -> list[MemberView]:
    rows = await session.scalars(sa.select(Member).order_by(Member.name))
    return [_member_view(m) for m in rows]


async def set_member_status(
    session: AsyncSession, op: Operation, member_id: uuid.UUID, status: MemberStatus
) -> MemberView:
    """Suspend or reinstate a member. Suspension refuses its tokens on the next request."""
    member = await _member(session, member_id)
    if member.status != status:
        member.status = status
        member.status_changed_at = op.now
        await session.flush()
        tag = Tag.MEMBER_SUSPENDED if status is MemberStatus.SUSPENDED else Tag.MEMBER_REINSTATED
        await record(session, op.event(tag, body={"member_id": str(member.id)}), now=op.now)
    return _member_view(member)


async def _member(session: AsyncSession, member_id: uuid.UUID) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound("no member with that id; `ledger members list` shows them")
    return member


# --- client credentials -------------------------------------------------------------


async def issue_client(
    session: AsyncSession,
    hasher: SecretHasher,
    op: Operation,
    *,
    member_id: uuid.UUID,
    scopes: frozenset[Scope],
    label: str = "",
) -> IssuedClient:
    """Issue a client credential. The secret is returned once and stored only as a hash."""
    member = await _member(session, member_id)
    if member.status is not MemberStatus.ACTIVE:
        raise Conflict(
            "the member is suspended; reinstate it before issuing credentials",
            current_state=member.status.value,
        )
    if not scopes:
        raise InvalidInput("a client credential needs at least one scope", fields=("scope",))
    if len(label) > 100:
        raise InvalidInput("a label is at most 100 characters", fields=("label",))
    secret = generate_client_secret()
    client = Client(
        client_id=generate_client_id(),
        member_id=member.id,
        label=label,
        scopes=format_scopes(scopes),
        secret_hash=await hasher.hash(secret),
        created_at=op.now,
    )
    session.add(client)
    await session.flush()
    body = {"member_id": str(member.id), "client_id": client.client_id, "scope": client.scopes}
    await record(session, op.event(Tag.CLIENT_ISSUED, body=body), now=op.now)
    return IssuedClient(client=_client_view(client), client_secret=secret)


async def list_clients(
    session: AsyncSession, *, member_id: uuid.UUID | None = None
) -> list[ClientView]:
    query = sa.select(Client).order_by(Client.created_at, Client.client_id)
    if member_id is not None:
        query = query.where(Client.member_id == member_id)
    return [_client_view(c) for c in await session.scalars(query)]


async def describe_client(session: AsyncSession, client_id: str) -> tuple[MemberView, ClientView]:
    """A client credential and its member, in one read."""
    row = (
        await session.execute(
            sa.select(Member, Client)
            .join(Client, Client.member_id == Member.id)
            .where(Client.client_id == client_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no client credential with that client_id")
    return _member_view(row.Member), _client_view(row.Client)


async def revoke_client(session: AsyncSession, op: Operation, client_id: str) -> ClientView:
    """Revoke a credential; tokens already issued to it are refused from the next request."""
    client = await session.scalar(sa.select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound("no client credential with that client_id")
    if client.revoked_at is None:
        client.revoked_at = op.now
        await session.flush()
        body = {"member_id": str(client.member_id), "client_id": client.client_id}
        await record(session, op.event(Tag.CLIENT_REVOKED, body=body), now=op.now)
    return _client_view(client)


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """What authenticating a client needs: its secret hash and whether it may get tokens."""

    client_id: str
    member_id: uuid.UUID
    scopes: str
    secret_hash: str
    revoked: bool
    member_status: MemberStatus


async def find_client_credential(session: AsyncSession, client_id: str) -> ClientCredential | None:
    """Read a client credential for authentication (a read; no lock is taken)."""
    if len(client_id) > 64:
        return None
    row = (
        await session.execute(
            sa.select(
                Client.client_id,
                Client.member_id,
                Client.scopes,
                Client.secret_hash,
                Client.revoked_at,
                Member.status,
            )
            .join(Member, Member.id == Client.member_id)
            .where(Client.client_id == client_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return ClientCredential(
        client_id=row.client_id,
        member_id=row.member_id,
        scopes=row.scopes,
        secret_hash=row.secret_hash,
        revoked=row.revoked_at is not None,
        member_status=row.status,
    )


async def check_client_secret(
    hasher: SecretHasher, credential: ClientCredential | None, client_secret: str
) -> AuthenticatedClient:
    """Check a client's secret (RFC 6749 §2.3.1) and that it may still get tokens.

    Runs argon2id, so call it with no transaction open. An unknown client costs the
    same time as a wrong secret, and gets the same answer.
    """
    if credential is None or len(client_secret) > MAX_SECRET_LENGTH:
        await hasher.verify_decoy(client_secret[:MAX_SECRET_LENGTH])
        raise InvalidClient("client authentication failed")
    if not await hasher.verify(credential.secret_hash, client_secret):
        raise InvalidClient("client authentication failed")
    if credential.revoked:
        raise InvalidClient("this client credential was revoked; use another one")
    if credential.member_status is not MemberStatus.ACTIVE:
        raise InvalidClient("the member is suspended; contact the ledger's operators")
    rehashed = None
    if hasher.needs_rehash(credential.secret_hash):
        rehashed = await hasher.hash(client_secret)
    return AuthenticatedClient(
        client_id=credential.client_id,
        member_id=credential.member_id,
        scopes=frozenset(Scope(s) for s in credential.scopes.split()),
        rehashed_secret=rehashed,
    )


async def record_token_issued(
    session: AsyncSession,
    op: Operation,
    client: AuthenticatedClient,
    *,
    scope: str,
    token_id: str,
) -> None:
    """Note the credential's use (with a stronger hash if one was made) and audit it."""
    values: dict[str, object] = {"last_used_at": op.now}
    if client.rehashed_secret is not None:
        values["secret_hash"] = client.rehashed_secret
    await session.execute(
        sa.update(Client).where(Client.client_id == client.client_id).values(**values)
    )
    await record(
        session, op.event(Tag.TOKEN_ISSUED, body={"scope": scope, "jti": token_id}), now=op.now
    )


_CLIENT_STATE = (
    sa.select(Client.member_id, Client.revoked_at, Member.status)
    .join(Member, Member.id == Client.member_id)
    .where(Client.client_id == sa.bindparam("client_id"))
)


class ClientState(StrEnum):
    ACTIVE = "active"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    SUSPENDED = "suspended"


CLIENT_REFUSALS = {
    ClientState.UNKNOWN: "the access token's client is unknown",
    ClientState.REVOKED: "the access token's client credential was revoked",
    ClientState.SUSPENDED: "the member is suspended",
}


async def client_state(
    session: AsyncSession, *, client_id: str, member_id: uuid.UUID
) -> ClientState:
    """Whether a token's client may still act: revocation and suspension apply at once."""
    row = (await session.execute(_CLIENT_STATE, {"client_id": client_id})).one_or_none()
    if row is None or row.member_id != member_id:
        return ClientState.UNKNOWN
    if row.revoked_at is not None:
        return ClientState.REVOKED
    if row.status != MemberStatus.ACTIVE:
        return ClientState.SUSPENDED
    return ClientState.ACTIVE


# --- users --------------------------------------------------------------------------


def check_password_strength(password: str) -> None:
    # (The numbers are MIN_PASSWORD_LENGTH and MAX_SECRET_LENGTH, written out so that
    # the messages can be translated.)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(N_("a password needs at least 12 characters"), fields=("password",))
    if len(password) > MAX_SECRET_LENGTH:
        raise InvalidInput(N_("a password is at most 1024 characters"), fields=("password",))


async def create_user(
    session: AsyncSession,
    hasher: SecretHasher,
    op: Operation,
    *,
    username: str,
    role: Role,
    password: str,
    must_change_password: bool = True,
) -> UserView:
    """Create a console user (operator or auditor) with an argon2id password hash. The
    password was chosen by whoever creates the account, so by default the user must
    change it at first sign-in."""
    if not _USERNAME.match(username):
        raise InvalidInput(
            "a username is 3-64 lowercase letters, digits, dots, hyphens or underscores",
            fields=("username",),
        )
    check_password_strength(password)
    if await session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user named {username!r} already exists")
    user = User(
        username=username,
        role=role,
        password_hash=await hasher.hash(password),
        created_at=op.now,
        must_change_password=must_change_password,
    )
    session.add(user)
    await session.flush()
    body = {"user_id": str(user.id), "username": username, "role": role.value}
    await record(session, op.event(Tag.USER_CREATED, body=body), now=op.now)
    return user_view(user)


async def list_users(session: AsyncSession) -> list[UserView]:
    return [user_view(u) for u in await session.scalars(sa.select(User).order_by(User.username))]


async def disable_user(session: AsyncSession, op: Operation, username: str) -> UserView:
    user = await session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound("no user with that username")
    if user.disabled_at is None:
        user.disabled_at = op.now
        await session.flush()
        body = {"user_id": str(user.id), "username": username}
        await record(session, op.event(Tag.USER_DISABLED, body=body), now=op.now)
    return user_view(user)


@dataclass(frozen=True, slots=True)
class SignedInUser:
    user: UserView
    rehashed_password: str | None


async def find_user_credential(session: AsyncSession, username: str) -> tuple[UserView, str] | None:
    """A user and their password hash, for sign-in (a read)."""
    if len(username) > 64:
        return None
    user = await session.scalar(sa.select(User).where(User.username == username))
    return None if user is None else (user_view(user), user.password_hash)


async def check_user_password(
    hasher: SecretHasher, credential: tuple[UserView, str] | None, password: str
) -> SignedInUser:
    """Check a password with no transaction open; unknown users cost the same time."""
    if credential is None or len(password) > MAX_SECRET_LENGTH:
        await hasher.verify_decoy(password[:MAX_SECRET_LENGTH])
        raise InvalidCredentials(N_("wrong username or password"))
    user, stored = credential
    if not await hasher.verify(stored, password):
        raise InvalidCredentials(N_("wrong username or password"))
    if user.disabled_at is not None:
        raise InvalidCredentials(N_("this account is disabled"))
    rehashed = await hasher.hash(password) if hasher.needs_rehash(stored) else None
    return SignedInUser(user=user, rehashed_password=rehashed)


async def store_rehash(session: AsyncSession, signed_in: SignedInUser) -> None:
    """Keep the password's new hash, if the hash parameters changed since it was set."""
    if signed_in.rehashed_password is not None:
        await session.execute(
            sa.update(User)
            .where(User.id == signed_in.user.id)
            .values(password_hash=signed_in.rehashed_password)
        )


async def record_sign_in(
    session: AsyncSession, op: Operation, signed_in: SignedInUser, *, via: str | None = None
) -> None:
    """The sign-in, recorded; ``via``: the second factor passed (totp, recovery_code)."""
    await store_rehash(session, signed_in)
    body = {"user_id": str(signed_in.user.id), "role": signed_in.user.role.value}
    if via is not None:
        body["second_factor"] = via
    await record(session, op.event(Tag.USER_SIGNED_IN, body=body), now=op.now)


async def ensure_user_active(session: AsyncSession, user_id: uuid.UUID) -> UserView:
    """Refuse a token whose user was disabled since it was issued."""
    user = await session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidToken("the access token's user is unknown or disabled")
    return user_view(user)
