"""The ``ledger`` command: thin shims over the services.

Commands that create or change something print JSON on stdout so that scripts can use
it; errors go to stderr with a non-zero exit status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import enum
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import bootstrap, db, maintenance, metrics
from ledger.access import keys
from ledger.access.permissions import Role, parse_scopes
from ledger.audit import notes, runs, verify
from ledger.audit.events import AuditEvent
from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.audit.witness import WITNESS_ENV, Witness, cosigner_verifier_key
from ledger.clock import SystemClock
from ledger.config import Settings
from ledger.context import Operation
from ledger.errors import LedgerError, NotFound
from ledger.members import passwords, sealing, second_factor
from ledger.members import service as members
from ledger.members.models import MemberStatus
from ledger.runtime import CHECKPOINT_RING, KEY_FILES, TOKEN_RING, Runtime, make_hasher
from ledger.scoring import policies
from ledger.webhooks import endpoints as webhook_endpoints
from ledger.webhooks.delivery import DeliveryConfig, DeliveryWorker
from ledger.webhooks.models import DeliveryState
from ledger.webhooks.outbox import SUBSCRIBABLE

T = TypeVar("T")
log = logging.getLogger("ledger.cli")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"LEDGER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid configuration: {problems}")
        raise  # unreachable


def _now() -> dt.datetime:
    return SystemClock().now()


def _op() -> Operation:
    """Operator actions through the command are audited as the `system` actor."""
    return Operation.system(_now())


def _jsonable(value: Any) -> Any:  # noqa: PLR0911  (one return per type, flat)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _emit(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _run(work: Callable[[], Coroutine[Any, Any, T]], *, uvloop: bool = False) -> T:
    """Run ``work``; with ``uvloop``, on uvloop's event loop, as the servers run (the
    long-running commands: its loop and sockets cost less CPU than asyncio's)."""
    factory = None
    if uvloop:
        with contextlib.suppress(ImportError):  # uvloop is Linux and macOS only
            import uvloop as uv  # noqa: PLC0415

            factory = uv.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(work())
    except LedgerError as exc:
        _fail(exc.message)
        raise  # unreachable: _fail exits


def _in_transaction(
    work: Callable[[AsyncSession], Awaitable[T]], settings: Settings | None = None
) -> T:
    settings = settings or _settings()

    async def go() -> T:
        engine = db.create_engine(settings.resolved_database_url, pool_size=1)
        try:
            async with db.transaction(db.create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return _run(go)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        _fail(f"{what} must be a UUID such as the 'id' printed by `ledger members list`")
        raise  # unreachable


@click.group()
@click.version_option(package_name="refund-ledger")
def main() -> None:
    """The refund-abuse ledger. Configuration comes from LEDGER_* environment variables."""


# --- init / serve ---------------------------------------------------------------------


@main.command()
@click.option("--demo", is_flag=True, help="On a ledger with no members, create a demo one.")
@click.option(
    "--allow-superuser",
    is_flag=True,
    help="PostgreSQL: let the service's role own the schema or be a superuser (for a "
    "throwaway database only: that role could switch the audit log's protections off).",
)
def init(demo: bool, allow_superuser: bool) -> None:
    """Create the data directory, keys (0600) and schema; keep whatever already exists.

    On PostgreSQL the schema is made by LEDGER_MIGRATION_DATABASE_URL's role, and the
    service's role (LEDGER_DATABASE_URL) is given only what it uses."""
    settings = _settings()
    try:
        result = _run(
            lambda: bootstrap.initialize(settings, now=_now(), allow_superuser=allow_superuser)
        )
    except bootstrap.ServiceRoleRefused as exc:
        _fail(f"{exc}; or pass --allow-superuser for a throwaway database")
        raise  # unreachable
    click.echo(f"ledger: data in {settings.data_dir}, schema at {result.revision}")
    for ring in result.created_keys:
        click.echo(f"ledger: created the {ring} key")
    if not demo:
        return

    async def make_demo(session: AsyncSession) -> members.IssuedClient | None:
        return await bootstrap.create_demo_member(session, make_hasher(settings), now=_now())

    issued = _in_transaction(make_demo, settings)

    async def make_users(session: AsyncSession) -> list[tuple[str, str, str]]:
        return await bootstrap.create_demo_users(session, make_hasher(settings), now=_now())

    needing = {r.value for r in settings.roles_needing_second_factor}
    for username, role, password in _in_transaction(make_users, settings):
        then = "; then set up a second factor" if role in needing else ""
        click.echo(
            f"ledger: console user {username} ({role}), password {password} "
            f"(shown once; choose your own at the first sign-in{then}): "
            f"{settings.base_url}/console"
        )
    if issued is None:
        click.echo("ledger: members exist already; no demo member created")
        return
    click.echo(
        "\nA demo member was created with a client credential holding every scope.\n"
        "The secret is shown this once. Once the server is up, get a token with:\n"
    )
    click.echo("  " + bootstrap.token_command(settings.base_url, issued))
    click.echo(
        "\nthen call: curl -s -H 'Authorization: Bearer <access_token>' "
        f"{settings.base_url}/v1/me\n"
    )


@main.command()
@click.option("--host", help="Address to bind (LEDGER_HOST).")
@click.option("--port", type=int, help="Port to bind (LEDGER_PORT).")
@click.option("--workers", type=int, help="Worker processes (LEDGER_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with uvicorn."""
    import uvicorn  # noqa: PLC0415  (only this command needs the server)

    for name, value in (("LEDGER_HOST", host), ("LEDGER_PORT", port), ("LEDGER_WORKERS", workers)):
        if value is not None:
            os.environ[name] = str(value)
    settings = _settings()
    if not (settings.resolved_key_dir / TOKEN_RING / keys.RING_FILE).exists():
        _fail("no signing keys found: run `ledger init` first")
    for module in KEY_FILES:
        if not (settings.resolved_key_dir / module.KEY_DIR / module.KEY_FILE).exists():
            _fail(
                f"no {module.KEY_DIR} key found: run `ledger init` (it keeps what exists, "
                "adds what is missing)"
            )
    if settings.workers > 1 and settings.rate_limit_storage.startswith("memory"):
        _fail(
            "LEDGER_RATE_LIMIT_STORAGE=memory:// counts in each worker apart, so "
            f"{settings.workers} workers would let {settings.workers} times every limit "
            "through: use `database` (the default) or a redis:// URL"
        )
    current = _run(lambda: _current_revision(settings))
    if current != db.head_revision():
        _fail(
            f"the database schema is at {current}, not {db.head_revision()}: "
            "run `ledger db upgrade`"
        )
    if settings.workers > 1 and not os.environ.get(metrics.MULTIPROCESS_ENV):
        # Each worker writes its figures to files here; /metrics adds them up.
        folder = metrics.prepare_multiprocess_dir(settings.data_dir)
        os.environ[metrics.MULTIPROCESS_ENV] = str(folder)
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        **uvicorn_options(settings),
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How the ledger is served, beside where: each answer in one write, the ledger logs
    itself (JSON, no access log), names no server, and believes X-Forwarded-For only from
    its trusted proxies."""
    return {
        "http": "api.serving:OneWriteProtocol",  # each answer in one write (api/serving.py)
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }


async def _current_revision(settings: Settings) -> str | None:
    engine = db.create_engine(settings.resolved_database_url, pool_size=1)
    try:
        return await db.current_revision(engine)
    finally:
        await engine.dispose()


# --- db -------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Schema migrations."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate up to REVISION (default: head), as LEDGER_MIGRATION_DATABASE_URL's role
    when set, then grant the service's role what it uses (ledger/db_roles.py)."""
    _emit({"revision": _run(lambda: bootstrap.migrate(_settings(), revision))})


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate down to REVISION ('base' removes every table), as the migration role."""
    _with_engine(lambda engine: db.downgrade(engine, revision), migration=True)
    _emit({"revision": _run(lambda: _current_revision(_settings()))})


@db_group.command("current")
def db_current() -> None:
    """Print the database's revision and the code's head revision."""
    _emit({"revision": _run(lambda: _current_revision(_settings())), "head": db.head_revision()})


def _with_engine(work: Callable[[Any], Awaitable[None]], *, migration: bool = False) -> None:
    async def go() -> None:
        settings = _settings()
        url = (
            settings.resolved_migration_database_url
            if migration
            else settings.resolved_database_url
        )
        engine = db.create_engine(url, pool_size=1)
        try:
            await work(engine)
        finally:
            await engine.dispose()

    _run(go)


# --- members --------------------------------------------------------------------------


@main.group("members")
def members_group() -> None:
    """Member platforms."""


@members_group.command("create")
@click.option("--name", required=True, help="Short unique ASCII name, e.g. jd.")
@click.option(
    "--display-name",
    default=None,
    help="The name people see, in any script, e.g. 京东 (default: the short name).",
)
def members_create(name: str, display_name: str | None) -> None:
    """Onboard a member platform."""
    _emit(
        _in_transaction(
            lambda s: members.create_member(s, _op(), name=name, display_name=display_name)
        )
    )


@members_group.command("list")
def members_list() -> None:
    """List member platforms."""
    _emit(_in_transaction(members.list_members))


@members_group.command("suspend")
@click.argument("member_id")
def members_suspend(member_id: str) -> None:
    """Suspend a member: its tokens are refused from the next request."""
    mid = _uuid(member_id, "MEMBER_ID")
    _emit(
        _in_transaction(lambda s: members.set_member_status(s, _op(), mid, MemberStatus.SUSPENDED))
    )


@members_group.command("reinstate")
@click.argument("member_id")
def members_reinstate(member_id: str) -> None:
    """Reinstate a suspended member."""
    mid = _uuid(member_id, "MEMBER_ID")
    _emit(_in_transaction(lambda s: members.set_member_status(s, _op(), mid, MemberStatus.ACTIVE)))


# --- clients --------------------------------------------------------------------------


@main.group("clients")
def clients_group() -> None:
    """Client credentials of members."""


@clients_group.command("issue")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.option("--scope", required=True, help='Space-separated scopes, e.g. "risk:read".')
@click.option("--label", default="", help="What this credential is for.")
def clients_issue(member_id: str, scope: str, label: str) -> None:
    """Issue a client credential. The secret is printed once and never again."""
    mid = _uuid(member_id, "--member")
    settings = _settings()
    try:
        scopes = parse_scopes(scope)
    except LedgerError as exc:
        _fail(exc.message)
        return
    issued = _in_transaction(
        lambda s: members.issue_client(
            s, make_hasher(settings), _op(), member_id=mid, scopes=scopes, label=label
        ),
        settings,
    )
    _emit({**_jsonable(issued.client), "client_secret": issued.client_secret})


@clients_group.command("list")
@click.option("--member", "member_id", help="Only this member's credentials.")
def clients_list(member_id: str | None) -> None:
    """List client credentials (never their secrets)."""
    mid = _uuid(member_id, "--member") if member_id else None
    _emit(_in_transaction(lambda s: members.list_clients(s, member_id=mid)))


@clients_group.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """Revoke a client credential; its tokens are refused from the next request."""
    _emit(_in_transaction(lambda s: members.revoke_client(s, _op(), client_id)))


# --- users ----------------------------------------------------------------------------


@main.group("users")
def users_group() -> None:
    """Console users: operators and auditors."""


@users_group.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a console user. Prompts for a first password (twice, not echoed), or
    reads it from standard input with --password-stdin; the user must change it at
    their first sign-in."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings()
    _emit(
        _in_transaction(
            lambda s: members.create_user(
                s,
                make_hasher(settings),
                _op(),
                username=username,
                role=Role(role),
                password=password,
            ),
            settings,
        )
    )


@users_group.command("reset-password")
@click.option("--username", required=True)
def users_reset_password(username: str) -> None:
    """Give a user a new random password, printed once; they must choose their own at
    their next sign-in, and their console sessions end now."""
    settings = _settings()

    async def reset(session: AsyncSession) -> dict[str, str]:
        user, password = await passwords.reset_password(
            session, make_hasher(settings), _op(), username=username
        )
        return {"username": user.username, "password": password}

    _emit(_in_transaction(reset, settings))


@users_group.command("reset-second-factor")
@click.option("--username", required=True)
def users_reset_second_factor(username: str) -> None:
    """Remove a user's second factor (a lost phone and lost recovery codes); their
    console sessions end, and they set it up again at their next sign-in."""
    _emit(_in_transaction(lambda s: second_factor.reset(s, _op(), username=username)))


@users_group.command("list")
def users_list() -> None:
    """List console users."""
    _emit(_in_transaction(members.list_users))


@users_group.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable a console user."""
    _emit(_in_transaction(lambda s: members.disable_user(s, _op(), username)))


# --- webhooks -------------------------------------------------------------------------


@main.group("webhooks")
def webhooks_group() -> None:
    """Members' webhook endpoints, the delivery log, and the delivery worker."""


def _sealing_key(settings: Settings) -> sealing.SealingKey:
    return sealing.load_key(settings.resolved_key_dir / sealing.KEY_DIR)


@webhooks_group.command("add")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.option("--url", required=True, help="The member's receiver (https://).")
@click.option(
    "--events",
    default=" ".join(t.value for t in SUBSCRIBABLE),
    show_default=True,
    help="Space-separated event types.",
)
@click.option("--description", default="", help="A name for people.")
def webhooks_add(member_id: str, url: str, events: str, description: str) -> None:
    """Register an endpoint for a member. The signing secret is printed once."""
    mid = _uuid(member_id, "--member")
    settings = _settings()
    made = _in_transaction(
        lambda s: webhook_endpoints.add(
            s,
            _op(),
            _sealing_key(settings),
            mid,
            url=url,
            event_types=events.split(),
            description=description,
            max_in_flight=settings.webhook_max_in_flight,
            allow_loopback_http=settings.webhook_allow_loopback_http,
        ),
        settings,
    )
    _emit({**_jsonable(made.endpoint), "secret": made.secret})


@webhooks_group.command("list")
@click.option("--member", "member_id", required=True, help="The member's id.")
def webhooks_list(member_id: str) -> None:
    """A member's endpoints and their state (never their secrets)."""
    mid = _uuid(member_id, "--member")
    _emit(_in_transaction(lambda s: webhook_endpoints.of_member(s, mid)))


@webhooks_group.command("rotate")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.argument("endpoint_id")
def webhooks_rotate(member_id: str, endpoint_id: str) -> None:
    """A new signing secret, printed once; the old one also signs for 24 hours."""
    mid, eid = _uuid(member_id, "--member"), _uuid(endpoint_id, "ENDPOINT_ID")
    settings = _settings()
    made = _in_transaction(
        lambda s: webhook_endpoints.rotate(s, _op(), _sealing_key(settings), mid, eid), settings
    )
    _emit({**_jsonable(made.endpoint), "secret": made.secret})


@webhooks_group.command("enable")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.argument("endpoint_id")
def webhooks_enable(member_id: str, endpoint_id: str) -> None:
    """Turn an endpoint back on (after the member fixed its receiver)."""
    _set_endpoint_state(member_id, endpoint_id, enabled=True)


@webhooks_group.command("disable")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.argument("endpoint_id")
def webhooks_disable(member_id: str, endpoint_id: str) -> None:
    """Turn an endpoint off: its deliveries wait until it is on again."""
    _set_endpoint_state(member_id, endpoint_id, enabled=False)


def _set_endpoint_state(member_id: str, endpoint_id: str, *, enabled: bool) -> None:
    mid, eid = _uuid(member_id, "--member"), _uuid(endpoint_id, "ENDPOINT_ID")
    _emit(
        _in_transaction(
            lambda s: webhook_endpoints.set_enabled(s, _op(), mid, eid, enabled=enabled)
        )
    )


@webhooks_group.command("remove")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.argument("endpoint_id")
def webhooks_remove(member_id: str, endpoint_id: str) -> None:
    """Remove an endpoint; its delivery log stays."""
    mid, eid = _uuid(member_id, "--member"), _uuid(endpoint_id, "ENDPOINT_ID")
    _in_transaction(lambda s: webhook_endpoints.remove(s, _op(), mid, eid))
    _emit({"removed": str(eid)})


@webhooks_group.command("deliveries")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.option("--state", type=click.Choice([s.value for s in DeliveryState]), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
def webhooks_deliveries(member_id: str, state: str | None, limit: int) -> None:
    """A member's delivery log, newest first."""
    mid = _uuid(member_id, "--member")
    wanted = DeliveryState(state) if state else None
    page, _ = _in_transaction(
        lambda s: webhook_endpoints.delivery_page(s, mid, state=wanted, limit=limit)
    )
    _emit(page)


@webhooks_group.command("replay")
@click.option("--member", "member_id", required=True, help="The member's id.")
@click.option("--since", required=True, help="ISO 8601 time with offset, e.g. 2026-12-01T00:00Z.")
@click.argument("endpoint_id")
def webhooks_replay(member_id: str, since: str, endpoint_id: str) -> None:
    """Send a member's events since --since to the endpoint again."""
    mid, eid = _uuid(member_id, "--member"), _uuid(endpoint_id, "ENDPOINT_ID")
    try:
        start = dt.datetime.fromisoformat(since)
    except ValueError:
        _fail("--since is an ISO 8601 time with a UTC offset, e.g. 2026-12-01T00:00:00+00:00")
        return
    count, last = _in_transaction(
        lambda s: webhook_endpoints.replay(s, _op(), mid, eid, since=start)
    )
    _emit({"replayed": count, "last_event_id": last})


@webhooks_group.command("worker")
def webhooks_worker() -> None:
    """Deliver the outbox's events until stopped (SIGTERM, ^C). Several may run: each
    delivery is claimed by one; one killed mid-delivery is retried by another."""
    from ledger.logs import configure_logging  # noqa: PLC0415  (a long-running command)

    settings = _settings()
    configure_logging(settings.log_level)
    # Integration can wait a moment, an answer cannot: on a busy host the scheduler
    # serves the API's workers first (docs/benchmarks.md, issue 19). Lowering one's own
    # priority needs no privilege.
    os.nice(settings.audit_sequencer_nice)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        engine = db.create_engine(settings.resolved_database_url, pool_size=4)
        worker = DeliveryWorker(
            db.create_sessionmaker(engine),
            _sealing_key(settings),
            clock=SystemClock(),
            config=DeliveryConfig.of(settings),
            poll_seconds=settings.webhook_poll_seconds,
        )
        task = asyncio.create_task(worker.run())
        log.info("webhook delivery worker started")
        try:
            await stop.wait()
        finally:
            worker.stop()
            await task
            await worker.close()
            await engine.dispose()
        log.info("webhook delivery worker stopped")

    _run(go)


# --- audit ----------------------------------------------------------------------------


@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verifier-key")
def audit_verifier_key() -> None:
    """Print the verifier key of the key that signs checkpoints now (one line), for
    witnesses and auditors to pin; `ledger keys list --ring checkpoint` lists them all."""
    settings = _settings()
    try:
        ring = keys.KeyRing.load(settings.resolved_key_dir / CHECKPOINT_RING)
    except NotFound as exc:
        _fail(exc.message)
        raise
    click.echo(notes.verifier_key(settings.audit_origin, ring.signing_key.public_key))


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Integrate waiting events and sign a checkpoint of the tree now."""
    settings = _settings()

    async def go() -> dict[str, Any]:
        runtime = Runtime.build(settings)
        try:
            view, created = await runtime.audit.checkpoint()
        finally:
            await runtime.close()
        return {
            "tree_size": view.tree_size,
            "root_hash": base64.b64encode(view.root_hash).decode(),
            "created": created,
            "note": view.cosigned_note,
            "cosignatures": list(view.cosignatures),
        }

    _emit(_run(go))


@audit_group.command("sequencer")
def audit_sequencer() -> None:
    """Integrate events into the tree and sign checkpoints until stopped (SIGTERM, ^C).

    Run one beside servers started with LEDGER_AUDIT_SEQUENCER_ENABLED=false, so that
    hashing the tree never competes with answering requests. Several may run; one
    integrates at a time, and a stopped one leaves nothing half done.
    """
    from ledger.logs import configure_logging  # noqa: PLC0415  (a long-running command)

    settings = _settings()
    configure_logging(settings.log_level)
    # Integration can wait a moment, an answer cannot: on a busy host the scheduler
    # serves the API's workers first (docs/benchmarks.md, issue 19). Lowering one's own
    # priority needs no privilege.
    os.nice(settings.audit_sequencer_nice)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        runtime = Runtime.build(settings)
        runtime.audit.start(sequencer=True)
        log.info("audit sequencer started")
        try:
            await stop.wait()
        finally:
            await runtime.close()
        log.info("audit sequencer stopped")

    _run(go, uvloop=True)


@audit_group.command("verify")
@click.option("--all-problems", is_flag=True, help="List every problem, not only the first.")
@click.option(
    "--against",
    "sources",
    multiple=True,
    metavar="FILE|URL",
    help="Checkpoints kept outside the ledger: a file (a note, or JSON holding notes: an "
    "API answer, the SDK's memory, a witness's state) or a URL (a witness's base URL, or "
    "any URL that answers such text). Repeatable. Names a deleted tail.",
)
def audit_verify(all_problems: bool, sources: tuple[str, ...]) -> None:
    """Recompute the tree from the events and check every checkpoint; exit 1 on failure."""
    settings = _settings()
    ring = keys.KeyRing.load(settings.resolved_key_dir / CHECKPOINT_RING)
    kept = [
        found
        for source in sources
        for found in verify.kept_checkpoints(
            _read_source(source, settings.audit_origin),
            ring=ring,
            origin=settings.audit_origin,
            source=source,
        )
    ]
    if sources and not kept:
        _fail("no checkpoint signed by this ledger was found in --against")

    show = _Progress()

    async def go() -> verify.Report:
        engine = db.create_engine(settings.resolved_database_url, pool_size=2)
        writer = db.create_sessionmaker(engine)

        async def record_result(event: AuditEvent) -> int:
            async with db.transaction(writer) as session:
                return await record(session, event, now=_now())

        try:
            started = await runs.start(writer, by="cli", clock=SystemClock())
            return await runs.run(
                started.id,
                snapshot=db.create_snapshot_sessionmaker(engine),
                sessionmaker=writer,
                op=_op(),
                record=record_result,
                clock=SystemClock(),
                ring=ring,
                origin=settings.audit_origin,
                kept=kept,
                on_progress=show,
            )
        finally:
            show.close()
            await engine.dispose()

    report = _run(go)
    problems = report.problems if all_problems else report.problems[:1]
    _emit(
        {
            "ok": report.ok,
            "leaves": report.leaves,
            "events": report.events,
            "checkpoints": report.checkpoints,
            "pending": report.pending,
            "seconds": round(report.seconds, 3),
            "problems": problems,
        }
    )
    if not report.ok:
        first = report.first
        assert first is not None
        click.echo(f"audit log verification FAILED: {first.what}", err=True)
        sys.exit(1)


class _Progress:
    """How far a verification has got: a progress bar on a terminal (rich), JSON lines
    on stderr otherwise (a log, a pipe), so that stdout keeps only the result."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None
        if sys.stderr.isatty():
            from rich.progress import (  # noqa: PLC0415  (only on a terminal)
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
                TextColumn("leaves"), TimeRemainingColumn(), transient=True,
            )  # fmt: skip
            self._bar.start()

    async def __call__(self, view: runs.RunView) -> None:
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task("verify", total=view.total or None)
            self._bar.update(self._task, completed=view.checked)
        else:
            click.echo(json.dumps(view.to_json()), err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _read_source(source: str, origin: str) -> str:
    """The text of a file or URL given to --against (a witness's base URL reads its
    newest cosigned checkpoint of this log)."""
    if source.startswith(("http://", "https://")):
        url = httpx.URL(source)
        if url.path in ("", "/"):
            url = url.join("/checkpoint").copy_merge_params({"origin": origin})
        try:
            response = httpx.get(url, timeout=10)
        except httpx.HTTPError as exc:
            _fail(f"cannot read {source}: {exc}")
        if response.status_code != 200:
            _fail(f"{source} answered {response.status_code}")
        return response.text
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {source}: {exc.strerror}")
        raise  # unreachable


@audit_group.group("witness")
def witness_group() -> None:
    """A cosigning witness (C2SP tlog-witness) for this or another ledger's audit log."""


@witness_group.command("init")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True)
@click.option("--name", required=True, help="The witness's name, e.g. witness.example.com/w1")
def witness_init(directory: Path, name: str) -> None:
    """Make the witness's key (0600) once; print its verifier key for the ledger's
    LEDGER_AUDIT_WITNESSES, and keep it in DIR/verifier.key (public) for a ledger that
    reads it from a file ("key_file")."""
    key = Witness.create_key(directory)
    verifier = cosigner_verifier_key(name, key.public_key())
    (directory / "verifier.key").write_text(verifier + "\n", encoding="utf-8")
    _emit({"name": name, "key": verifier})


def _from_file(value: str) -> str:
    """``@path``: the first line of that file; anything else: itself."""
    if not value.startswith("@"):
        return value
    return Path(value[1:]).read_text(encoding="utf-8").strip()


@witness_group.command("serve")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True)
@click.option("--name", required=True)
@click.option(
    "--log",
    "logs",
    multiple=True,
    required=True,
    metavar="VERIFIER_KEY",
    help="A log to witness: its checkpoint verifier key (GET /v1/audit/keys, or "
    "`ledger audit verifier-key`), or @FILE to read it from a file. Repeatable.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7380, show_default=True, type=int)
def witness_serve(directory: Path, name: str, logs: tuple[str, ...], host: str, port: int) -> None:
    """Serve POST /add-checkpoint and GET /checkpoint until stopped."""
    import uvicorn  # noqa: PLC0415  (only the servers need it)

    try:
        given = [_from_file(vkey) for vkey in logs]
        origins = {notes.parse_verifier_key(vkey)[0]: vkey for vkey in given}
        Witness.load(directory, name=name, logs=origins)  # fail here, not in the server
    except (notes.NoteError, OSError) as exc:
        _fail(f"cannot start the witness: {exc}; run `ledger audit witness init` first")
        raise  # unreachable
    os.environ[WITNESS_ENV] = json.dumps({"dir": str(directory), "name": name, "logs": origins})
    uvicorn.run(
        "api.witness:create_witness_app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
    )


# --- scoring policy ---------------------------------------------------------------------


@main.group("policy")
def policy_group() -> None:
    """The scoring policy: versioned, and every answer names its version."""


@policy_group.command("set")
@click.argument("file", type=click.File("r"))
def policy_set(file: Any) -> None:
    """Put the policy in FILE (JSON; see docs/scoring.md) in force. Audited."""
    text = file.read()

    async def go(session: AsyncSession) -> dict[str, Any]:
        return policies.document_of(await policies.set_policy(session, _op(), text))

    _emit(_in_transaction(go))


@policy_group.command("show")
def policy_show() -> None:
    """The policy in force (the built-in default until one is set)."""

    async def go(session: AsyncSession) -> dict[str, Any]:
        return policies.document_of(await policies.active(session))

    _emit(_in_transaction(go))


@policy_group.command("history")
def policy_history() -> None:
    """Every policy version, oldest first."""
    _emit(_in_transaction(policies.history))


# --- retention ------------------------------------------------------------------------


@main.group("retention")
def retention_group() -> None:
    """Time-based rules: dispute deadlines, notice, five-year retention."""


@retention_group.command("run")
def retention_run() -> None:
    """Suppress reports whose disputes went unanswered, suspend reports still without
    notice, and erase expired reports to a tombstone; each change is audited."""
    settings = _settings()

    async def go() -> Any:
        engine = db.create_engine(settings.resolved_database_url, pool_size=1)
        try:
            return await maintenance.run(
                db.create_sessionmaker(engine), clock=SystemClock(), policy=settings.report_policy()
            )
        finally:
            await engine.dispose()

    result = _run(go)
    if result is None:
        _fail("another process is running the same jobs right now; try again shortly")
    _emit(result)


# --- keys -----------------------------------------------------------------------------


@main.group("keys")
def keys_group() -> None:
    """Signing keys: access tokens ('token') and audit checkpoints ('checkpoint')."""


RING_OPTION = click.option(
    "--ring",
    type=click.Choice([TOKEN_RING, CHECKPOINT_RING]),
    default=TOKEN_RING,
    show_default=True,
    help="Which key ring.",
)

_KEY_TAGS = {
    (TOKEN_RING, "rotated"): Tag.TOKEN_KEY_ROTATED,
    (TOKEN_RING, "retired"): Tag.TOKEN_KEY_RETIRED,
    (CHECKPOINT_RING, "rotated"): Tag.CHECKPOINT_KEY_ROTATED,
    (CHECKPOINT_RING, "retired"): Tag.CHECKPOINT_KEY_RETIRED,
}


def _ring_dir(ring: str) -> Path:
    return _settings().resolved_key_dir / ring


def _key_rows(ring: str) -> list[dict[str, Any]]:
    try:
        loaded = keys.KeyRing.load(_ring_dir(ring))
    except NotFound as exc:
        _fail(exc.message)
        raise
    signing = loaded.signing_key.kid if loaded.active else None
    origin = _settings().audit_origin

    def verifier(k: keys.SigningKey) -> dict[str, str]:
        # A checkpoint key's verifier key, to hand to witnesses and auditors.
        if ring != "checkpoint":
            return {}
        return {"verifier_key": notes.verifier_key(origin, k.public_key)}

    return [
        {
            "kid": k.kid,
            "created_at": k.created_at.isoformat(),
            "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            "signing": k.kid == signing,
        }
        # A checkpoint key's verifier key, to hand to witnesses and auditors.
        | (
            {"verifier_key": notes.verifier_key(origin, k.public_key)}
            if ring == "checkpoint"
            else {}
        )
        for k in loaded.keys
    ]


def _audit_key_change(ring: str, change: str, kid: str) -> None:
    async def go(session: AsyncSession) -> None:
        op = _op()
        await record(session, op.event(_KEY_TAGS[ring, change], body={"kid": kid}), now=op.now)

    _in_transaction(go)


@keys_group.command("list")
@RING_OPTION
def keys_list(ring: str) -> None:
    """List keys; the newest active one signs, every active one verifies."""
    _emit(_key_rows(ring))


@keys_group.command("rotate")
@RING_OPTION
def keys_rotate(ring: str) -> None:
    """Make a new signing key; older keys keep verifying until retired.

    Running servers pick the new key up within a second.
    """
    key = keys.rotate(_ring_dir(ring), now=_now())
    _audit_key_change(ring, "rotated", key.kid)
    _emit({"kid": key.kid, "created_at": key.created_at.isoformat(), "signing": True})


@keys_group.command("retire")
@RING_OPTION
@click.argument("kid")
def keys_retire(ring: str, kid: str) -> None:
    """Retire a key: it signs nothing more. A retired token key stops verifying tokens;
    a retired checkpoint key is still published, to verify the checkpoints it signed.

    Key ids are base64url and may start with '-': write `ledger keys retire -- KID`.
    """
    try:
        keys.retire(_ring_dir(ring), kid, now=_now())
    except LedgerError as exc:
        _fail(exc.message)
    _audit_key_change(ring, "retired", kid)
    _emit(_key_rows(ring))
