"""Operator pages: members, their client credentials, console users, the scoring policy.

Each change is the same service call the ``ledger`` command makes (ledger/members,
ledger/scoring/policies), in one transaction with its audit event; every form is
CSRF-checked; auditors are refused on every page and every action.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.web import PREFIX, ConsoleError, Viewer, checked_form, needs, render, runtime_of
from ledger.access.permissions import Permission, Role, Scope
from ledger.errors import LedgerError
from ledger.i18n import N_
from ledger.members import passwords, second_factor
from ledger.members import service as members
from ledger.members.models import MemberStatus
from ledger.scoring import policies
from ledger.webhooks import endpoints as webhook_endpoints
from ledger.webhooks.outbox import SUBSCRIBABLE

router = APIRouter(prefix=PREFIX, include_in_schema=False)

MembersManager = Annotated[Viewer, needs(Permission.MEMBERS_MANAGE)]
CredentialsManager = Annotated[Viewer, needs(Permission.CREDENTIALS_MANAGE)]
UsersManager = Annotated[Viewer, needs(Permission.USERS_MANAGE)]
PolicyReader = Annotated[Viewer, needs(Permission.POLICY_MANAGE)]

T = TypeVar("T")


async def _change(request: Request, who: Viewer, change: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``change(session)`` in one transaction; a refusal becomes a 400 page that
    says what to fix."""
    runtime = runtime_of(request)
    try:
        async with runtime.sessionmaker() as session, session.begin():
            return await change(session)
    except LedgerError as exc:
        raise ConsoleError(400, exc.message) from None


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ConsoleError(404, N_("There is no such member.")) from None


@router.get("/members")
async def members_page(request: Request, who: MembersManager) -> HTMLResponse:
    runtime = runtime_of(request)
    async with runtime.read_sessionmaker() as read:
        found = await members.list_members(read)
    return render(request, "members.html", who, members=found)


@router.post("/members")
async def create_member(request: Request, who: MembersManager) -> Response:
    form = await checked_form(request, who)
    op = who.op(runtime_of(request))
    made = await _change(
        request,
        who,
        lambda s: members.create_member(
            s,
            op,
            name=form.get("name", "").strip(),
            display_name=form.get("display_name", "").strip() or None,
        ),
    )
    return RedirectResponse(f"{PREFIX}/members/{made.id}", status_code=303)


async def _member_page(
    request: Request,
    who: Viewer,
    wanted: uuid.UUID,
    issued: members.IssuedClient | None,
    endpoint_secret: webhook_endpoints.NewSecret | None = None,
) -> HTMLResponse:
    """A member, its credentials and event endpoints, and (once, just made) a new
    secret."""
    async with runtime_of(request).read_sessionmaker() as read:
        member = next((m for m in await members.list_members(read) if m.id == wanted), None)
        if member is None:
            raise ConsoleError(404, N_("There is no such member."))
        clients = await members.list_clients(read, member_id=wanted)
        hooks = await webhook_endpoints.of_member(read, wanted)
        deliveries, _ = await webhook_endpoints.delivery_page(read, wanted, limit=20)
    return render(
        request,
        "member.html",
        who,
        member=member,
        clients=clients,
        scopes=[s.value for s in Scope],
        issued=issued,
        endpoints=hooks,
        deliveries=deliveries,
        event_types=[t.value for t in SUBSCRIBABLE],
        endpoint_secret=endpoint_secret,
    )


@router.get("/members/{member_id}")
async def member_page(request: Request, member_id: str, who: MembersManager) -> HTMLResponse:
    return await _member_page(request, who, _uuid(member_id), None)


@router.post("/members/{member_id}/status")
async def set_status(request: Request, member_id: str, who: MembersManager) -> Response:
    form = await checked_form(request, who)
    wanted = _uuid(member_id)
    try:
        status = MemberStatus(form.get("status", ""))
    except ValueError:
        raise ConsoleError(400, N_("Choose active or suspended.")) from None
    op = who.op(runtime_of(request))
    await _change(request, who, lambda s: members.set_member_status(s, op, wanted, status))
    return RedirectResponse(f"{PREFIX}/members/{wanted}", status_code=303)


@router.post("/members/{member_id}/clients")
async def issue_client(request: Request, member_id: str, who: CredentialsManager) -> HTMLResponse:
    """Issue a credential; its secret is on this one page and never again."""
    runtime = runtime_of(request)
    raw = await request.form()
    form = await checked_form(request, who)
    wanted = _uuid(member_id)
    try:
        scopes = frozenset(Scope(v) for v in raw.getlist("scope") if isinstance(v, str))
    except ValueError:
        raise ConsoleError(400, N_("Choose scopes from the list.")) from None
    if not scopes:
        raise ConsoleError(400, N_("Choose at least one scope for the credential."))
    op = who.op(runtime)
    issued = await _change(
        request,
        who,
        lambda s: members.issue_client(
            s,
            runtime.hasher,
            op,
            member_id=wanted,
            scopes=scopes,
            label=form.get("label", "").strip()[:100],
        ),
    )
    return await _member_page(request, who, wanted, issued)


@router.post("/members/{member_id}/webhooks")
async def add_endpoint(request: Request, member_id: str, who: MembersManager) -> HTMLResponse:
    """Register an endpoint for a member; its signing secret is on this page only."""
    runtime = runtime_of(request)
    raw = await request.form()
    form = await checked_form(request, who)
    wanted = _uuid(member_id)
    types = [v for v in raw.getlist("event_type") if isinstance(v, str)]
    op = who.op(runtime)
    made = await _change(
        request,
        who,
        lambda s: webhook_endpoints.add(
            s,
            op,
            runtime.second_factor_key,
            wanted,
            url=form.get("url", "").strip(),
            event_types=types,
            description=form.get("description", "").strip()[:100],
            max_in_flight=runtime.settings.webhook_max_in_flight,
            allow_loopback_http=runtime.settings.webhook_allow_loopback_http,
        ),
    )
    return await _member_page(request, who, wanted, None, made)


@router.post("/members/{member_id}/webhooks/{endpoint_id}/secret")
async def rotate_endpoint_secret(
    request: Request, member_id: str, endpoint_id: str, who: MembersManager
) -> HTMLResponse:
    """A new signing secret, shown on this page only; the old one signs for a day."""
    runtime = runtime_of(request)
    await checked_form(request, who)
    wanted, endpoint = _uuid(member_id), _endpoint(endpoint_id)
    op = who.op(runtime)
    made = await _change(
        request,
        who,
        lambda s: webhook_endpoints.rotate(s, op, runtime.second_factor_key, wanted, endpoint),
    )
    return await _member_page(request, who, wanted, None, made)


@router.post("/members/{member_id}/webhooks/{endpoint_id}/state")
async def set_endpoint_state(
    request: Request, member_id: str, endpoint_id: str, who: MembersManager
) -> Response:
    form = await checked_form(request, who)
    wanted, endpoint = _uuid(member_id), _endpoint(endpoint_id)
    if form.get("state") not in {"enabled", "disabled"}:
        raise ConsoleError(400, N_("Choose to turn the endpoint on or off."))
    enabled = form.get("state") == "enabled"
    op = who.op(runtime_of(request))
    await _change(
        request,
        who,
        lambda s: webhook_endpoints.set_enabled(s, op, wanted, endpoint, enabled=enabled),
    )
    return RedirectResponse(f"{PREFIX}/members/{wanted}", status_code=303)


@router.post("/members/{member_id}/webhooks/{endpoint_id}/remove")
async def remove_endpoint(
    request: Request, member_id: str, endpoint_id: str, who: MembersManager
) -> Response:
    await checked_form(request, who)
    wanted, endpoint = _uuid(member_id), _endpoint(endpoint_id)
    op = who.op(runtime_of(request))
    await _change(request, who, lambda s: webhook_endpoints.remove(s, op, wanted, endpoint))
    return RedirectResponse(f"{PREFIX}/members/{wanted}", status_code=303)


def _endpoint(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ConsoleError(404, N_("There is no such endpoint.")) from None


@router.post("/clients/{client_id}/revoke")
async def revoke_client(request: Request, client_id: str, who: CredentialsManager) -> Response:
    await checked_form(request, who)
    op = who.op(runtime_of(request))
    revoked = await _change(request, who, lambda s: members.revoke_client(s, op, client_id))
    return RedirectResponse(f"{PREFIX}/members/{revoked.member_id}", status_code=303)


async def _users_page(
    request: Request,
    who: Viewer,
    created: dict[str, object] | None = None,
    second_factor_removed: str | None = None,
) -> HTMLResponse:
    """The users page; ``created``: a password given just now, shown this once."""
    async with runtime_of(request).read_sessionmaker() as read:
        found = await members.list_users(read)
    return render(
        request,
        "users.html",
        who,
        users=found,
        roles=[r.value for r in Role],
        created=created,
        second_factor_removed=second_factor_removed,
    )


@router.get("/users")
async def users_page(request: Request, who: UsersManager) -> HTMLResponse:
    return await _users_page(request, who)


@router.post("/users")
async def create_user(request: Request, who: UsersManager) -> HTMLResponse:
    """Create a user with a random first password, shown on this page only."""
    runtime = runtime_of(request)
    form = await checked_form(request, who)
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        raise ConsoleError(400, N_("Choose a role: auditor or operator.")) from None
    password = passwords.given_password()
    op = who.op(runtime)
    made = await _change(
        request,
        who,
        lambda s: members.create_user(
            s,
            runtime.hasher,
            op,
            username=form.get("username", "").strip(),
            role=role,
            password=password,
        ),
    )
    return await _users_page(request, who, {"username": made.username, "password": password})


@router.post("/users/{username}/password-reset")
async def reset_password(request: Request, username: str, who: UsersManager) -> HTMLResponse:
    """Give a user a new random password, shown on this page only; they must choose
    their own at their next sign-in, and their sessions end now."""
    runtime = runtime_of(request)
    await checked_form(request, who)
    if username == who.session.user.username:
        raise ConsoleError(400, N_("Change your own password from your account page."))
    op = who.op(runtime)
    _, password = await _change(
        request,
        who,
        lambda s: passwords.reset_password(s, runtime.hasher, op, username=username),
    )
    return await _users_page(
        request, who, {"username": username, "password": password, "reset": True}
    )


@router.post("/users/{username}/second-factor-reset")
async def reset_second_factor(request: Request, username: str, who: UsersManager) -> HTMLResponse:
    """Remove a user's second factor (a lost phone and lost recovery codes); their
    sessions end, and they set it up again at their next sign-in."""
    runtime = runtime_of(request)
    await checked_form(request, who)
    if username == who.session.user.username:
        raise ConsoleError(400, N_("Manage your own second factor from your account page."))
    op = who.op(runtime)
    await _change(request, who, lambda s: second_factor.reset(s, op, username=username))
    return await _users_page(request, who, second_factor_removed=username)


@router.post("/users/{username}/disable")
async def disable_user(request: Request, username: str, who: UsersManager) -> Response:
    await checked_form(request, who)
    if username == who.session.user.username:
        raise ConsoleError(400, N_("You cannot disable your own account."))
    op = who.op(runtime_of(request))
    await _change(request, who, lambda s: members.disable_user(s, op, username))
    return RedirectResponse(f"{PREFIX}/users", status_code=303)


@router.get("/policy")
async def policy_page(request: Request, who: PolicyReader) -> HTMLResponse:
    runtime = runtime_of(request)
    async with runtime.read_sessionmaker() as read:
        current = policies.document_of(await policies.active(read))
        history = await policies.history(read)
    return render(request, "policy.html", who, current=current, history=history)
