"""The second factor: TOTP (RFC 6238, its published vectors) and one-time recovery
codes, in the console's sign-in, on the user's own pages, for operators removing it, and
at /v1/auth/token; required per role (operators, by default)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.console.models import ConsoleSession
from ledger.console.sessions import token_hash
from ledger.members import sealing, second_factor
from ledger.members.models import RecoveryCode, User
from ledger.runtime import Runtime
from tests.console.test_sessions import PASSWORD, hidden, sign_in, tags
from tests.factories import make_user


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """As shipped: operators must have a second factor, auditors may."""
    return settings.model_copy(update={"second_factor_roles": Settings().second_factor_roles})


@pytest.fixture
async def olga(session: AsyncSession, runtime: Runtime) -> str:
    return (await make_user(session, runtime, username="olga", role=Role.OPERATOR)).username


@pytest.fixture
async def audrey(session: AsyncSession, runtime: Runtime) -> str:
    return (await make_user(session, runtime, username="audrey", role=Role.AUDITOR)).username


def key_on(page: str) -> str:
    match = re.search(r'<code id="totp-key">([A-Z2-7 ]+)</code>', page)
    assert match is not None, "no key on the page"
    return match.group(1).replace(" ", "")


def code_at(key: str, clock: FrozenClock, steps: int = 0) -> str:
    return pyotp.TOTP(key).at(clock.now() + dt.timedelta(seconds=30 * steps))


async def post_form(
    client: httpx.AsyncClient, page_path: str, action: str, **fields: str
) -> httpx.Response:
    page = await client.get(page_path)
    data = {"csrf_token": hidden(page.text, "csrf_token"), **fields}
    return await client.post(action, data=data)


async def enrol(client: httpx.AsyncClient, clock: FrozenClock) -> tuple[str, list[str]]:
    """Set up a second factor for the signed-in user; the key and the recovery codes."""
    page = await client.get("/console/second-factor")
    key = key_on(page.text)
    done = await client.post(
        "/console/second-factor",
        data={"csrf_token": hidden(page.text, "csrf_token"), "next": "/console",
              "code": code_at(key, clock)},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})</code></li>", done.text)
    assert len(codes) == second_factor.RECOVERY_CODES
    return key, codes


async def sign_in_with_code(
    client: httpx.AsyncClient, username: str, code: str, next_path: str = "/console"
) -> httpx.Response:
    client.cookies.clear()
    client.cookies.set("ledger_locale", "en")
    first = await sign_in(client, username, next_path=next_path)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/console/sign-in/code?next=")
    return await post_form(
        client, first.headers["location"], "/console/sign-in/code", code=code, next=next_path
    )


# RFC 6238 Appendix B, SHA-1, with the last 6 of the 8 digits (the same truncation).
RFC6238_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")
RFC6238 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix", "code"), RFC6238)
def test_codes_are_rfc_6238s(unix: int, code: str) -> None:
    at = dt.datetime.fromtimestamp(unix, dt.UTC)
    assert pyotp.TOTP(RFC6238_SECRET, digits=8).at(at) == code
    step = second_factor.matching_step(RFC6238_SECRET, code[-6:], now=at)
    assert step == unix // 30
    # One step either side is drift; two steps is not.
    for off, accepted in ((30, True), (-30, True), (61, False), (-61, False)):
        if unix + off < 0:
            continue  # before the epoch: no step to drift to
        later = at + dt.timedelta(seconds=off)
        found = second_factor.matching_step(RFC6238_SECRET, code[-6:], now=later)
        assert (found == step) is accepted
    assert second_factor.matching_step(RFC6238_SECRET, "12345", now=at) is None


def test_a_sealed_secret_opens_only_for_its_user_and_key(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    directory = tmp_path / "keys" / sealing.KEY_DIR
    assert sealing.ensure_key(directory, now=now) is True
    assert sealing.ensure_key(directory, now=now) is False  # kept, never replaced
    assert (directory / sealing.KEY_FILE).stat().st_mode & 0o777 == 0o600
    key = sealing.load_key(directory)
    owner, other = uuid.uuid4(), uuid.uuid4()
    sealed = key.seal(owner, b"JBSWY3DPEHPK3PXP")
    assert b"JBSWY3DPEHPK3PXP" not in sealed.encode()
    assert key.open(owner, sealed) == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(sealing.UnsealError):
        key.open(other, sealed)  # copied onto another user's row
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(sealing.UnsealError):
        key.open(owner, tampered)
    sealing.ensure_key(tmp_path / "other", now=now)
    with pytest.raises(sealing.UnsealError):
        sealing.load_key(tmp_path / "other").open(owner, sealed)


async def test_an_operator_must_set_one_up_before_anything_else(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, olga: str
) -> None:
    assert (await sign_in(client, olga, next_path="/console/members")).status_code == 303
    for path in ("/console/members", "/console", "/console/users"):
        page = await client.get(path)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/second-factor?next=")
    page = await client.get("/console/second-factor")
    assert "Your role requires a second factor" in page.text
    assert "<svg" in page.text  # the QR code, drawn on the server
    key = key_on(page.text)
    assert len(key) == second_factor.SECRET_CHARACTERS
    assert key_on((await client.get("/console/second-factor")).text) == key  # same on reload

    wrong = await client.post(
        "/console/second-factor",
        data={"csrf_token": hidden(page.text, "csrf_token"), "code": "000000"},
    )
    assert wrong.status_code == 400
    assert "that code is not right" in wrong.text
    assert (await client.get("/console/members")).status_code == 303  # still nothing else

    _, codes = await enrol(client, clock)
    assert (await client.get("/console/members")).status_code == 200
    assert (await tags(runtime)).count("member:user:second_factor_enabled") == 1
    async with runtime.read_sessionmaker() as read:
        user = await read.scalar(sa.select(User).where(User.username == olga))
        assert user is not None
        assert user.totp_secret is not None
        assert key not in user.totp_secret  # sealed, never the key itself
        hashes = list(await read.scalars(sa.select(RecoveryCode.code_hash)))
    assert len(hashes) == 10
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(code.replace("-", "")[4:] in "".join(hashes) for code in codes)


async def test_signing_in_takes_the_code_and_no_code_works_twice(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, audrey: str
) -> None:
    assert (await sign_in(client, audrey)).status_code == 303
    key, _ = await enrol(client, clock)
    clock.advance(dt.timedelta(seconds=30))

    client.cookies.clear()
    client.cookies.set("ledger_locale", "en")
    first = await sign_in(client, audrey, next_path="/console/audit")
    assert first.headers["location"] == "/console/sign-in/code?next=/console/audit"
    awaiting = client.cookies["ledger_console"]
    # The password alone opens nothing: every page leads to the code's.
    for path in ("/console/audit", "/console", "/console/account"):
        page = await client.get(path)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/sign-in/code")
    code_page = await client.get("/console/sign-in/code", params={"next": "/console/audit"})
    assert "Your one-time code" in code_page.text
    assert 'href="/console/audit"' not in code_page.text  # no navigation yet
    wrong = await post_form(client, "/console/sign-in/code", "/console/sign-in/code", code="123456")
    assert wrong.status_code == 401
    assert "wrong one-time code" in wrong.text

    code = code_at(key, clock)
    done = await post_form(
        client, "/console/sign-in/code", "/console/sign-in/code", code=code, next="/console/audit"
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/console/audit"
    assert client.cookies["ledger_console"] != awaiting  # a new token for the full session
    assert (await client.get("/console/audit")).status_code == 200
    async with runtime.read_sessionmaker() as read:
        ended = await read.get(ConsoleSession, token_hash(awaiting))
        assert ended is not None
        assert ended.end_reason == "completed"
        signed_in = (
            await read.scalars(
                sa.select(AuditEventRow)
                .where(AuditEventRow.tag == "auth:user:signed_in")
                .order_by(AuditEventRow.id)
            )
        ).all()
    assert json.loads(signed_in[-1].body)["second_factor"] == "totp"

    # The same code again (a replay, within its 90 s of validity) is refused.
    again = await sign_in_with_code(client, audrey, code)
    assert again.status_code == 401
    refused = await tags(runtime)
    assert refused.count("auth:user:refused") == 2  # the wrong code and the replay


async def test_a_recovery_code_works_once(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, audrey: str
) -> None:
    assert (await sign_in(client, audrey)).status_code == 303
    _, codes = await enrol(client, clock)
    # As someone might type it: lower case, spaces, a zero for an O.
    typed = codes[3].lower().replace("-", " ").replace("o", "0")
    first = await sign_in_with_code(client, audrey, typed)
    assert first.status_code == 303
    account = await client.get("/console/account")
    assert "9 recovery codes left" in account.text
    assert (await sign_in_with_code(client, audrey, codes[3])).status_code == 401
    assert (await sign_in_with_code(client, audrey, "AAAA-BBBB-CCCC-DDDD")).status_code == 401
    assert (await tags(runtime)).count("auth:user:recovery_code_used") == 1


async def test_wrong_codes_lock_the_account_like_wrong_passwords(
    client: httpx.AsyncClient, clock: FrozenClock, audrey: str
) -> None:
    assert (await sign_in(client, audrey)).status_code == 303
    key, _ = await enrol(client, clock)
    clock.advance(dt.timedelta(seconds=30))
    first = await sign_in(client, audrey)
    assert first.status_code == 303
    for _ in range(5):  # sign_in_failures_per_account = 5/15minutes
        page = await post_form(client, "/console/sign-in/code", "/console/sign-in/code", code="1")
        assert page.status_code == 401
    locked = await post_form(
        client, "/console/sign-in/code", "/console/sign-in/code", code=code_at(key, clock)
    )
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0


async def test_a_user_manages_their_own_and_an_operator_removes_it(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FrozenClock,
    session: AsyncSession,
    audrey: str,
    olga: str,
) -> None:
    # Audrey (an auditor: not required) turns hers on, makes new codes, moves phones.
    assert (await sign_in(client, audrey)).status_code == 303
    key, old_codes = await enrol(client, clock)
    manage = await client.get("/console/second-factor")
    assert "Turn off the second factor" in manage.text
    clock.advance(dt.timedelta(seconds=30))
    fresh = await post_form(
        client,
        "/console/second-factor",
        "/console/second-factor/recovery-codes",
        code=code_at(key, clock),
    )
    new_codes = re.findall(r"<li><code>([A-Z2-7-]{19})</code></li>", fresh.text)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    clock.advance(dt.timedelta(seconds=30))
    moving = await post_form(
        client, "/console/second-factor", "/console/second-factor/renew", code=code_at(key, clock)
    )
    new_key = key_on(moving.text)
    assert new_key != key
    clock.advance(dt.timedelta(seconds=30))
    confirmed = await client.post(
        "/console/second-factor",
        data={"csrf_token": hidden(moving.text, "csrf_token"), "code": code_at(new_key, clock)},
    )
    assert confirmed.status_code == 200
    clock.advance(dt.timedelta(seconds=30))
    assert (await sign_in_with_code(client, audrey, code_at(key, clock))).status_code == 401
    assert (await sign_in_with_code(client, audrey, code_at(new_key, clock))).status_code == 303
    clock.advance(dt.timedelta(seconds=30))
    off = await post_form(
        client, "/console/second-factor", "/console/second-factor/off", code=code_at(new_key, clock)
    )
    assert off.status_code == 303
    assert (
        "Off: signing in asks for your password only" in (await client.get("/console/account")).text
    )
    assert (await sign_in(client, audrey)).headers["location"] == "/console"

    # Olga (an operator: required) cannot turn hers off, and removes Bob's.
    bob = await make_user(session, runtime, username="bob", role=Role.AUDITOR)
    client.cookies.clear()
    client.cookies.set("ledger_locale", "en")
    assert (await sign_in(client, olga)).status_code == 303
    olga_key, _ = await enrol(client, clock)
    assert "Turn off the second factor" not in (await client.get("/console/second-factor")).text
    async with runtime.sessionmaker() as write, write.begin():
        await second_factor.enrolment(write, runtime.second_factor_key, bob.id)
        user = await write.get(User, bob.id)
        assert user is not None
        user.totp_secret, user.totp_enabled_at = user.totp_pending_secret, clock.now()
    users = await client.get("/console/users")
    assert "Remove the second factor of bob" in users.text
    removed = await post_form(client, "/console/users", "/console/users/bob/second-factor-reset")
    assert "The second factor of bob is removed" in removed.text
    async with runtime.read_sessionmaker() as read:
        user = await read.get(User, bob.id)
        assert user is not None
        assert user.totp_secret is None
    assert (await tags(runtime)).count("member:user:second_factor_reset") == 1
    assert (await tags(runtime)).count("member:user:second_factor_disabled") == 1
    assert olga_key


async def api_sign_in(client: httpx.AsyncClient, username: str, **extra: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", json={"username": username, "password": PASSWORD, **extra}
    )


async def test_the_api_applies_the_same_rules(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, olga: str
) -> None:
    setup = await api_sign_in(client, olga)
    assert setup.status_code == 403
    assert setup.json()["type"].endswith("/problems/second-factor-setup-required")
    assert "/console/second-factor" in setup.json()["detail"]

    assert (await sign_in(client, olga)).status_code == 303
    key, codes = await enrol(client, clock)
    clock.advance(dt.timedelta(seconds=30))
    missing = await api_sign_in(client, olga)
    assert missing.status_code == 401
    assert missing.json()["type"].endswith("/problems/second-factor-required")
    wrong = await api_sign_in(client, olga, one_time_code="000000")
    assert wrong.status_code == 401
    assert wrong.json()["type"].endswith("/problems/invalid-credentials")
    code = code_at(key, clock)
    right = await api_sign_in(client, olga, one_time_code=code)
    assert right.status_code == 200, right.text
    assert right.json()["role"] == "operator"
    assert (await api_sign_in(client, olga, one_time_code=code)).status_code == 401  # replay
    assert (await api_sign_in(client, olga, one_time_code=codes[0])).status_code == 200
    async with runtime.read_sessionmaker() as read:
        rows = await read.scalars(
            sa.select(AuditEventRow).where(AuditEventRow.tag == "auth:user:refused")
        )
        reasons = [json.loads(row.body).get("reason") for row in rows]
    assert {"second_factor_setup", "one_time_code_missing", "wrong_one_time_code"} <= set(reasons)
