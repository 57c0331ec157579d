"""The push side's objects, built once per execution environment from Settings (like taskapi.wiring
for the tasks side): the webhook and event stores, the delivery queue, the event publisher and the
deliverer."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from taskapi import aws
from taskapi.settings import get_settings

if TYPE_CHECKING:
    from taskapi.webhooks.delivery import Deliverer
    from taskapi.webhooks.eventstore import EventStore
    from taskapi.webhooks.publish import EventPublisher
    from taskapi.webhooks.queue import DeliveryQueue
    from taskapi.webhooks.store import WebhookStore


@lru_cache(maxsize=1)
def get_webhook_store() -> WebhookStore:
    from taskapi.webhooks.store import DynamoWebhookStore

    return DynamoWebhookStore(aws.client("dynamodb"), get_settings().webhooks_table)


@lru_cache(maxsize=1)
def get_event_store() -> EventStore:
    from taskapi.webhooks.eventstore import DynamoEventStore

    return DynamoEventStore(aws.client("dynamodb"), get_settings().events_table)


@lru_cache(maxsize=1)
def get_delivery_queue() -> DeliveryQueue:
    from taskapi.webhooks.queue import SqsDeliveryQueue

    return SqsDeliveryQueue(aws.client("sqs"), get_settings().webhook_queue_url)


@lru_cache(maxsize=1)
def get_event_publisher() -> EventPublisher:
    from taskapi.webhooks.publish import EventBridgeBus, EventPublisher

    settings = get_settings()
    bus = EventBridgeBus(aws.client("events"), settings.event_bus_name) if settings.event_bus_name else None
    return EventPublisher(get_event_store(), get_webhook_store(), get_delivery_queue(), bus)


@lru_cache(maxsize=1)
def get_deliverer() -> Deliverer:
    from taskapi.webhooks.delivery import Deliverer
    from taskapi.webhooks.transport import HttpTransport

    settings = get_settings()
    return Deliverer(
        get_webhook_store(),
        get_event_store(),
        get_delivery_queue(),
        HttpTransport(),
        # Receivers on loopback over http: the local stack's only (`make dev`, its tests).
        allow_loopback_http=settings.environment == "local",
        timeout_seconds=settings.webhook_timeout_seconds,
        retry_delays=settings.webhook_retry_delays_seconds,
    )


def reset() -> None:
    """Forget every object built (tests change the environment between cases)."""
    for getter in (get_webhook_store, get_event_store, get_delivery_queue, get_event_publisher, get_deliverer):
        getter.cache_clear()
