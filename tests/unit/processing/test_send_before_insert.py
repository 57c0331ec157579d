"""One write per new task (issue 15): create sends the messages first, then inserts each task
QUEUED (or PENDING with why, where SQS refused its message). Nothing is lost and nothing runs twice
whatever happens between the two: a refused send, a crash after the sends, a message that comes
before its task is stored, duplicates, ids that exist already."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.errors import Retryable
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType
from taskapi.queueing.messages import TaskMessage
from taskapi.services.processing import NOT_STORED_GRACE_SECONDS, NOT_STORED_RETRY_DELAY_SECONDS, Outcome
from taskapi.services.reconcile import reconcile
from taskapi.store.base import InsertResult
from tests import factories
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    Crash,
    RepositoryProxy,
    completions,
    create,
    event_messages,
    load_function,
    sqs_event,
    sqs_record,
)

PENDING_AFTER = 120


def stored(fakes, task_id: str) -> Task | None:
    return fakes.repo.get(ACCOUNT, task_id)


def sent(fakes) -> list[tuple[Priority, TaskMessage, int]]:
    """Take everything off the in-memory queue: (priority, message, delay) of each send."""
    return fakes.queue.drain()


class Writes(RepositoryProxy):
    """Counts the repository's writes; `before_insert` runs once, just before the insert."""

    def __init__(self, inner, before_insert: Callable[[], None] | None = None) -> None:
        super().__init__(inner)
        self.writes: list[str] = []
        self.before_insert = before_insert

    def insert_new(self, tasks) -> InsertResult:
        self.writes.append(f"insert_new({len(tasks)})")
        hook, self.before_insert = self.before_insert, None
        if hook is not None:
            hook()
        return self.inner.insert_new(tasks)

    def save(self, task, *, expected_version):
        self.writes.append("save")
        return self.inner.save(task, expected_version=expected_version)

    def save_many(self, changes):
        self.writes.append(f"save_many({len(changes)})")
        return self.inner.save_many(changes)


def test_a_bulk_create_writes_each_task_once_queued_after_its_message_went(fakes):
    writes = Writes(fakes.repo)
    order: list[str] = []
    send = fakes.queue.send
    fakes.queue.send = lambda *a, **k: order.append("send") or send(*a, **k)  # type: ignore[method-assign]
    insert = writes.insert_new
    writes.insert_new = lambda tasks: order.append("insert") or insert(tasks)  # type: ignore[method-assign]

    created = create(writes, fakes.queue, *[BODY_OF[TaskType.QUIZ](f"q{n}") for n in range(5)])

    assert order == ["send", "insert"]
    assert writes.writes == ["insert_new(5)"]
    assert {t.status for t in created} == {TaskStatus.QUEUED}
    for task in created:
        assert stored(fakes, task.task_id) == task
        assert event_messages(task) == ["Task pending", "Task added to quiz processing queue"]
        assert task.version == 1
    assert sorted(m.task_id for _, m, _ in sent(fakes)) == [f"q{n}" for n in range(5)]


def test_tasks_whose_send_is_refused_are_stored_pending_with_why_and_the_reconciler_queues_them(
    fakes, processor, clock
):
    writes = Writes(fakes.repo)
    fakes.queue.refuse = lambda priority, message: "Throttled: slow down" if message.task_id == "q2" else None

    created = create(writes, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.QUIZ]("q2"))

    assert writes.writes == ["insert_new(2)"]
    assert [t.status for t in created] == [TaskStatus.QUEUED, TaskStatus.PENDING]
    assert event_messages(stored(fakes, "q2")) == [
        "Task pending",
        "Not queued yet (Throttled: slow down); it will be retried",
    ]
    assert [m.task_id for _, m, _ in sent(fakes)] == ["q1"]
    fakes.queue.refuse = None

    clock.advance(seconds=PENDING_AFTER + 1)
    report = reconcile(processor, pending_after_seconds=PENDING_AFTER, limit=10, clock=clock)

    assert (report.pending_found, report.enqueued) == (1, 1)
    assert stored(fakes, "q2").status is TaskStatus.QUEUED
    ((_, message, _),) = sent(fakes)
    assert processor.process(message, sent_at=clock.now) is Outcome.COMPLETED


def crash() -> None:
    """The API's Lambda dies between the sends and the insert."""
    raise Crash


def test_a_crash_after_the_sends_loses_nothing_the_retry_creates_the_tasks_and_each_runs_once(fakes, processor, clock):
    bodies = [BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.VIDEO]("v1")]
    with pytest.raises(Crash):
        create(Writes(fakes.repo, before_insert=crash), fakes.queue, *bodies)
    assert stored(fakes, "q1") is None
    strays = sent(fakes)
    assert sorted(m.task_id for _, m, _ in strays) == ["q1", "v1"]

    # The strays come first: their tasks are not stored yet, so each is sent again a little later.
    sent_at = clock.now
    assert [processor.process(m, sent_at=sent_at) for _, m, _ in strays] == [Outcome.DEFERRED] * 2
    again = sent(fakes)
    assert [(p, m.task_id, delay) for p, m, delay in again] == [
        (p, m.task_id, NOT_STORED_RETRY_DELAY_SECONDS) for p, m, _ in strays
    ]
    assert {m.first_sent_ms for _, m, _ in again} == {int(sent_at.timestamp() * 1000)}

    # The client's retry creates them (its own messages) ...
    clock.advance(seconds=NOT_STORED_RETRY_DELAY_SECONDS)
    create(fakes.repo, fakes.queue, *bodies)
    retried = sent(fakes)

    # ... and whichever message comes first runs each task; every other one is acknowledged.
    outcomes = [processor.process(m, sent_at=clock.now) for _, m, _ in again + retried]
    assert sorted(outcomes) == sorted([Outcome.COMPLETED] * 2 + [Outcome.SKIPPED] * 2)
    for task_id in ("q1", "v1"):
        assert completions(stored(fakes, task_id)) == 1


def test_messages_of_tasks_never_stored_are_acknowledged_once_the_grace_period_is_over(fakes, processor, clock):
    with pytest.raises(Crash):
        create(Writes(fakes.repo, before_insert=crash), fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    ((_, stray, _),) = sent(fakes)
    first_sent = clock.now

    # Sent again and again while the grace period lasts, each copy carrying the first send's time ...
    rounds = 0
    message, sent_at = stray, first_sent
    while (outcome := processor.process(message, sent_at=sent_at)) is Outcome.DEFERRED:
        rounds += 1
        ((_, message, _),) = sent(fakes)
        clock.advance(seconds=NOT_STORED_RETRY_DELAY_SECONDS)
        sent_at = clock.now  # a copy's own SentTimestamp is always young
    # ... then acknowledged: nothing runs, nothing is stored, nothing more is sent.
    assert outcome is Outcome.SKIPPED
    assert rounds == NOT_STORED_GRACE_SECONDS // NOT_STORED_RETRY_DELAY_SECONDS
    assert stored(fakes, "q1") is None
    assert fakes.queue.sent == []


@pytest.mark.parametrize(
    ("age", "outcome"),
    [
        (0, Outcome.DEFERRED),
        (NOT_STORED_GRACE_SECONDS - 1, Outcome.DEFERRED),
        (NOT_STORED_GRACE_SECONDS, Outcome.SKIPPED),
    ],
)
def test_a_message_whose_task_is_not_stored_waits_only_while_it_is_young(fakes, processor, clock, age, outcome):
    message = TaskMessage(ACCOUNT, "ghost", 1, priority=Priority.URGENT)
    assert processor.process(message, sent_at=clock.now - timedelta(seconds=age)) is outcome
    if outcome is Outcome.DEFERRED:
        assert [(p, m, d) for p, m, d in sent(fakes)] == [(Priority.URGENT, message, NOT_STORED_RETRY_DELAY_SECONDS)]
    else:
        assert fakes.queue.sent == []


def test_without_its_send_time_a_message_whose_task_is_not_stored_is_acknowledged(fakes, processor):
    assert processor.process(TaskMessage(ACCOUNT, "ghost", 1)) is Outcome.SKIPPED
    assert fakes.queue.sent == []


def test_when_the_message_cannot_be_sent_again_the_delivery_fails_and_sqs_delivers_it_again(fakes, processor, clock):
    fakes.queue.refuse = lambda priority, message: "InternalError"
    with pytest.raises(Retryable):
        processor.process(TaskMessage(ACCOUNT, "ghost", 1, priority=Priority.LOW), sent_at=clock.now)


def test_a_message_that_comes_before_the_insert_runs_its_task_once_it_is_stored(fakes, processor, clock):
    outcomes: list[Outcome] = []

    def the_message_overtakes_the_insert() -> None:
        (_, message, _), *_ = fakes.queue.sent
        outcomes.append(processor.process(message, sent_at=clock.now))

    create(
        Writes(fakes.repo, before_insert=the_message_overtakes_the_insert), fakes.queue, BODY_OF[TaskType.QUIZ]("q1")
    )

    assert outcomes == [Outcome.DEFERRED]
    assert stored(fakes, "q1").status is TaskStatus.QUEUED
    first, again = sent(fakes)
    assert again[2] == NOT_STORED_RETRY_DELAY_SECONDS
    clock.advance(seconds=NOT_STORED_RETRY_DELAY_SECONDS)
    assert processor.process(again[1], sent_at=clock.now) is Outcome.COMPLETED
    assert processor.process(first[1], sent_at=clock.now) is Outcome.SKIPPED  # the original, delivered late
    assert completions(stored(fakes, "q1")) == 1


def test_duplicate_messages_and_the_messages_of_ids_that_exist_already_run_each_task_once(fakes, processor, clock):
    bodies = [BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.DOCUMENTATION]("d1")]
    first = create(fakes.repo, fakes.queue, *bodies)
    again = create(fakes.repo, fakes.queue, *bodies)  # a client's retry: answered as stored

    assert again == first
    deliveries = sent(fakes)
    assert len(deliveries) == 4  # sent before the insert learned the ids exist
    outcomes = [processor.process(m, sent_at=clock.now) for _, m, _ in deliveries + deliveries]
    assert sorted(outcomes) == sorted([Outcome.COMPLETED] * 2 + [Outcome.SKIPPED] * 6)
    for task_id in ("q1", "d1"):
        assert completions(stored(fakes, task_id)) == 1


def test_a_task_without_request_data_is_never_processed(fakes, processor, clock):
    (bare,) = create(fakes.repo, fakes.queue, {"task_type": "quiz", "task_id": "bare"})
    assert bare.status is TaskStatus.PENDING
    assert fakes.queue.sent == []

    assert processor.process(TaskMessage(ACCOUNT, "bare", 1), sent_at=clock.now) is Outcome.SKIPPED
    assert stored(fakes, "bare") == bare


def test_the_processor_function_decides_by_the_record_s_sent_timestamp(fakes, processor, clock):
    module = load_function("processor")
    module.get_processor = lambda: processor
    young = int(clock.now.timestamp() * 1000)
    body = TaskMessage(ACCOUNT, "ghost", 1, priority=Priority.HIGH).body()
    records = [sqs_record(body, message_id="young", sent_timestamp=str(young)), sqs_record(body, message_id="old")]

    answer = module.handler(sqs_event(records), factories.LambdaContext())

    assert answer == {"batchItemFailures": []}
    ((priority, message, delay),) = sent(fakes)  # the young one sent again; the old one acknowledged
    assert (priority, message.task_id, message.first_sent_ms, delay) == (
        Priority.HIGH,
        "ghost",
        young,
        NOT_STORED_RETRY_DELAY_SECONDS,
    )
    assert module.sent_at(SQSRecord(records[0])) == datetime.fromtimestamp(young / 1000, UTC)
    assert module.sent_at(SQSRecord({**records[1], "attributes": {}})) is None
