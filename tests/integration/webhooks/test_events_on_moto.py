"""Events on moto, with the tables, queue and bus of template.yaml: DynamoEventStore's listing and
flags, and the whole path from task writes to events: the tasks table's stream and the counters
table's stream (as the counters' consumer writes it) derived, stored in EventsTable, fanned out to
the WebhookDeliveryQueue and put on the custom EventBridge bus; a replayed stream adds nothing."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taskapi import aws
from taskapi.counting.apply import DynamoCounterWriter
from taskapi.models.domain import Task, TaskStatus, TaskType, isoformat
from taskapi.results import S3ResultStore
from taskapi.webhooks.events import events_of_records, make_event
from taskapi.webhooks.eventstore import DynamoEventStore
from taskapi.webhooks.models import Endpoint, Secret
from taskapi.webhooks.publish import EventBridgeBus, EventPublisher
from taskapi.webhooks.queue import SqsDeliveryQueue
from taskapi.webhooks.store import DynamoWebhookStore
from tests.integration.counting.support import changes, stream_records

ACCOUNT = "acct_a"
NOW = datetime.now(UTC)


@pytest.fixture
def event_store(aws_env, dynamodb) -> DynamoEventStore:
    return DynamoEventStore(dynamodb, aws_env["EventsTable"])


def stored_event(number: int, moment: datetime, account_id: str = ACCOUNT):
    return make_event(
        account_id=account_id,
        type="task.queued",
        subject=f"t{number}",
        sequence=1,
        created_at=isoformat(moment),
        data={"task_id": f"t{number}"},
        task_id=f"t{number}",
    )


# ------------------------------------------------------------------ the event store
def test_events_are_stored_and_read_back_with_their_flags(event_store, dynamodb, aws_env):
    event = stored_event(1, NOW)
    others = [stored_event(n, NOW) for n in range(2, 60)]  # past one BatchWriteItem (25) and more

    event_store.put_many([event, *others])
    event_store.put_many([event.model_copy(update={"fanned_out": True})])

    read = event_store.get(ACCOUNT, event.event_id)
    assert read == event.model_copy(update={"fanned_out": True})
    keys = [(ACCOUNT, e.event_id) for e in others] + [(ACCOUNT, "evt_00000000000000000000_0000000000000000")]
    assert event_store.get_many(keys) == {(ACCOUNT, e.event_id): e for e in others}
    item = dynamodb.get_item(
        TableName=aws_env["EventsTable"], Key={"account_id": {"S": ACCOUNT}, "event_id": {"S": event.event_id}}
    )["Item"]
    assert int(item["expires_at"]["N"]) == int((NOW + timedelta(days=7)).timestamp())


def test_events_are_listed_oldest_first_after_a_cursor_within_seven_days(event_store):
    old = stored_event(0, NOW - timedelta(days=8))
    recent = [stored_event(n, NOW - timedelta(minutes=200 - n)) for n in range(1, 151)]
    for event in [old, *recent, stored_event(999, NOW, account_id="acct_b")]:
        event_store.put_many([event])

    first = event_store.after(ACCOUNT, None, 120)
    rest = event_store.after(ACCOUNT, first[-1].event_id, 120)

    assert [e.event_id for e in first + rest] == [e.event_id for e in recent]
    window = event_store.between(ACCOUNT, recent[10].created_at, recent[12].created_at, 10)
    assert [e.task_id for e in window] == ["t11", "t12", "t13"]


# ------------------------------------------------------------------ from task writes to the bus
def bus_tap(aws_env) -> str:
    """A queue every event of the bus is copied to (a rule on source "taskapi")."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = aws_env["TaskEventBus"]
    events.put_rule(Name="tap", EventBusName=bus, EventPattern=json.dumps({"source": ["taskapi"]}))
    events.put_targets(Rule="tap", EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
    return url


def drain(url: str) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def task(task_id: str) -> Task:
    now = isoformat(NOW)
    return Task(
        account_id=ACCOUNT,
        task_id=task_id,
        user_id="u1",
        task_type=TaskType.QUIZ,
        status=TaskStatus.QUEUED,
        created_at=now,
        updated_at=now,
        request_data={"story_prompt": "Pythagoras"},
        task_source_group_id="g1",
    )


def finish(repo, current: Task, status: TaskStatus, seconds: int, **changes: Any) -> Task:
    moved = current.moved_to(status, isoformat(NOW + timedelta(seconds=seconds)), status.value, **changes)
    return repo.save(moved, expected_version=current.version)


def test_task_writes_become_events_on_the_queue_and_the_bus_once(aws_env, dynamodb, repo, event_store):
    tap = bus_tap(aws_env)
    webhooks = DynamoWebhookStore(dynamodb, aws_env["WebhooksTable"])
    webhooks.create_endpoint(
        Endpoint(
            endpoint_id="we_" + "0" * 24,
            account_id=ACCOUNT,
            url="https://hooks.example.com/in",
            secrets=[Secret(secret="whsec_" + "A" * 44)],
            created_at=isoformat(NOW),
            updated_at=isoformat(NOW),
        ),
        limit=10,
    )
    queue_url = aws_env["WebhookDeliveryQueue"]
    publisher = EventPublisher(
        event_store,
        webhooks,
        SqsDeliveryQueue(aws.client("sqs"), queue_url),
        EventBridgeBus(aws.client("events"), aws_env["TaskEventBus"]),
    )
    results = S3ResultStore(aws.client("s3"), aws_env["ResultsBucket"], 3600)
    one, two = task("t1"), task("t2")
    repo.insert_new([one, two])
    running = finish(repo, one, TaskStatus.PROCESSING, 1)
    finish(repo, running, TaskStatus.COMPLETED, 5, result_key="results/acct_a/t1/attempt-1/quiz.json")
    finish(repo, two, TaskStatus.CANCELLED, 6)
    DynamoCounterWriter(dynamodb, aws_env["CountersTable"]).apply(
        changes(stream_records(dynamodb, aws_env["TasksTable"]))
    )
    records = stream_records(dynamodb, aws_env["TasksTable"]) + stream_records(dynamodb, aws_env["CountersTable"])

    def publish() -> None:
        publisher.publish(
            events_of_records(
                records, tasks_table=aws_env["TasksTable"], counters_table=aws_env["CountersTable"], results=results
            )
        )

    publish()
    deliveries = drain(queue_url)
    on_bus = drain(tap)
    publish()  # the same batches delivered again

    types = Counter(e.type for e in event_store.after(ACCOUNT, None, 100))
    assert types == Counter(
        {"task.queued": 2, "task.started": 1, "task.completed": 1, "task.cancelled": 1, "group.completed": 1}
    )
    assert len(deliveries) == 6
    assert {message["endpoint_id"] for message in deliveries} == {"we_" + "0" * 24}
    assert Counter(entry["detail-type"] for entry in on_bus) == Counter({"Task State Change": 5, "Group Completed": 1})
    assert all(entry["source"] == "taskapi" for entry in on_bus)
    completed = next(e["detail"] for e in on_bus if e["detail"]["type"] == "task.completed")
    assert "quiz.json" in completed["data"]["result_url"]
    group = next(e["detail"] for e in on_bus if e["detail"]["type"] == "group.completed")
    assert (group["data"]["total"], group["data"]["counts"]["CANCELLED"]) == (2, 1)
    assert drain(queue_url) == []
    assert drain(tap) == []
    assert all(e.fanned_out and e.bus_sent for e in event_store.after(ACCOUNT, None, 100))
