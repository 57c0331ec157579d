"""Publishing events over the in-memory stores (taskapi.webhooks.publish): stored once, fanned out
to the endpoints that want them, put on the bus; a replayed batch sends nothing twice, a run that
crashed between steps completes on redelivery; group.completed once per completion; upload events
from the ingest; the events function over a stream batch."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from taskapi.errors import Retryable
from taskapi.models.domain import TaskStatus
from taskapi.results import InMemoryResultStore
from taskapi.settings import Settings
from taskapi.uploads.model import UploadStatus
from taskapi.webhooks.events import events_of_records
from taskapi.webhooks.eventstore import MemoryEventStore
from taskapi.webhooks.models import Endpoint, Secret
from taskapi.webhooks.publish import EventPublisher, MemoryEventBus, UploadEventPublisher
from taskapi.webhooks.queue import MemoryDeliveryQueue
from taskapi.webhooks.store import MemoryWebhookStore
from tests import factories
from tests.fakes import Fakes
from tests.unit.processing.support import load_function
from tests.unit.uploads.support import BUCKET, drop, ingestor, jsonl, start, stored
from tests.unit.webhooks.stream_support import (
    ACCOUNT,
    COUNTERS_TABLE,
    TASKS_TABLE,
    at,
    counter_image,
    counter_record,
    lifecycle,
    task_record,
)

NOW = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)


class Push:
    """The publisher over memory stores, with a clock inside the events' 7 days."""

    def __init__(self) -> None:
        self.events = MemoryEventStore(clock=lambda: NOW)
        self.webhooks = MemoryWebhookStore()
        self.queue = MemoryDeliveryQueue()
        self.bus = MemoryEventBus()
        self.publisher = EventPublisher(self.events, self.webhooks, self.queue, self.bus, clock=lambda: NOW)

    def endpoint(self, endpoint_id: str, account_id: str = ACCOUNT, **fields: Any) -> Endpoint:
        endpoint = Endpoint(
            endpoint_id=endpoint_id,
            account_id=account_id,
            url=f"https://hooks.example.com/{endpoint_id}",
            secrets=[Secret(secret="whsec_" + "A" * 44)],
            created_at=at(0),
            updated_at=at(0),
            **fields,
        )
        return self.webhooks.create_endpoint(endpoint, limit=10)

    def sent(self) -> Counter[tuple[str, str]]:
        """(endpoint_id, event type) -> delivery messages sent."""
        types = {(e.account_id, e.event_id): e.type for e in self.events.events.values()}
        return Counter((m.endpoint_id, types[(m.account_id, m.event_id)]) for m, _ in self.queue.sent)

    def bus_types(self) -> list[str]:
        return [json.loads(entry["Detail"])["type"] for entry in self.bus.entries]


def derive(records: list[dict[str, Any]]):
    return events_of_records(
        records, tasks_table=TASKS_TABLE, counters_table=COUNTERS_TABLE, results=InMemoryResultStore()
    )


def task_events():
    return derive([task_record(old, new) for old, new in lifecycle()])


@pytest.fixture
def push() -> Push:
    return Push()


# ------------------------------------------------------------------ fan-out
def test_each_endpoint_gets_the_events_it_wants(push):
    push.endpoint("we_defaults")
    push.endpoint("we_completed", events=["task.completed"])
    push.endpoint("we_progress", events=["task.progress", "task.started"])
    push.endpoint("we_other_group", task_source_group_id="g2")
    push.endpoint("we_same_group", task_source_group_id="g1", events=["task.completed"])
    push.endpoint("we_disabled", enabled=False, disabled_reason="410 Gone")
    push.endpoint("we_other_account", account_id="acct_b")

    report = push.publisher.publish(task_events())

    assert push.sent() == Counter(
        {
            ("we_defaults", "task.queued"): 1,
            ("we_defaults", "task.started"): 1,
            ("we_defaults", "task.completed"): 1,
            ("we_completed", "task.completed"): 1,
            ("we_progress", "task.progress"): 1,
            ("we_progress", "task.started"): 1,
            ("we_same_group", "task.completed"): 1,
        }
    )
    assert report.stored == 4
    assert report.deliveries == 7
    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]  # no progress on the bus
    assert {entry["DetailType"] for entry in push.bus.entries} == {"Task State Change"}
    assert all(e.fanned_out and e.bus_sent for e in push.events.events.values())  # progress: nothing for the bus


def test_a_replayed_batch_stores_and_sends_nothing_twice(push):
    push.endpoint("we_defaults")
    events = task_events()
    push.publisher.publish(events)
    sent, bus = list(push.queue.sent), list(push.bus.entries)

    again = push.publisher.publish(task_events())

    assert again.stored == 0
    assert again.deliveries == 0
    assert again.bus_sent == 0
    assert push.queue.sent == sent
    assert push.bus.entries == bus
    assert len(push.webhooks.deliveries) == 3


def test_an_event_stored_before_a_crash_is_fanned_out_and_put_on_the_bus_on_redelivery(push):
    push.endpoint("we_defaults")
    events = task_events()
    for event in events:  # the previous run stored them, then died
        push.events.put_many([event])

    report = push.publisher.publish(events)

    assert report.stored == 0
    assert push.sent() == Counter({("we_defaults", t): 1 for t in ("task.queued", "task.started", "task.completed")})
    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]


def test_a_refused_queue_send_raises_and_the_redelivery_sends_only_what_is_missing(push):
    push.endpoint("we_defaults")
    push.queue.refuse = lambda message: "throttled"

    with pytest.raises(Retryable):
        push.publisher.publish(task_events())

    assert push.queue.sent == []
    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]  # the bus step still ran
    push.queue.refuse = None
    push.publisher.publish(task_events())
    assert push.sent() == Counter({("we_defaults", t): 1 for t in ("task.queued", "task.started", "task.completed")})
    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]  # not again


def test_a_crash_before_the_fan_out_is_recorded_makes_no_second_delivery(push):
    push.endpoint("we_defaults")
    store, writes = push.events.put_many, []

    def crashing(events):
        writes.append(len(events))
        if len(writes) == 2:  # the first stores the events, the second records what was sent
            raise RuntimeError("the function timed out")
        store(events)

    push.events.put_many = crashing
    with pytest.raises(RuntimeError):
        push.publisher.publish(task_events())
    push.events.put_many = store
    push.publisher.publish(task_events())

    assert len(push.webhooks.deliveries) == 3  # one delivery per (endpoint, event)
    assert all(d.status == "pending" and d.attempts == 0 for d in push.webhooks.deliveries.values())
    # The bus took them before they were stored, and their record said so: not sent again.
    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]
    assert all(e.fanned_out and e.bus_sent for e in push.events.events.values())


def test_an_event_nothing_wants_is_stored_done_in_one_write(push):
    publisher = EventPublisher(push.events, push.webhooks, push.queue, None, clock=lambda: NOW)
    marks = []
    original = push.events.put_many
    push.events.put_many = lambda events: marks.append(len(events)) or original(events)

    report = publisher.publish(task_events())

    assert report.stored == len(task_events())
    assert marks == [len(task_events())]  # stored in one go; no endpoint and no bus: nothing to record after
    assert all(e.fanned_out and e.bus_sent for e in push.events.events.values())
    assert push.queue.sent == []


def test_a_refused_bus_put_is_retried_alone(push):
    push.endpoint("we_defaults")
    push.bus.refuse = lambda event: "ThrottlingException" if event.type == "task.completed" else None

    with pytest.raises(Retryable):
        push.publisher.publish(task_events())
    push.bus.refuse = None
    push.publisher.publish(task_events())

    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]
    assert sum(push.sent().values()) == 3


def test_without_a_bus_events_are_still_stored_and_delivered(push):
    push.endpoint("we_defaults")
    publisher = EventPublisher(push.events, push.webhooks, push.queue, None, clock=lambda: NOW)

    publisher.publish(task_events())

    assert sum(push.sent().values()) == 3
    assert push.bus.entries == []
    assert all(e.fanned_out and e.bus_sent for e in push.events.events.values())  # nothing left to send


# ------------------------------------------------------------------ groups
def test_group_completed_is_sent_once_per_completion_and_again_after_a_reopen(push):
    push.endpoint("we_defaults")
    open_ = counter_image("g1", rev=1, changed_at=at(1), QUEUED=2)
    closed = counter_image("g1", rev=2, changed_at=at(2), COMPLETED=1, FAILED=1, QUEUED=0)
    reopened = counter_image("g1", rev=3, changed_at=at(3), COMPLETED=0, FAILED=1, PENDING=1, QUEUED=0)
    closed_again = counter_image("g1", rev=4, changed_at=at(9), COMPLETED=1, FAILED=1, PENDING=0, QUEUED=0)
    first = [counter_record(open_, closed)]

    push.publisher.publish(derive(first))
    push.publisher.publish(derive(first))  # the batch replayed
    assert push.sent() == Counter({("we_defaults", "group.completed"): 1})
    push.publisher.publish(derive([counter_record(closed, reopened), counter_record(reopened, closed_again)]))

    assert push.sent() == Counter({("we_defaults", "group.completed"): 2})
    assert [entry["DetailType"] for entry in push.bus.entries] == ["Group Completed", "Group Completed"]
    counts = [json.loads(entry["Detail"])["data"]["counts"] for entry in push.bus.entries]
    assert [(c["COMPLETED"], c["FAILED"]) for c in counts] == [(1, 1), (1, 1)]


# ------------------------------------------------------------------ uploads (the ingest's hook)
def test_an_ingested_upload_sends_upload_completed_once(push):
    fakes = Fakes()
    push.endpoint("we_defaults", events=["upload.completed", "upload.failed"])
    ingest = ingestor(fakes, on_final=UploadEventPublisher(push.publisher, fakes.upload_files))
    upload = start(fakes, group="g7")
    drop(fakes, upload, jsonl(factories.video(), factories.quiz()))

    ingest.ingest(BUCKET, upload.object_key, 10)
    ingest.ingest(BUCKET, upload.object_key, 10)  # S3 delivers the notification twice

    assert push.sent() == Counter({("we_defaults", "upload.completed"): 1})
    (event,) = push.events.events.values()
    body = json.loads(event.body)
    assert body["data"]["upload_id"] == upload.upload_id
    assert (body["data"]["created"], body["group_id"]) == (2, "g7")
    assert body["data"]["report_url"]


def test_an_upload_event_that_could_not_be_sent_is_sent_when_the_notification_comes_back(push):
    fakes = Fakes()
    push.endpoint("we_defaults", events=["upload.failed"])
    ingest = ingestor(fakes, on_final=UploadEventPublisher(push.publisher, fakes.upload_files))
    upload = start(fakes)
    drop(fakes, upload, b"")  # an empty file: the upload fails
    push.queue.refuse = lambda message: "throttled"

    with pytest.raises(Retryable):
        ingest.ingest(BUCKET, upload.object_key, 0)
    assert stored(fakes, upload).status is UploadStatus.FAILED
    push.queue.refuse = None
    ingest.ingest(BUCKET, upload.object_key, 0)  # the message comes back: the upload is final

    assert push.sent() == Counter({("we_defaults", "upload.failed"): 1})


# ------------------------------------------------------------------ the events function
def test_the_events_function_publishes_a_stream_batch_of_both_tables(push):
    push.endpoint("we_defaults")
    module = load_function("events")
    queued = lifecycle()[0][1]
    group = counter_record(
        counter_image("g1", rev=1, changed_at=at(1), QUEUED=1),
        counter_image("g1", rev=2, changed_at=at(2), QUEUED=0, CANCELLED=1),
    )
    batch = {"Records": [task_record(None, queued), group]}
    settings = Settings(tasks_table=TASKS_TABLE, counters_table=COUNTERS_TABLE)

    report = module.publish_batch(batch, publisher=push.publisher, results=InMemoryResultStore(), settings=settings)

    assert report.stored == 2
    assert push.sent() == Counter({("we_defaults", "task.queued"): 1, ("we_defaults", "group.completed"): 1})
    push.queue.refuse = lambda message: "throttled"
    batch["Records"].append(task_record(queued, queued.moved_to(TaskStatus.CANCELLED, at(5), "cancelled", version=2)))
    with pytest.raises(Retryable):  # Lambda delivers the batch again
        module.publish_batch(batch, publisher=push.publisher, results=InMemoryResultStore(), settings=settings)


def test_an_event_only_the_bus_takes_is_put_on_it_and_stored_in_one_write(push):
    marks = []
    original = push.events.put_many
    push.events.put_many = lambda events: marks.append(len(events)) or original(events)

    push.publisher.publish(task_events())
    push.publisher.publish(task_events())  # the batch replayed

    assert marks == [len(task_events())]  # stored once, the bus's puts recorded in it; the replay writes nothing
    assert push.bus_types() == ["task.queued", "task.started", "task.completed"]
    assert all(e.bus_sent for e in push.events.events.values())
