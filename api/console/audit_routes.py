"""Auditor pages: the audit log, one event with its proof checked, integrity.

Every page reads through the same functions as ``/v1/audit`` (ledger/audit/queries.py,
checkpoints.py, verify.py) and is itself recorded, with the same tags.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from refund_ledger_client.proofs import Invalid, verify_receipt

from api.console.web import (
    PREFIX,
    ConsoleError,
    Viewer,
    checked_form,
    needs,
    read_as,
    render,
    runtime_of,
    say,
)
from api.routers.audit import PSEUDONYM, export, json_lines, receipt_out
from api.schemas import EventId
from ledger.access.permissions import Permission
from ledger.audit import activity, checkpoints, queries, runs
from ledger.audit.glossary import GLOSSARY
from ledger.audit.queries import EventFilter
from ledger.audit.tags import ActorType, Outcome, Tag
from ledger.console import files
from ledger.db import create_snapshot_sessionmaker
from ledger.disputes import service as disputes
from ledger.disputes.models import Resolution
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.i18n import N_, gettext
from ledger.members import service as members
from ledger.subjects.service import HOW_TO_DISPUTE

router = APIRouter(prefix=PREFIX, include_in_schema=False)

Auditor = Annotated[Viewer, needs(Permission.AUDIT_READ)]

PAGE = 50


class FilterForm(BaseModel):
    """The filter form's fields; an empty field means no filter."""

    model_config = ConfigDict(extra="ignore")

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    member_id: uuid.UUID | None = None
    actor_type: ActorType | None = None
    tag: Tag | None = None
    subject: str | None = None
    purpose: str | None = None
    outcome: Outcome | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("since", "until")
    @classmethod
    def _utc_if_naive(cls, value: dt.datetime | None) -> dt.datetime | None:
        # <input type="datetime-local"> sends no offset: the console works in UTC.
        return value.replace(tzinfo=dt.UTC) if value and value.tzinfo is None else value

    @field_validator("subject")
    @classmethod
    def _a_pseudonym(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(PSEUDONYM, value):
            raise ValueError("a subject is a pseudonym (43 characters of base64url)")
        return value

    def event_filter(self) -> EventFilter:
        return EventFilter(
            since=self.since,
            until=self.until,
            member_id=self.member_id,
            actor_type=self.actor_type.value if self.actor_type else None,
            tag=self.tag.value if self.tag else None,
            subject=self.subject,
            purpose=self.purpose,
            outcome=self.outcome.value if self.outcome else None,
        )


def _form(request: Request) -> tuple[FilterForm, list[str]]:
    params = {k: v for k, v in request.query_params.items() if k not in {"cursor"}}
    try:
        return FilterForm.model_validate(params), []
    except ValidationError as exc:
        fields = [str(e["loc"][0]) for e in exc.errors()]
        return FilterForm(), fields


async def _member_names(runtime: Any) -> dict[str, str]:
    async with runtime.read_sessionmaker() as read:
        return {str(m.id): m.display_name for m in await members.list_members(read)}


@router.get("/audit")
async def audit_log(request: Request, who: Auditor) -> HTMLResponse:
    runtime = runtime_of(request)
    form, invalid = _form(request)
    filt = form.event_filter()
    cursor = request.query_params.get("cursor") or None
    page = queries.Page(events=[], next_cursor=None)
    if not invalid:
        async with runtime.read_sessionmaker() as read:
            try:
                found = await queries.list_events(
                    read, who.recorder(runtime), who.principal, filt, cursor=cursor, limit=PAGE
                )
            except InvalidInput:
                invalid = ["cursor"]
            else:
                page = found.value
    query = "&".join(f"{k}={v}" for k, v in request.query_params.items() if k != "cursor" and v)
    return render(
        request,
        "audit_log.html",
        who,
        form=form,
        invalid=invalid,
        page=page,
        query=query,
        members=await _member_names(runtime),
        tags=[t.value for t in Tag],
        actor_types=[a.value for a in ActorType],
        outcomes=[o.value for o in Outcome],
    )


@router.get("/audit/export.jsonl")
async def export_jsonl(request: Request, who: Auditor) -> StreamingResponse:
    return await _export(request, who, "jsonl")


@router.get("/audit/export.csv")
async def export_csv(request: Request, who: Auditor) -> StreamingResponse:
    return await _export(request, who, "csv")


CSV_COLUMNS = (
    "id", "recorded_at", "tag", "meaning", "outcome", "actor_type", "actor_member",
    "actor_member_id", "actor_client_id", "actor_user_id", "subject", "purpose", "reference",
    "request_id", "body", "leaf_index",
)  # fmt: skip
# Excel on a zh-CN machine reads a CSV file as GBK unless it starts with a UTF-8 BOM.
BOM = "\ufeff"


async def _export(request: Request, who: Viewer, kind: str) -> StreamingResponse:
    runtime = runtime_of(request)
    form, invalid = _form(request)
    if invalid:
        raise ConsoleError(
            400, N_("Fix these filters first: %(fields)s."), fields=", ".join(invalid)
        )
    filt = form.event_filter()
    records = await export(runtime, who.principal, filt, file_format=kind)
    locale = read_as(request)
    names = await _member_names(runtime)

    async def rows() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        buffer.write(BOM)
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for record in records:
            flat = _flat(record, names, locale)
            writer.writerow([flat.get(c, "") for c in CSV_COLUMNS])
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue().encode()

    if kind == "csv":
        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
        )
    return StreamingResponse(
        json_lines(records),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="audit-events.jsonl"'},
    )


def _flat(record: dict[str, Any], names: dict[str, str], locale: str) -> dict[str, Any]:
    """One CSV row: the event as recorded (UTC times, codes), plus the words a person
    reads it by: the tag's meaning in the reader's language, the member's display name."""
    event = record["event"]
    actor = event.get("actor") or {}
    try:
        meaning = gettext(locale, GLOSSARY[Tag(event.get("tag"))])
    except (ValueError, KeyError):
        meaning = ""
    return {
        "id": event.get("id"),
        "recorded_at": event.get("time"),
        "tag": event.get("tag"),
        "meaning": meaning,
        "outcome": event.get("outcome"),
        "actor_type": actor.get("type"),
        "actor_member": names.get(actor.get("member_id") or "", ""),
        "actor_member_id": actor.get("member_id"),
        "actor_client_id": actor.get("client_id"),
        "actor_user_id": actor.get("user_id"),
        "subject": event.get("subject"),
        "purpose": event.get("purpose"),
        "reference": event.get("reference"),
        "request_id": event.get("request_id"),
        "body": json.dumps(event.get("body"), sort_keys=True),
        "leaf_index": record.get("leaf_index"),
    }


@router.get("/audit/events/{event_id}")
async def event_page(request: Request, event_id: EventId, who: Auditor) -> HTMLResponse:
    """One event, its leaf, and its inclusion proof against the latest checkpoint,
    checked here with the published checkpoint key."""
    runtime = runtime_of(request)
    async with runtime.read_sessionmaker() as read:
        try:
            found = await queries.inspect_event(
                read, who.recorder(runtime), who.principal, event_id
            )
        except NotFound:
            raise ConsoleError(404, N_("There is no audit event %(id)s."), id=event_id) from None
    event, receipt, pending = found.value.event, found.value.receipt, found.value.pending
    read_as(request)
    check: dict[str, Any] = {
        "status": "pending",
        "detail": say(pending) if pending else say(N_("no checkpoint yet")),
    }
    shown = None
    if receipt is not None:
        shown = receipt_out(receipt).model_dump()
        keys = checkpoints.verifier_keys(runtime.audit.keys.current(), runtime.audit.origin)
        check = {"status": "failed", "detail": say(N_("no checkpoint key verifies it"))}
        for key in keys:
            try:
                verify_receipt(shown, str(key["verifier_key"]))
            except Invalid as exc:
                check = {"status": "failed", "detail": str(exc)}
                continue
            check = {
                "status": "ok",
                "detail": say(N_("checked with key %(key)s"), key=str(key["key_id"])),
            }
            break
    return render(
        request,
        "event.html",
        who,
        event=event,
        receipt=shown,
        check=check,
        members=await _member_names(runtime),
    )


@router.get("/reports/{report_id}")
async def report_page(request: Request, report_id: str, who: Auditor) -> HTMLResponse:
    """One report as an inspector asks about it: content, status and its history,
    notice, statements, disputes and outcomes, its audit events with their proofs."""
    runtime = runtime_of(request)
    try:
        wanted = uuid.UUID(report_id)
    except ValueError:
        raise ConsoleError(404, N_("There is no such report.")) from None
    async with runtime.read_sessionmaker() as read:
        try:
            found = await files.report_file(
                read, who.recorder(runtime), who.principal, wanted, policy=runtime.policy
            )
        except NotFound:
            raise ConsoleError(404, N_("There is no such report.")) from None
    return render(request, "report.html", who, file=found.value)


@router.get("/subjects")
async def subject_page(request: Request, who: Auditor) -> HTMLResponse:
    """A buyer's file exactly as a disclosure gives it to them."""
    runtime = runtime_of(request)
    locale = read_as(request)
    subject = (request.query_params.get("subject") or "").strip() or None
    found = None
    error = None
    if subject is not None:
        async with runtime.read_sessionmaker() as read:
            try:
                found = (
                    await files.buyers_file(
                        read,
                        who.recorder(runtime),
                        who.principal,
                        subject=subject,
                        policy=runtime.policy,
                    )
                ).value
            except InvalidInput:
                error = say(
                    N_("That is not a pseudonym: 43 characters of base64url, as the SDK makes.")
                )
                subject = None  # never echo what may be a raw identifier
    return render(
        request,
        "subject.html",
        who,
        subject=subject,
        file=found,
        error=error,
        how_to_dispute=gettext(locale, HOW_TO_DISPUTE),
        now=runtime.clock.now(),
    )


@router.get("/glossary")
async def glossary(request: Request, who: Auditor) -> HTMLResponse:
    """What each audit event tag, outcome and actor means, in the reader's language."""
    return render(
        request,
        "glossary.html",
        who,
        tags=[t.value for t in Tag],
        actor_types=[a.value for a in ActorType],
        outcomes=[o.value for o in Outcome],
    )


@router.get("/integrity")
async def integrity(request: Request, who: Auditor) -> HTMLResponse:
    """The signed checkpoints, and the latest whole-log verifications: one in progress
    shows how far it has got, and the page refreshes itself until it ends."""
    runtime = runtime_of(request)
    async with runtime.read_sessionmaker() as read:
        history, _ = await checkpoints.history(read, limit=50)
    found = await runs.latest(runtime.read_sessionmaker, limit=10)
    running = any(r.state is runs.RunState.RUNNING for r in found)
    refusal = request.query_params.get("busy") == "1"
    return render(
        request,
        "integrity.html",
        who,
        history=history,
        runs=found,
        running=running,
        busy=refusal,
        # No script runs in the console (its CSP): the page reloads itself instead.
        refresh_seconds=2 if running else None,
    )


@router.post("/integrity/verify")
async def verify_now(request: Request, who: Auditor) -> Response:
    """Start a verification of the whole log, in the background (what ``ledger audit
    verify`` does); one at a time. The run and its result are recorded."""
    runtime = runtime_of(request)
    await checked_form(request, who)
    try:
        started = await runs.start(
            runtime.sessionmaker, by=f"console:{who.session.user.username}", clock=runtime.clock
        )
    except Conflict:
        return RedirectResponse(f"{PREFIX}/integrity?busy=1", status_code=303)
    runtime.jobs.start(
        runs.run(
            started.id,
            snapshot=create_snapshot_sessionmaker(runtime.engine),
            sessionmaker=runtime.sessionmaker,
            op=who.op(runtime),
            record=runtime.audit.writer.write,
            clock=runtime.clock,
            ring=runtime.audit.keys.current(),
            origin=runtime.audit.origin,
        ),
        name=f"verification-{started.id}",
    )
    # (No fragment: the page reloads itself by its path while the run goes on.)
    return RedirectResponse(f"{PREFIX}/integrity", status_code=303)


@router.get("/activity")
async def activity_page(request: Request, who: Auditor) -> HTMLResponse:
    """Each member's queries, reports, withdrawals, disputes and evaluations per day over
    30 days, drawn as bar charts, with the signs of fishing (ledger/audit/activity.py)."""
    runtime = runtime_of(request)
    async with runtime.read_sessionmaker() as read:
        found = (await activity.member_activity(read, who.recorder(runtime), who.principal)).value
    return render(
        request,
        "activity.html",
        who,
        members=await _member_names(runtime),
        activities=found,
        series=list(activity.SERIES),
        # One scale per kind of count, shared by every member's row.
        tops={
            name: max((max(a.series[name]) for a in found), default=0) for name in activity.SERIES
        },
    )


@router.get("/disputes")
async def disputes_page(request: Request, who: Auditor) -> HTMLResponse:
    """Open disputes with the days left before their deadline (overdue ones marked),
    and resolved ones with their outcome."""
    runtime = runtime_of(request)
    rec = who.recorder(runtime)
    async with runtime.read_sessionmaker() as read:
        found = await disputes.list_all(read, rec, who.principal, resolution=None)
    # One read; an item past its deadline is already "unverifiable" (effective status).
    items = found.value
    open_items = [i for i in items if i.item.resolution is Resolution.OPEN]
    closed = [i for i in items if i.item.resolution is not Resolution.OPEN]
    now = rec.op.now
    return render(
        request,
        "disputes.html",
        who,
        members=await _member_names(runtime),
        open_items=open_items,
        closed=closed,
        now=now,
    )
