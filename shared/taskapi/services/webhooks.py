"""Webhook rules behind /api/webhooks and /api/events: an account's endpoints (where they may point,
how many), their secrets, their deliveries, replays, and the account's recent events. Every call is
scoped to the caller's account: another account's endpoint is not found, exactly like a missing one."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit

from taskapi.auth.principal import Principal
from taskapi.errors import Conflict, InvalidFields, NotFound
from taskapi.media.addresses import address_refusal
from taskapi.models.domain import isoformat
from taskapi.models.webhooks import ReplayRequest, WebhookCreate, WebhookUpdate
from taskapi.observability import logger, metrics, tracer
from taskapi.settings import Settings
from taskapi.webhooks.eventstore import EventStore
from taskapi.webhooks.models import DEFAULT_EVENT_TYPES, Delivery, Endpoint, Secret, StoredEvent, new_endpoint_id
from taskapi.webhooks.queue import DeliveryQueue
from taskapi.webhooks.signing import new_secret
from taskapi.webhooks.store import EndpointLimitReached, WebhookStore

SAVE_ATTEMPTS = 3
"""Deliveries update an endpoint too (leases, failing_since): a change lost to one is re-applied."""
REPLAY_PAGE = 100
MAX_REPLAY = 1000
"""Failed deliveries one replay call sends again; a larger window answers next_since."""
T = TypeVar("T")


# ---------------------------------------------------------------------- where an endpoint may point
def _url_problem(message: str, kind: str = "webhook_url") -> InvalidFields:
    return InvalidFields([{"loc": ["body", "url"], "msg": message, "type": kind}])


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    ip = _literal_ip(host)
    if ip is not None:
        return ip.is_loopback
    return host == "localhost"


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError:
        raise _url_problem("is not a URL: its host or port cannot be read") from None
    return parts


def check_url(url: str, settings: Settings) -> str:
    """The URL an endpoint may have, or InvalidFields (422 on body.url): an absolute https URL
    with a host, no credentials and no fragment; http only on the local stack and to a loopback
    host (a receiver on the developer's machine). A literal address must be a public one (locally,
    loopback too); names are resolved and vetted at every delivery, where DNS may have changed."""
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    local = settings.environment == "local"
    if scheme not in ("http", "https") or not host:
        raise _url_problem("must be an absolute https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _url_problem("must not carry credentials (user:password@); authenticate with the signature")
    if parts.fragment or url.endswith("#"):
        raise _url_problem("must not have a fragment (#...)")
    if scheme == "http" and not (local and _is_loopback(host)):
        where = "outside the local stack" if not local else "except to a loopback host (localhost, 127.0.0.1, ::1)"
        raise _url_problem(f"must use https {where}", kind="webhook_url_scheme")
    ip = _literal_ip(host)
    refusal = None if ip is None else address_refusal(ip, allow_loopback=local)
    if refusal is None and ip is None and _is_loopback(host) and not local:
        refusal = "a loopback address"
    if refusal is not None:
        raise _url_problem(f"must not point to {refusal}", kind="webhook_url_address")
    return url


# ---------------------------------------------------------------------- endpoints
def _found(store: WebhookStore, principal: Principal, endpoint_id: str) -> Endpoint:
    endpoint = store.get_endpoint(principal.account_id, endpoint_id)
    if endpoint is None or endpoint.account_id != principal.account_id:
        raise NotFound(f"Webhook {endpoint_id} not found")
    return endpoint


def _room_for_one(store: WebhookStore, principal: Principal, limit: int) -> None:
    if len(store.list_endpoints(principal.account_id)) >= limit:
        raise EndpointLimitReached(
            f"An account may have at most {limit} webhook endpoints; delete one before adding another"
        )


@dataclass(frozen=True)
class Created:
    endpoint: Endpoint
    secret: str
    """Answered this once; stored only on the endpoint."""


@tracer.capture_method
def create_endpoint(
    store: WebhookStore, principal: Principal, body: WebhookCreate, *, settings: Settings, now: datetime
) -> Created:
    """A new endpoint with a new secret. At most settings.webhook_max_endpoints per account
    (Conflict beyond: checked first for a clear answer, and by the store under a race)."""
    url = check_url(body.url, settings)
    _room_for_one(store, principal, settings.webhook_max_endpoints)
    secret = new_secret()
    stamp = isoformat(now)
    endpoint = Endpoint(
        endpoint_id=new_endpoint_id(),
        account_id=principal.account_id,
        url=url,
        events=list(body.events or DEFAULT_EVENT_TYPES),
        task_source_group_id=body.task_source_group_id,
        description=body.description,
        secrets=[Secret(secret=secret)],
        created_at=stamp,
        updated_at=stamp,
    )
    stored = store.create_endpoint(endpoint, limit=settings.webhook_max_endpoints)
    logger.info("webhook endpoint created", extra={"endpoint_id": stored.endpoint_id, "events": stored.events})
    metrics.add_metric(name="WebhookEndpointsCreated", unit="Count", value=1)
    return Created(endpoint=stored, secret=secret)


def list_endpoints(store: WebhookStore, principal: Principal) -> list[Endpoint]:
    endpoints = [e for e in store.list_endpoints(principal.account_id) if e.account_id == principal.account_id]
    return sorted(endpoints, key=lambda e: (e.created_at, e.endpoint_id))


def get_endpoint(store: WebhookStore, principal: Principal, endpoint_id: str) -> Endpoint:
    return _found(store, principal, endpoint_id)


def _save_with_retry(
    store: WebhookStore, principal: Principal, endpoint_id: str, change: Callable[[Endpoint], tuple[Endpoint, T]]
) -> tuple[Endpoint, T]:
    """Apply `change` to the stored endpoint and save it on its version; a save lost to a
    concurrent update (a delivery taking a lease) reads again and re-applies the change."""
    for attempt in range(SAVE_ATTEMPTS):
        current = _found(store, principal, endpoint_id)
        changed, extra = change(current)
        try:
            return store.save_endpoint(changed, expected_version=current.version), extra
        except Conflict:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@tracer.capture_method
def update_endpoint(
    store: WebhookStore,
    principal: Principal,
    endpoint_id: str,
    body: WebhookUpdate,
    *,
    settings: Settings,
    now: datetime,
) -> Endpoint:
    """Changes the fields the body names. Enabling clears disabled_reason and the failure run, so
    the 3-day count starts afresh; disabling (by you) leaves disabled_reason null."""
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    if "url" in given and body.url is not None:
        changes["url"] = check_url(body.url, settings)
    if "events" in given and body.events is not None:
        changes["events"] = list(body.events)
    for name in ("task_source_group_id", "description"):
        if name in given:
            changes[name] = getattr(body, name)
    if "enabled" in given and body.enabled is not None:
        changes.update(enabled=body.enabled, disabled_reason=None)
        if body.enabled:
            changes["failing_since"] = None

    def change(current: Endpoint) -> tuple[Endpoint, None]:
        return current.model_copy(update={**changes, "updated_at": isoformat(now)}), None

    updated, _ = _save_with_retry(store, principal, endpoint_id, change)
    logger.info("webhook endpoint updated", extra={"endpoint_id": endpoint_id, "fields": sorted(given)})
    return updated


def delete_endpoint(store: WebhookStore, principal: Principal, endpoint_id: str) -> None:
    """Deliveries still queued for it are dropped by the worker (the endpoint is gone)."""
    _found(store, principal, endpoint_id)
    if not store.delete_endpoint(principal.account_id, endpoint_id):
        raise NotFound(f"Webhook {endpoint_id} not found")
    logger.info("webhook endpoint deleted", extra={"endpoint_id": endpoint_id})


@dataclass(frozen=True)
class Rotated:
    endpoint: Endpoint
    secret: str
    previous_expires_at: str | None


@tracer.capture_method
def rotate_secret(
    store: WebhookStore, principal: Principal, endpoint_id: str, *, grace_seconds: int, now: datetime
) -> Rotated:
    """A new current secret. The previous one keeps signing for grace_seconds (receivers can
    switch without losing a delivery); older rotated-out ones keep their own expiry, and expired
    ones are dropped."""
    secret = new_secret()
    expires = isoformat(now + timedelta(seconds=grace_seconds)) if grace_seconds > 0 else None
    stamp = isoformat(now)

    def change(current: Endpoint) -> tuple[Endpoint, None]:
        kept = [Secret(secret=secret)]
        if expires is not None:
            for old in current.secrets:
                if old.expires_at is None:
                    kept.append(Secret(secret=old.secret, expires_at=expires))
                elif old.expires_at > stamp:
                    kept.append(old)
        return current.model_copy(update={"secrets": kept, "updated_at": stamp}), None

    updated, _ = _save_with_retry(store, principal, endpoint_id, change)
    logger.info("webhook secret rotated", extra={"endpoint_id": endpoint_id, "grace_seconds": grace_seconds})
    return Rotated(endpoint=updated, secret=secret, previous_expires_at=expires)


# ---------------------------------------------------------------------- deliveries and replays
def list_deliveries(
    store: WebhookStore, principal: Principal, endpoint_id: str, *, status: str | None, limit: int, after: str | None
) -> tuple[list[Delivery], str | None]:
    _found(store, principal, endpoint_id)
    return store.list_deliveries(endpoint_id, status=status, limit=limit, after=after)


@dataclass(frozen=True)
class Replayed:
    scheduled: list[str]
    refused: dict[str, str]
    next_since: str | None = None


def _failed_in_window(
    store: WebhookStore, endpoint_id: str, since: datetime, until: datetime
) -> tuple[list[Delivery], str | None]:
    """The endpoint's failed deliveries whose event was created in [since, until] (event ids
    begin with their creation time, so the delivery items sort by it), at most MAX_REPLAY; and
    where to resume when there are more."""
    low = "evt_" + since.strftime("%Y%m%d%H%M%S%f")
    high = "evt_" + until.strftime("%Y%m%d%H%M%S%f") + "~"
    found: list[Delivery] = []
    after: str | None = low
    while after is not None:
        page, after = store.list_deliveries(endpoint_id, status="failed", limit=REPLAY_PAGE, after=after)
        for delivery in page:
            if delivery.event_id > high:
                return found, None
            if delivery.event_id >= low:
                found.append(delivery)
            if len(found) == MAX_REPLAY:
                return found, _created_at_of(delivery.event_id)
    return found, None


def _created_at_of(event_id: str) -> str:
    """The creation time an event id begins with (evt_YYYYMMDDHHMMSSffffff_...)."""
    return isoformat(datetime.strptime(event_id[4:24], "%Y%m%d%H%M%S%f").replace(tzinfo=UTC))


@tracer.capture_method
def replay(
    store: WebhookStore,
    events: EventStore,
    queue: DeliveryQueue,
    principal: Principal,
    endpoint_id: str,
    body: ReplayRequest,
    *,
    now: datetime,
) -> Replayed:
    """Sends events to the endpoint again, with their original webhook-id: one event by id
    (whatever became of its delivery), or every failed delivery of a window. Events are kept 7
    days: an older one is refused by id. A disabled endpoint is a Conflict (enable it first)."""
    endpoint = _found(store, principal, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(f"Webhook {endpoint_id} is disabled; enable it (PATCH enabled=true) before replaying")
    refused: dict[str, str] = {}
    chosen: list[StoredEvent] = []
    next_since: str | None = None
    if body.event_id is not None:
        event = events.get(principal.account_id, body.event_id)
        if event is None:
            raise NotFound(f"Event {body.event_id} not found (events are kept 7 days)")
        current = store.get_delivery(endpoint_id, event.event_id)
        if current is not None and current.status == "pending" and current.attempts > 0:
            refused[event.event_id] = f"its delivery is under way ({current.attempts} attempts so far)"
        else:
            chosen.append(event)
    else:
        assert body.since is not None
        assert body.until is not None
        failed, next_since = _failed_in_window(store, endpoint_id, body.since, body.until)
        for delivery in failed:
            stored = events.get(principal.account_id, delivery.event_id)
            if stored is None:
                refused[delivery.event_id] = "the event is no longer kept (7 days)"
            else:
                chosen.append(stored)
    if chosen:
        # Loaded on a replay only: the rest of the API never needs the delivery machinery (cold start).
        from taskapi.webhooks.delivery import schedule_deliveries

        refused.update(schedule_deliveries(store, queue, endpoint, chosen, now=now, replay=True))
    scheduled = [e.event_id for e in chosen if e.event_id not in refused]
    logger.info(
        "webhook replay", extra={"endpoint_id": endpoint_id, "scheduled": len(scheduled), "refused": len(refused)}
    )
    metrics.add_metric(name="WebhookReplays", unit="Count", value=len(scheduled))
    return Replayed(scheduled=scheduled, refused=refused, next_since=next_since)


# ---------------------------------------------------------------------- the account's events
@dataclass(frozen=True)
class EventPage:
    events: list[StoredEvent]
    next_cursor: str | None
    has_more: bool


def list_events(events: EventStore, principal: Principal, *, after: str | None, limit: int) -> EventPage:
    """The account's events after the cursor (an event id), oldest first. The next cursor is the
    last event answered, or the one given when nothing newer exists yet, so a poller keeps it."""
    page = events.after(principal.account_id, after, limit + 1)
    has_more = len(page) > limit
    page = [e for e in page[:limit] if e.account_id == principal.account_id]
    cursor = page[-1].event_id if page else after
    return EventPage(events=page, next_cursor=cursor, has_more=has_more)
