"""Issue 16: what push adds to a task's DynamoDB bill. The tasks table's stream records of the lives
of 100 quiz, video, documentation and animated_lesson tasks (tests/perf/task_lifecycle.py's bulk)
become their events (task.queued, task.started, task.completed), published in batches of 100 (the
EventsFunction mapping's BatchSize) by the real EventPublisher on moto's EventsTable and
WebhooksTable, metered by tests/support/capacity.py: with no endpoint (every event still kept 7
days for GET /api/events; the bus takes them before they are stored), and with one endpoint for
task.completed, whose deliveries are then made by the real Deliverer (the receiver's 200 on the
first attempt through a transport double: the HTTP exchange is not DynamoDB's business).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.provision import provision
from infra.template import LocalNames
from taskapi.counting.apply import Change
from taskapi.webhooks.delivery import Deliverer
from taskapi.webhooks.events import task_change_event
from taskapi.webhooks.eventstore import DynamoEventStore
from taskapi.webhooks.models import DeliveryMessage, Endpoint, Secret, StoredEvent
from taskapi.webhooks.publish import EventPublisher, MemoryEventBus
from taskapi.webhooks.queue import MemoryDeliveryQueue
from taskapi.webhooks.store import DynamoWebhookStore
from taskapi.webhooks.transport import PostResult
from tests.perf.support import Figure, Recorder
from tests.perf.task_lifecycle import BULK, Measured, measure
from tests.support.capacity import Capacity, CapacityMeter

BATCH = 100
"""EventsFunction's TaskChanges BatchSize (template.yaml)."""


class Accepting:
    """A receiver answering 200 to every POST."""

    def post(
        self, url: str, body: bytes, headers: Any, *, timeout_seconds: float, allow_loopback_http: bool
    ) -> PostResult:
        return PostResult(200)


@pytest.fixture(scope="module")
def events() -> list[StoredEvent]:
    measured: Measured = measure()
    found = [task_change_event(Change.from_record(record), None) for record in measured.bulk_records]
    return [event for event in found if event is not None]


def _publish(events: list[StoredEvent], *, endpoint: bool) -> tuple[Capacity, Capacity]:
    """(publishing, delivering), on fresh tables."""
    with mock_aws():
        session = boto3.Session(region_name=LocalNames().region)
        return _measure(session, provision(session, LocalNames()), events, endpoint=endpoint)


def _measure(
    session: Any, refs: dict[str, str], events: list[StoredEvent], *, endpoint: bool
) -> tuple[Capacity, Capacity]:
    client = session.client("dynamodb")
    meter = CapacityMeter(client, reader=session.client("dynamodb"))
    store = DynamoEventStore(client, refs["EventsTable"])
    webhooks = DynamoWebhookStore(client, refs["WebhooksTable"])
    queue = MemoryDeliveryQueue()
    if endpoint:
        account = events[0].account_id
        webhooks.create_endpoint(
            Endpoint(
                endpoint_id="we_" + "0" * 24,
                account_id=account,
                url="https://hooks.example.com/taskapi",
                events=["task.completed"],
                secrets=[Secret(secret="whsec_" + "A" * 43 + "=")],
                created_at=events[0].created_at,
                updated_at=events[0].created_at,
            ),
            limit=10,
        )
    publisher = EventPublisher(store, webhooks, queue, MemoryEventBus())
    with meter.measuring() as published:
        for start in range(0, len(events), BATCH):
            publisher.publish(events[start : start + BATCH])
    deliverer = Deliverer(webhooks, store, queue, Accepting())
    with meter.measuring() as delivered:
        for message, _ in list(queue.sent):
            assert deliverer.deliver(DeliveryMessage.parse(message.to_json())).value == "delivered"
    meter.close()
    return published, delivered


def test_event_write_units_per_task(events: list[StoredEvent], bench: Recorder) -> None:
    assert {event.type for event in events} == {"task.queued", "task.started", "task.completed"}
    alone, nothing = _publish(events, endpoint=False)
    assert nothing.write_units() == 0
    published, delivered = _publish(events, endpoint=True)
    assert delivered.write_units() > 0
    per_event = alone.write_units() / len(events)
    print(
        f"\n[bench] push, per task ({len(events)} events of {BULK} tasks, batches of {BATCH}): "
        f"no endpoint {alone.write_units() / BULK:g} WU + {alone.read_units() / BULK:g} RU; "
        f"one endpoint for task.completed {published.write_units() / BULK:g} WU + {published.read_units() / BULK:g} RU "
        f"to publish, {delivered.write_units() / BULK:g} WU + {delivered.read_units() / BULK:g} RU to deliver"
    )
    bench.record(
        Figure(
            "push.no_endpoint.write_units_per_task",
            round(alone.write_units() / BULK, 2),
            "WRU",
            note=f"{len(events) / BULK:g} events per task kept 7 days, {per_event:g} WU each (one PutItem)",
        )
    )
    bench.record(Figure("push.no_endpoint.read_units_per_task", round(alone.read_units() / BULK, 2), "RRU"))
    bench.record(
        Figure(
            "push.one_endpoint.write_units_per_task",
            round((published.write_units() + delivered.write_units()) / BULK, 2),
            "WRU",
            note=(
                f"publish {published.write_units() / BULK:g} (events, delivery items, fan-out marks) + "
                f"deliver {delivered.write_units() / BULK:g} (lease, settle)"
            ),
        )
    )
    bench.record(
        Figure(
            "push.one_endpoint.read_units_per_task",
            round((published.read_units() + delivered.read_units()) / BULK, 2),
            "RRU",
        )
    )
