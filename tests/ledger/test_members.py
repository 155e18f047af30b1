"""Members, client credentials and users, through the services on a real database."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role, Scope
from ledger.access.secrets import SecretHasher
from ledger.context import Operation
from ledger.errors import Conflict, InvalidClient, InvalidCredentials, InvalidInput, NotFound
from ledger.members import service as members
from ledger.members.models import Client, MemberStatus, User
from ledger.members.service import UserView
from ledger.runtime import Runtime
from tests.factories import make_credential, make_member, make_user, op


async def sign_in(
    session: AsyncSession, hasher: SecretHasher, *, username: str, password: str
) -> UserView:
    """The three steps of the sign-in route: read, check with nothing held, record."""
    credential = await members.find_user_credential(session, username)
    await session.rollback()
    signed_in = await members.check_user_password(hasher, credential, password)
    await members.record_sign_in(session, Operation.system(signed_in.user.created_at), signed_in)
    await session.commit()
    return signed_in.user


async def test_member_names_are_unique(session: AsyncSession, runtime: Runtime) -> None:
    await make_member(session, clock=runtime.clock, name="acme")
    with pytest.raises(Conflict):
        await members.create_member(session, op(runtime), name="acme")


@pytest.mark.parametrize("name", ["", "Acme", "acme shop", "-acme", "acme-", "a" * 65, "acmé"])
async def test_bad_member_names_are_refused(
    session: AsyncSession, runtime: Runtime, name: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        await members.create_member(session, op(runtime), name=name)
    assert info.value.fields == ("name",)


async def test_a_member_has_a_display_name_in_any_script(
    session: AsyncSession, runtime: Runtime
) -> None:
    jd = await members.create_member(session, op(runtime), name="jd", display_name=" 京东 ")
    assert (jd.name, jd.display_name) == ("jd", "京东")  # trimmed, kept as written
    plain = await members.create_member(session, op(runtime), name="acme")
    assert plain.display_name == "acme"  # the short name when none is given
    await session.commit()
    assert {m.display_name for m in await members.list_members(session)} == {"京东", "acme"}


@pytest.mark.parametrize("shown", ["", "   ", "京东\n商城", "a\x00b", "名" * 101])
async def test_bad_display_names_are_refused(
    session: AsyncSession, runtime: Runtime, shown: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        await members.create_member(session, op(runtime), name="jd", display_name=shown)
    assert info.value.fields == ("display_name",)


async def test_client_secrets_are_stored_only_as_argon2id_hashes(
    session: AsyncSession, runtime: Runtime
) -> None:
    credential = await make_credential(session, runtime)
    stored = await session.scalar(
        sa.select(Client.secret_hash).where(Client.client_id == credential.client_id)
    )
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert credential.secret not in stored
    assert credential.secret.startswith("lsk_")


async def test_a_suspended_member_gets_no_new_credentials(
    session: AsyncSession, runtime: Runtime
) -> None:
    member = await make_member(session, clock=runtime.clock)
    await members.set_member_status(session, op(runtime), member.id, MemberStatus.SUSPENDED)
    with pytest.raises(Conflict) as info:
        await members.issue_client(
            session, runtime.hasher, op(runtime), member_id=member.id, scopes=frozenset(Scope)
        )
    assert info.value.current_state == "suspended"


async def test_a_credential_needs_a_scope_and_a_known_member(
    session: AsyncSession, runtime: Runtime
) -> None:
    member = await make_member(session, clock=runtime.clock)
    with pytest.raises(InvalidInput):
        await members.issue_client(
            session, runtime.hasher, op(runtime), member_id=member.id, scopes=frozenset()
        )
    with pytest.raises(NotFound):
        await members.issue_client(
            session, runtime.hasher, op(runtime), member_id=uuid.uuid4(), scopes=frozenset(Scope)
        )


async def test_a_member_can_hold_several_credentials_and_revoke_one(
    session: AsyncSession, runtime: Runtime
) -> None:
    first = await make_credential(session, runtime)
    second = await make_credential(session, runtime, member=first.member)
    await members.revoke_client(session, op(runtime), first.client_id)
    await session.commit()
    listed = {
        c.client_id: c for c in await members.list_clients(session, member_id=first.member.id)
    }
    assert set(listed) == {first.client_id, second.client_id}
    assert listed[first.client_id].revoked_at is not None
    assert listed[second.client_id].revoked_at is None
    with pytest.raises(InvalidClient):
        await members.check_client_secret(
            runtime.hasher,
            await members.find_client_credential(session, first.client_id),
            first.secret,
        )
    ok = await members.check_client_secret(
        runtime.hasher,
        await members.find_client_credential(session, second.client_id),
        second.secret,
    )
    assert ok.member_id == first.member.id


async def test_user_passwords_are_argon2id_and_checked(
    session: AsyncSession, runtime: Runtime
) -> None:
    user = await make_user(session, runtime, username="olga", role=Role.OPERATOR)
    stored = await session.scalar(sa.select(User.password_hash).where(User.id == user.id))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    ok = await sign_in(
        session, runtime.hasher, username="olga", password="correct horse battery staple"
    )
    assert ok.role is Role.OPERATOR
    with pytest.raises(InvalidCredentials):
        await sign_in(session, runtime.hasher, username="olga", password="wrong password!")
    with pytest.raises(InvalidCredentials):
        await sign_in(session, runtime.hasher, username="nobody", password="whatever12345")


async def test_passwords_are_rehashed_at_login_when_parameters_are_raised(
    session: AsyncSession, runtime: Runtime
) -> None:
    await make_user(session, runtime, username="audrey")
    before = await session.scalar(sa.select(User.password_hash).where(User.username == "audrey"))
    assert before is not None
    assert "t=1" in before

    stronger = SecretHasher(time_cost=2, memory_cost_kib=128, parallelism=1)
    await sign_in(session, stronger, username="audrey", password="correct horse battery staple")
    await session.commit()
    after = await session.scalar(sa.select(User.password_hash).where(User.username == "audrey"))
    assert after is not None
    assert after != before
    assert "m=128,t=2,p=1" in after
    assert not stronger.needs_rehash(after)
    # The new hash still checks out.
    await sign_in(session, stronger, username="audrey", password="correct horse battery staple")


async def test_disabled_users_cannot_sign_in(session: AsyncSession, runtime: Runtime) -> None:
    await make_user(session, runtime, username="gone")
    await members.disable_user(session, op(runtime), "gone")
    with pytest.raises(InvalidCredentials, match="disabled"):
        await sign_in(
            session, runtime.hasher, username="gone", password="correct horse battery staple"
        )


@pytest.mark.parametrize(
    ("username", "password"),
    [("ok-user", "short"), ("No Spaces", "long enough password"), ("x", "long enough password")],
)
async def test_weak_passwords_and_bad_usernames_are_refused(
    session: AsyncSession, runtime: Runtime, username: str, password: str
) -> None:
    with pytest.raises(InvalidInput):
        await members.create_user(
            session,
            runtime.hasher,
            op(runtime),
            username=username,
            role=Role.AUDITOR,
            password=password,
        )


async def test_usernames_are_unique(session: AsyncSession, runtime: Runtime) -> None:
    await make_user(session, runtime, username="dup")
    with pytest.raises(Conflict):
        await make_user(session, runtime, username="dup")
