"""Webhook endpoints: where the ledger sends a member its events (docs/corrections.md),
and the delivery log it reads and replays from."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from api.auth import authorize_client, operation, recorder
from api.deps import ReadSessionDep, RuntimeDep, SessionDep
from api.openapi import problems
from api.schemas import Cursor, page_limit
from api.schemas.webhooks import (
    DeliveryList,
    DeliveryOut,
    EndpointIn,
    EndpointList,
    EndpointOut,
    EndpointStateIn,
    EndpointWithSecret,
    PingOut,
    ReplayIn,
    ReplayOut,
)
from ledger.access.permissions import Permission
from ledger.access.principals import ClientPrincipal
from ledger.webhooks import endpoints
from ledger.webhooks.endpoints import DeliveryView, EndpointView
from ledger.webhooks.models import DeliveryState, EndpointState

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Manager = Annotated[ClientPrincipal, Depends(authorize_client(Permission.WEBHOOKS_MANAGE))]
EndpointId = Annotated[uuid.UUID, Path(description="the endpoint's id")]


def endpoint_out(view: EndpointView) -> EndpointOut:
    return EndpointOut.model_validate(view, from_attributes=True)


def delivery_out(view: DeliveryView) -> DeliveryOut:
    return DeliveryOut.model_validate(view, from_attributes=True)


@router.post(
    "/endpoints", response_model=EndpointWithSecret, status_code=201, responses=problems(409)
)
async def add_endpoint(
    body: EndpointIn, principal: Manager, session: SessionDep, runtime: RuntimeDep
) -> EndpointWithSecret:
    """Register an endpoint for the events you choose. The signing secret is in this
    answer only: keep it where your receiver reads it."""
    made = await endpoints.add(
        session,
        operation(runtime, principal),
        runtime.second_factor_key,
        principal.member_id,
        url=body.url,
        event_types=list(body.event_types),
        description=body.description,
        max_in_flight=body.max_in_flight,
        allow_loopback_http=runtime.settings.webhook_allow_loopback_http,
    )
    return EndpointWithSecret(endpoint=endpoint_out(made.endpoint), secret=made.secret)


@router.get("/endpoints", response_model=EndpointList)
async def list_endpoints(
    principal: Manager, session: ReadSessionDep, runtime: RuntimeDep
) -> EndpointList:
    """Your endpoints, with their state: a disabled one receives nothing until enabled."""
    found = await endpoints.listed(session, recorder(runtime, principal), principal.member_id)
    return EndpointList(endpoints=[endpoint_out(v) for v in found.value])


@router.post(
    "/endpoints/{endpoint_id}/secret", response_model=EndpointWithSecret, responses=problems(404)
)
async def rotate_secret(
    endpoint_id: EndpointId, principal: Manager, session: SessionDep, runtime: RuntimeDep
) -> EndpointWithSecret:
    """A new signing secret, shown only now. For 24 hours every delivery carries a
    signature by the old secret and one by the new, so you can switch without a gap."""
    made = await endpoints.rotate(
        session,
        operation(runtime, principal),
        runtime.second_factor_key,
        principal.member_id,
        endpoint_id,
    )
    return EndpointWithSecret(endpoint=endpoint_out(made.endpoint), secret=made.secret)


@router.post(
    "/endpoints/{endpoint_id}/state", response_model=EndpointOut, responses=problems(404, 409)
)
async def set_endpoint_state(
    endpoint_id: EndpointId,
    body: EndpointStateIn,
    principal: Manager,
    session: SessionDep,
    runtime: RuntimeDep,
) -> EndpointOut:
    """Turn an endpoint off (its deliveries wait) or back on (they resume; replay what
    failed meanwhile)."""
    view = await endpoints.set_enabled(
        session,
        operation(runtime, principal),
        principal.member_id,
        endpoint_id,
        enabled=body.state is EndpointState.ENABLED,
    )
    return endpoint_out(view)


@router.delete("/endpoints/{endpoint_id}", status_code=204, responses=problems(404))
async def remove_endpoint(
    endpoint_id: EndpointId, principal: Manager, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Remove an endpoint: nothing more is sent there; its delivery log stays."""
    await endpoints.remove(session, operation(runtime, principal), principal.member_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/endpoints/{endpoint_id}/ping",
    response_model=PingOut,
    status_code=202,
    responses=problems(404, 409),
)
async def ping_endpoint(
    endpoint_id: EndpointId, principal: Manager, session: SessionDep, runtime: RuntimeDep
) -> PingOut:
    """Send a ``webhook.ping`` event to the endpoint, to test your receiver."""
    event_id = await endpoints.ping(
        session, operation(runtime, principal), principal.member_id, endpoint_id
    )
    return PingOut(event_id=event_id)


@router.post(
    "/endpoints/{endpoint_id}/replay", response_model=ReplayOut, responses=problems(404, 409)
)
async def replay(
    endpoint_id: EndpointId,
    body: ReplayIn,
    principal: Manager,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ReplayOut:
    """Send your events since ``since`` to the endpoint again, oldest first, with the
    same ``webhook-id`` each had (your receiver drops those it has)."""
    count, last = await endpoints.replay(
        session,
        operation(runtime, principal),
        principal.member_id,
        endpoint_id,
        since=body.since,
        event_types=None if body.event_types is None else list(body.event_types),
    )
    return ReplayOut(replayed=count, last_event_id=last)


@router.get("/deliveries", response_model=DeliveryList)
async def list_deliveries(
    principal: Manager,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    endpoint_id: Annotated[uuid.UUID | None, Query(description="one endpoint only")] = None,
    state: Annotated[DeliveryState | None, Query(description="only in this state")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_limit(500)] = 100,
) -> DeliveryList:
    """Your delivery log, newest first: each event, where it went, how many attempts,
    what came back last."""
    found = await endpoints.deliveries(
        session,
        recorder(runtime, principal),
        principal.member_id,
        endpoint_id=endpoint_id,
        state=state,
        cursor=cursor,
        limit=limit,
    )
    page, next_cursor = found.value
    return DeliveryList(deliveries=[delivery_out(d) for d in page], next_cursor=next_cursor)
