"""The webhook adapters on moto, with WebhooksTable and WebhookDeliveryQueue built from
template.yaml (the aws_env fixture): endpoints and their limit, optimistic saves, leases that
expire, deliveries and their pages; the delivery queue; and the delivery function end to end
(the receiver is a recording fake: the real POST is tests/unit/webhooks/test_delivery.py's)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taskapi import aws
from taskapi.errors import Conflict
from taskapi.models.domain import isoformat
from taskapi.webhooks.delivery import Deliverer, schedule_deliveries
from taskapi.webhooks.models import (
    Delivery,
    DeliveryMessage,
    Endpoint,
    Secret,
    StoredEvent,
    event_id_for,
    new_endpoint_id,
)
from taskapi.webhooks.queue import SqsDeliveryQueue
from taskapi.webhooks.signing import new_secret
from taskapi.webhooks.store import DynamoWebhookStore, EndpointLimitReached
from taskapi.webhooks.transport import PostResult
from tests import factories
from tests.unit.processing.support import load_function, sqs_event, sqs_record

ACCOUNT = "acct-1"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STAMP = isoformat(NOW)


@pytest.fixture
def store(aws_env, dynamodb) -> DynamoWebhookStore:
    return DynamoWebhookStore(dynamodb, aws_env["WebhooksTable"])


@pytest.fixture
def queue(aws_env) -> SqsDeliveryQueue:
    return SqsDeliveryQueue(aws.client("sqs"), aws_env["WebhookDeliveryQueue"])


def endpoint(account_id: str = ACCOUNT, **fields: Any) -> Endpoint:
    values: dict[str, Any] = {
        "endpoint_id": new_endpoint_id(),
        "account_id": account_id,
        "url": "https://hooks.example/in?token=abc",
        "secrets": [Secret(secret=new_secret())],
        "created_at": STAMP,
        "updated_at": STAMP,
        **fields,
    }
    return Endpoint(**values)


def delivery(endpoint_id: str, event_id: str, status: str = "pending") -> Delivery:
    return Delivery(
        account_id=ACCOUNT,
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type="task.completed",
        status=status,
        created_at=STAMP,
        updated_at=STAMP,
    )


# ------------------------------------------------------------------ endpoints


def test_an_endpoint_reads_back_as_it_was_created(store):
    rotated = isoformat(NOW + timedelta(hours=24))
    created = endpoint(
        events=["task.completed", "group.completed"],
        task_source_group_id="g1",
        description="ops",
        secrets=[Secret(secret=new_secret()), Secret(secret=new_secret(), expires_at=rotated)],
    )

    store.create_endpoint(created, limit=10)

    assert store.get_endpoint(ACCOUNT, created.endpoint_id) == created
    assert store.list_endpoints(ACCOUNT) == [created]
    assert store.list_endpoints("acct-other") == []
    assert store.get_endpoint("acct-other", created.endpoint_id) is None


def test_an_account_has_at_most_its_limit_of_endpoints_and_a_delete_frees_one(store):
    made = [store.create_endpoint(endpoint(), limit=3) for _ in range(3)]
    store.create_endpoint(endpoint("acct-other"), limit=3)  # another account's count is its own

    with pytest.raises(EndpointLimitReached, match="at most 3"):
        store.create_endpoint(endpoint(), limit=3)
    assert store.delete_endpoint(ACCOUNT, made[0].endpoint_id)
    assert not store.delete_endpoint(ACCOUNT, made[0].endpoint_id)  # gone already: the count stays right
    store.create_endpoint(endpoint(), limit=3)
    with pytest.raises(EndpointLimitReached):
        store.create_endpoint(endpoint(), limit=3)
    assert len(store.list_endpoints(ACCOUNT)) == 3


def test_a_save_on_a_stale_version_is_a_conflict_and_cleared_fields_are_removed(store):
    created = store.create_endpoint(endpoint(description="first"), limit=10)

    saved = store.save_endpoint(
        created.model_copy(update={"enabled": False, "disabled_reason": "410"}), expected_version=0
    )
    with pytest.raises(Conflict):
        store.save_endpoint(created.model_copy(update={"url": "https://other.example/"}), expected_version=0)
    store.save_endpoint(
        saved.model_copy(update={"enabled": True, "disabled_reason": None, "description": None}), expected_version=1
    )

    stored = store.get_endpoint(ACCOUNT, created.endpoint_id)
    assert stored is not None
    assert (stored.enabled, stored.disabled_reason, stored.description, stored.version) == (True, None, None, 2)
    assert stored.url == created.url


# ------------------------------------------------------------------ leases


def test_leases_bound_the_slots_expire_and_survive_an_endpoint_save(store):
    created = store.create_endpoint(endpoint(), limit=10)
    ep = created.endpoint_id
    soon, later = isoformat(NOW + timedelta(seconds=60)), isoformat(NOW + timedelta(seconds=600))

    taken = [store.acquire_lease(ACCOUNT, ep, f"l{n}", now=STAMP, expires_at=soon, limit=4) for n in range(5)]
    store.save_endpoint(created.model_copy(update={"description": "edited"}), expected_version=0)

    assert taken == [True, True, True, True, False]
    assert set(store.get_endpoint(ACCOUNT, ep).leases) == {"l0", "l1", "l2", "l3"}
    store.release_lease(ACCOUNT, ep, "l0")
    assert store.acquire_lease(ACCOUNT, ep, "l4", now=STAMP, expires_at=later, limit=4)
    assert not store.acquire_lease(ACCOUNT, ep, "l5", now=STAMP, expires_at=later, limit=4)
    after_expiry = isoformat(NOW + timedelta(seconds=61))  # l1..l3 were a crashed worker's
    assert store.acquire_lease(ACCOUNT, ep, "l6", now=after_expiry, expires_at=later, limit=4)
    assert set(store.get_endpoint(ACCOUNT, ep).leases) == {"l4", "l6"}


def test_leases_of_a_deleted_endpoint_are_refused_and_released_quietly(store):
    created = store.create_endpoint(endpoint(), limit=10)
    store.delete_endpoint(ACCOUNT, created.endpoint_id)

    assert not store.acquire_lease(ACCOUNT, created.endpoint_id, "l", now=STAMP, expires_at=STAMP, limit=4)
    store.release_lease(ACCOUNT, created.endpoint_id, "l")


# ------------------------------------------------------------------ deliveries


def test_a_delivery_is_stored_once_and_kept_30_days(store, dynamodb, aws_env):
    first = delivery("we_1", "evt_1")

    assert store.put_delivery_if_absent(first)
    assert not store.put_delivery_if_absent(first.model_copy(update={"status": "failed"}))
    assert store.get_delivery("we_1", "evt_1") == first
    item = dynamodb.get_item(TableName=aws_env["WebhooksTable"], Key={"pk": {"S": "D#we_1"}, "sk": {"S": "evt_1"}})
    assert int(item["Item"]["expires_at"]["N"]) == int((NOW + timedelta(days=30)).timestamp())

    store.save_delivery(first.model_copy(update={"status": "failed", "attempts": 8, "last_status_code": 500}))
    saved = store.get_delivery("we_1", "evt_1")
    assert (saved.status, saved.attempts, saved.last_status_code) == ("failed", 8, 500)


def test_deliveries_page_by_event_id_with_a_status_filter(store):
    for n in range(30):
        store.put_delivery_if_absent(delivery("we_1", f"evt_{n:03}", "failed" if n % 3 == 0 else "succeeded"))
    store.put_delivery_if_absent(delivery("we_2", "evt_000", "failed"))

    failed, cursor = store.list_deliveries("we_1", status="failed", limit=4, after=None)
    rest, end = store.list_deliveries("we_1", status="failed", limit=10, after=cursor)
    everything, _ = store.list_deliveries("we_1", status=None, limit=100, after=None)

    assert [d.event_id for d in failed] == ["evt_000", "evt_003", "evt_006", "evt_009"]
    assert cursor == "evt_009"
    assert [d.event_id for d in rest] == [f"evt_{n:03}" for n in range(12, 30, 3)]
    assert end is None
    assert len(everything) == 30


# ------------------------------------------------------------------ the queue and the function


def received(aws_env) -> list[dict[str, Any]]:
    """The bodies of up to 10 messages on the delivery queue (taken: they become invisible)."""
    answer = aws.client("sqs").receive_message(QueueUrl=aws_env["WebhookDeliveryQueue"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def test_the_queue_sends_by_tens_and_refuses_a_delay_sqs_cannot_make(queue, aws_env):
    messages = [DeliveryMessage(account_id=ACCOUNT, endpoint_id="we_1", event_id=f"evt_{n}") for n in range(12)]

    assert queue.send(messages) == {}
    bodies = [body for _ in range(3) for body in received(aws_env)]
    assert sorted(b["event_id"] for b in bodies) == sorted(m.event_id for m in messages)
    with pytest.raises(ValueError, match=r"0\.\.900"):
        queue.send(messages[:1], delay_seconds=901)


def test_an_unconfigured_queue_refuses_every_message_rather_than_dropping_it():
    message = DeliveryMessage(account_id=ACCOUNT, endpoint_id="we_1", event_id="evt_1")

    assert SqsDeliveryQueue(client=None, url="").send([message, message]) == {
        0: "no webhook delivery queue is configured",
        1: "no webhook delivery queue is configured",
    }


class RecordingTransport:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], **_: Any) -> PostResult:
        self.posts.append((url, body, dict(headers)))
        return PostResult(status=self.statuses.pop(0) if self.statuses else 200)


class Events:
    def __init__(self, *events: StoredEvent) -> None:
        self.kept = {(e.account_id, e.event_id): e for e in events}

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        return self.kept.get((account_id, event_id))


def test_the_delivery_function_delivers_and_fails_a_poison_message_alone(store, queue, aws_env):
    target = store.create_endpoint(endpoint(), limit=10)
    event_id = event_id_for(ACCOUNT, "t1", 3, "task.completed", STAMP)
    event = StoredEvent(account_id=ACCOUNT, event_id=event_id, type="task.completed", created_at=STAMP, body="{}")
    transport = RecordingTransport(503)
    deliverer = Deliverer(store, Events(event), queue, transport, lambda: NOW, jitter=lambda s: s)
    assert schedule_deliveries(store, queue, target, [event], now=NOW) == {}
    [first] = received(aws_env)
    function = load_function("webhook_delivery")
    function.get_deliverer = lambda: deliverer

    answer = function.handler(
        sqs_event([sqs_record(json.dumps(first), message_id="good"), sqs_record("not json", message_id="poison")]),
        factories.LambdaContext(),
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    [(url, body, headers)] = transport.posts
    assert (url, body, headers["webhook-id"]) == (target.url, b"{}", event_id)
    delayed = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws_env["WebhookDeliveryQueue"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"  # the next attempt, in 5 s
    stored = store.get_delivery(target.endpoint_id, event_id)
    assert (stored.attempts, stored.last_status_code) == (1, 503)
    assert stored.next_attempt_at == isoformat(NOW + timedelta(seconds=5))
