"""Webhook routes: an account's endpoints, their secrets, deliveries and replays, and the account's
events of the last 7 days. Parse, call one service function, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from taskapi.http.deps import PrincipalDep, SettingsDep, get_delivery_queue, get_event_store, get_webhook_store
from taskapi.http.routes import AUTH_ERRORS, BODY_ERRORS
from taskapi.models.domain import utc_now
from taskapi.models.responses import ErrorOut
from taskapi.models.webhooks import (
    DEFAULT_DELIVERY_PAGE,
    DEFAULT_EVENT_PAGE,
    ENDPOINT_ID_MAX_LENGTH,
    EVENT_ID_PATTERN,
    MAX_DELIVERY_PAGE,
    MAX_EVENT_PAGE,
    DeliveryFilter,
    DeliveryListOut,
    DeliveryOut,
    EventListOut,
    EventOut,
    ReplayOut,
    ReplayRequest,
    RotateSecretOut,
    WebhookCreate,
    WebhookCreatedOut,
    WebhookListOut,
    WebhookOut,
    WebhookUpdate,
)
from taskapi.services import webhooks as service
from taskapi.webhooks.eventstore import EventStore
from taskapi.webhooks.queue import DeliveryQueue
from taskapi.webhooks.store import WebhookStore

WebhookStoreDep = Annotated[WebhookStore, Depends(get_webhook_store)]
EventStoreDep = Annotated[EventStore, Depends(get_event_store)]
DeliveryQueueDep = Annotated[DeliveryQueue, Depends(get_delivery_queue)]
EndpointId = Annotated[str, Path(max_length=ENDPOINT_ID_MAX_LENGTH, description="The endpoint's id (we_...).")]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such webhook endpoint in this account"}
}
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    **NOT_FOUND,
    409: {"model": ErrorOut, "description": "The endpoint changed meanwhile; retry"},
}

router = APIRouter(tags=["webhooks"])


@router.post(
    "/api/webhooks",
    status_code=201,
    response_model=WebhookCreatedOut,
    responses={
        **BODY_ERRORS,
        409: {"model": ErrorOut, "description": "The account has its maximum of webhook endpoints (10)"},
    },
    summary="Add a webhook endpoint (answers its secret, this once)",
)
def create_webhook(
    body: WebhookCreate, principal: PrincipalDep, settings: SettingsDep, store: WebhookStoreDep
) -> WebhookCreatedOut:
    """Events of the account (task.queued, task.started, task.completed, ...) are POSTed to `url`,
    signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) with the
    `secret` answered here: keep it, it is never shown again. `url` must be https (http only on
    the local stack, to a loopback host). 2xx acknowledges; other answers are retried for about
    28 hours; a 410 disables the endpoint."""
    created = service.create_endpoint(store, principal, body, settings=settings, now=utc_now())
    out = WebhookOut.from_endpoint(created.endpoint)
    return WebhookCreatedOut(**out.model_dump(), secret=created.secret)


@router.get("/api/webhooks", response_model=WebhookListOut, responses=AUTH_ERRORS, summary="List webhook endpoints")
def list_webhooks(principal: PrincipalDep, store: WebhookStoreDep) -> WebhookListOut:
    return WebhookListOut(webhooks=[WebhookOut.from_endpoint(e) for e in service.list_endpoints(store, principal)])


@router.get(
    "/api/webhooks/{webhook_id}",
    response_model=WebhookOut,
    responses={**AUTH_ERRORS, **NOT_FOUND},
    summary="Get a webhook endpoint",
)
def get_webhook(webhook_id: EndpointId, principal: PrincipalDep, store: WebhookStoreDep) -> WebhookOut:
    return WebhookOut.from_endpoint(service.get_endpoint(store, principal, webhook_id))


@router.patch(
    "/api/webhooks/{webhook_id}",
    response_model=WebhookOut,
    responses=CHANGE_ERRORS,
    summary="Change a webhook endpoint",
)
def update_webhook(
    webhook_id: EndpointId, body: WebhookUpdate, principal: PrincipalDep, settings: SettingsDep, store: WebhookStoreDep
) -> WebhookOut:
    """Fields left out keep their value. `enabled: true` turns on an endpoint the service disabled
    (clearing disabled_reason); `enabled: false` pauses it (events meanwhile are not delivered)."""
    endpoint = service.update_endpoint(store, principal, webhook_id, body, settings=settings, now=utc_now())
    return WebhookOut.from_endpoint(endpoint)


@router.delete(
    "/api/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_ERRORS, **NOT_FOUND},
    summary="Delete a webhook endpoint",
)
def delete_webhook(webhook_id: EndpointId, principal: PrincipalDep, store: WebhookStoreDep) -> Response:
    """Deliveries still pending for it are dropped."""
    service.delete_endpoint(store, principal, webhook_id)
    return Response(status_code=204)


@router.post(
    "/api/webhooks/{webhook_id}/rotate-secret",
    response_model=RotateSecretOut,
    responses={**AUTH_ERRORS, **NOT_FOUND, 409: CHANGE_ERRORS[409]},
    summary="Give a webhook endpoint a new secret",
)
def rotate_secret(
    webhook_id: EndpointId, principal: PrincipalDep, settings: SettingsDep, store: WebhookStoreDep
) -> RotateSecretOut:
    """Answers the new secret, this once. Until previous_secret_expires_at (24 hours) every
    delivery carries two signatures, one per secret, so the receiver can switch at its pace."""
    rotated = service.rotate_secret(
        store, principal, webhook_id, grace_seconds=settings.webhook_secret_grace_seconds, now=utc_now()
    )
    return RotateSecretOut(
        id=rotated.endpoint.endpoint_id, secret=rotated.secret, previous_secret_expires_at=rotated.previous_expires_at
    )


@router.get(
    "/api/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryListOut,
    responses={**AUTH_ERRORS, **NOT_FOUND},
    summary="List a webhook endpoint's deliveries (kept 30 days)",
)
def list_deliveries(
    webhook_id: EndpointId,
    principal: PrincipalDep,
    store: WebhookStoreDep,
    status: Annotated[DeliveryFilter | None, Query(description="Only deliveries in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERY_PAGE)] = DEFAULT_DELIVERY_PAGE,
    next_token: Annotated[
        str | None, Query(pattern=EVENT_ID_PATTERN, description="Cursor from the previous page.")
    ] = None,
) -> DeliveryListOut:
    deliveries, token = service.list_deliveries(
        store, principal, webhook_id, status=status, limit=limit, after=next_token
    )
    return DeliveryListOut(deliveries=[DeliveryOut.from_delivery(d) for d in deliveries], next_token=token)


@router.post(
    "/api/webhooks/{webhook_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    responses={
        **BODY_ERRORS,
        404: {"model": ErrorOut, "description": "No such webhook endpoint, or no such event (kept 7 days)"},
        409: {"model": ErrorOut, "description": "The endpoint is disabled: enable it first"},
    },
    summary="Send events to a webhook endpoint again",
)
def replay(
    webhook_id: EndpointId,
    body: ReplayRequest,
    principal: PrincipalDep,
    store: WebhookStoreDep,
    events: EventStoreDep,
    queue: DeliveryQueueDep,
) -> ReplayOut:
    """`{"event_id"}`: that event, whatever became of its delivery. `{"since", "until"}`: every
    delivery of the window that failed. Each is sent with its original webhook-id (receivers
    deduplicate on it). When the window holds more than 1000, next_since says where to resume."""
    replayed = service.replay(store, events, queue, principal, webhook_id, body, now=utc_now())
    return ReplayOut(scheduled=replayed.scheduled, refused=replayed.refused, next_since=replayed.next_since)


@router.get(
    "/api/events",
    tags=["events"],
    response_model=EventListOut,
    responses=AUTH_ERRORS,
    summary="The account's events of the last 7 days, oldest first",
)
def list_events(
    principal: PrincipalDep,
    events: EventStoreDep,
    after: Annotated[
        str | None,
        Query(
            pattern=EVENT_ID_PATTERN,
            description="The cursor: an event id (next_cursor of the previous answer); events after it.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE)] = DEFAULT_EVENT_PAGE,
) -> EventListOut:
    """The same bodies the webhooks deliver, for a receiver that missed some or polls instead."""
    page = service.list_events(events, principal, after=after, limit=limit)
    return EventListOut(
        events=[EventOut.from_stored(e) for e in page.events], next_cursor=page.next_cursor, has_more=page.has_more
    )
