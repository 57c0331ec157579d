"""AWS API calls to bulk-create 100 tasks through the real service path: services.tasks.create_bulk
with the DynamoDB repository and the SQS queue, on moto, tables from infra.provision.

DESIGN.md section 4: "Bulk create of 100 tasks uses batch APIs: one TransactWriteItems
(conditional on the id not existing, for idempotency) and SendMessageBatch by tens". Issue 15: one
write per task (the messages first, then the insert as QUEUED), the ceiling from the account's
counter (one GetItem).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from infra.template import LocalNames
from taskapi.auth.principal import Principal
from taskapi.counting.store import DynamoCounterStore
from taskapi.models.domain import Priority, Task, TaskStatus
from taskapi.models.requests import BulkCreateRequest
from taskapi.queueing.queues import SqsTaskQueue
from taskapi.services import tasks as task_service
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository
from tests import factories
from tests.perf.support import AwsCalls, Figure, Measurement, Recorder, provision_stack

ACCOUNT = "acct_bench"
PRINCIPAL = Principal(account_id=ACCOUNT, user_id=f"api_key_user_{ACCOUNT}", auth_method="api_key")
PRIORITIES = list(Priority)
MAKERS = (factories.video, factories.quiz, factories.documentation)
BULK = 100
EXISTING = 30


def bulk_request(
    task_ids: Sequence[str], *, request_data: bool = True, source: str = "bench", priorities=PRIORITIES
) -> BulkCreateRequest:
    """Video, quiz and documentation tasks in turn, the given priorities in turn."""
    tasks = []
    for n, task_id in enumerate(task_ids):
        body = MAKERS[n % len(MAKERS)](
            task_id, priority=priorities[n % len(priorities)].value, task_source_name=source, task_source_group_id="grp"
        )
        if not request_data:
            body.pop("request_data")
        tasks.append(body)
    return BulkCreateRequest.model_validate({"tasks": tasks})


def send_batches(request: BulkCreateRequest, *, only: set[str] | None = None) -> int:
    """SendMessageBatch calls the design asks for: ceil(n / 10) per priority queue."""
    queued = Counter(
        task.priority
        for task in request.tasks
        if task.request_data is not None and (only is None or task.task_id in only)
    )
    return sum(math.ceil(n / 10) for n in queued.values())


@dataclass
class Service:
    repository: DynamoTaskRepository
    queue: SqsTaskQueue
    calls: AwsCalls
    counters: DynamoCounterStore

    def create(self, request: BulkCreateRequest) -> list[Task]:
        return task_service.create_bulk(self.repository, self.queue, PRINCIPAL, request)


@contextmanager
def moto_service() -> Iterator[Service]:
    with mock_aws():
        session = boto3.Session(region_name=LocalNames().region)
        stack = provision_stack(session)
        dynamodb, sqs = session.client("dynamodb"), session.client("sqs")
        yield Service(
            repository=DynamoTaskRepository(dynamodb, stack.tables["TasksTable"]),
            queue=SqsTaskQueue(sqs, stack.queue_urls, stack.dead_letter_urls),
            calls=AwsCalls(dynamodb, sqs),
            counters=DynamoCounterStore(dynamodb, LocalNames().physical_name("CountersTable")),
        )


@pytest.fixture
def service() -> Iterator[Service]:
    with moto_service() as service:
        yield service


def _ids(prefix: str, n: int = BULK) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(n)]


def test_bulk_create_of_100_new_tasks_without_request_data(service: Service, bench: Recorder) -> None:
    """Stored, not queued: the insert path alone."""
    request = bulk_request(_ids("plain"), request_data=False)

    with service.calls.measuring() as calls:
        created = service.create(request)

    assert [t.task_id for t in created] == _ids("plain")
    assert {t.status for t in created} == {TaskStatus.PENDING}
    assert service.repository.count(ACCOUNT, TaskFilters()) == BULK
    print(f"[bench]      calls: {calls.breakdown()}")
    writes = bench.record(
        Figure("bulk_create.new_100_unqueued.dynamodb_write_calls", calls.dynamodb_writes(), "calls", 1)
    )
    total = bench.record(Figure("bulk_create.new_100_unqueued.aws_calls", calls.total(), "calls", 1))
    assert writes.passed
    assert total.passed


@pytest.fixture(scope="module")
def queued_bulk(bench: Recorder) -> tuple[Measurement, BulkCreateRequest]:
    """100 new tasks with request_data, created once for the tests of TestNewQueuedTasks."""
    with moto_service() as service:
        request = bulk_request(_ids("new"))
        with service.calls.measuring() as calls:
            created = service.create(request)
        assert [t.task_id for t in created] == _ids("new")
        assert {t.status for t in created} == {TaskStatus.QUEUED}
        assert service.repository.count(ACCOUNT, TaskFilters(statuses=(TaskStatus.QUEUED,))) == BULK
    print(f"[bench]      calls: {calls.breakdown()}")
    batches = send_batches(request)
    bench.record(
        Figure(
            "bulk_create.new_100.dynamodb_write_calls",
            calls.dynamodb_writes(),
            "calls",
            1,
            note="the messages go first; one TransactWriteItems inserts every task QUEUED",
        )
    )
    bench.record(Figure("bulk_create.new_100.sqs_send_message_batch_calls", calls.total("sqs"), "calls", batches))
    bench.record(
        Figure(
            "bulk_create.new_100.aws_calls",
            calls.total(),
            "calls",
            1 + batches,
            note="1 DynamoDB write + SendMessageBatch by tens per priority queue (11 when one priority)",
        )
    )
    return calls, request


class TestNewQueuedTasks:
    """100 new tasks with request_data: sent to their priority queues, then written QUEUED."""

    def test_messages_go_in_batches_of_ten(self, queued_bulk) -> None:
        calls, request = queued_bulk
        assert calls.operation("sqs", "SendMessageBatch") == calls.total("sqs") == send_batches(request)

    def test_only_dynamodb_writes_are_made(self, queued_bulk) -> None:
        calls, _ = queued_bulk
        assert calls.total("dynamodb") == calls.dynamodb_writes()

    def test_tasks_are_inserted_queued_in_one_dynamodb_call(self, queued_bulk) -> None:
        """The issue's budget: SendMessageBatch by tens, then 1 TransactWriteItems. Sending first
        means no task is ever stored QUEUED without its message; a crash between the two leaves
        only messages without a task, which the processor acknowledges."""
        calls, _ = queued_bulk
        assert calls.operation("dynamodb", "TransactWriteItems") == calls.dynamodb_writes() == 1


def test_bulk_create_of_100_of_one_priority_takes_11_calls(service: Service, bench: Recorder) -> None:
    """The issue's happy path without the ceiling: 10 SendMessageBatch, 1 TransactWriteItems."""
    request = bulk_request(_ids("single"), priorities=(PRIORITIES[2],))
    with service.calls.measuring() as calls:
        created = service.create(request)
    assert {t.status for t in created} == {TaskStatus.QUEUED}
    print(f"[bench]      calls: {calls.breakdown()}")
    total = bench.record(Figure("bulk_create.new_100_one_priority.aws_calls", calls.total(), "calls", 11))
    assert total.passed


def test_bulk_create_where_30_of_100_ids_exist(service: Service, bench: Recorder) -> None:
    """Idempotency: the existing 30 are answered as stored, the other 70 created and queued. Every
    message is sent before the insert learns which ids exist: the 30 extra messages are acknowledged
    by the processor without work (their tasks are on their own attempt's message already)."""
    ids = _ids("mixed")
    existing_ids = ids[::3][:EXISTING]  # spread through the request, not a block
    service.create(bulk_request(existing_ids, source="first"))
    request = bulk_request(ids, source="second")

    with service.calls.measuring() as calls:
        answered = service.create(request)

    assert [t.task_id for t in answered] == ids
    first = {t.task_id for t in answered if t.task_source_name == "first"}
    assert first == set(existing_ids), "existing tasks are answered as stored, never rewritten"
    assert service.repository.count(ACCOUNT, TaskFilters()) == BULK
    print(f"[bench]      calls: {calls.breakdown()}")
    new_ids = set(ids) - set(existing_ids)
    writes = bench.record(
        Figure(
            "bulk_create.existing_30_of_100.dynamodb_write_calls",
            calls.dynamodb_writes(),
            "calls",
            2,
            note="refused transaction (answers the 30 stored items) + transaction of the 70",
        )
    )
    reads = bench.record(
        Figure(
            "bulk_create.existing_30_of_100.dynamodb_read_calls",
            calls.total("dynamodb") - calls.dynamodb_writes(),
            "calls",
            0,
        )
    )
    sends = bench.record(
        Figure(
            "bulk_create.existing_30_of_100.sqs_send_message_batch_calls",
            calls.total("sqs"),
            "calls",
            send_batches(request),
            note=f"sent before the insert: the {len(new_ids)} new tasks' messages and the 30 existing ones'",
        )
    )
    assert writes.passed
    assert reads.passed
    assert sends.passed


def test_the_unfinished_task_ceiling_costs_one_get_item_of_the_account_counter(
    service: Service, bench: Recorder
) -> None:
    """The HTTP path checks the plan's ceiling first: the account counter's HELD, one GetItem, before
    the sends and the insert (13 calls through HTTP with the API key's lookup). Tasks without
    request_data do not count, so a create of only such tasks checks nothing."""
    ceiling = task_service.Ceiling(max_unfinished=1_000, retry_after_seconds=60, counters=service.counters)
    request = bulk_request(_ids("ceiling"), priorities=(Priority.NORMAL,))

    with service.calls.measuring() as calls:
        created = task_service.create_bulk(service.repository, service.queue, PRINCIPAL, request, ceiling)

    assert len(created) == BULK
    print(f"[bench]      calls: {calls.breakdown()}")
    reads = bench.record(
        Figure(
            "bulk_create.ceiling_check.dynamodb_read_calls",
            calls.total("dynamodb") - calls.dynamodb_writes(),
            "calls",
            1,
            note="GetItem of the account counter",
        )
    )
    total = bench.record(
        Figure("bulk_create.new_100_queued_one_priority_with_ceiling.aws_calls", calls.total(), "calls", 12)
    )
    assert calls.operation("dynamodb", "GetItem") == 1
    assert calls.operation("dynamodb", "Query") == 0
    assert reads.passed
    assert total.passed
