"""Nothing with request_data stays PENDING and nothing stays PROCESSING after its worker died:
SQS refusing entries at create time, the reconciler re-queueing and timing out, bounded runs,
overlapping runs and a lagging index."""

from __future__ import annotations

import pytest

from taskapi.models.domain import MAX_TRIES, PROCESSING_TIMEOUT_SECONDS, Task, TaskStatus, TaskType
from taskapi.queueing.messages import TaskMessage
from taskapi.services.processing import Outcome
from taskapi.services.reconcile import reconcile
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    Crash,
    FaultyEngine,
    RepositoryProxy,
    completions,
    create,
    deliver,
    event_messages,
    messages,
    registry_with,
)

PENDING_AFTER = 120


def stored(fakes, task_id: str) -> Task:
    task = fakes.repo.get(ACCOUNT, task_id)
    assert task is not None
    return task


def refuse_ids(*task_ids: str):
    return lambda priority, message: "InternalError: SQS is busy" if message.task_id in task_ids else None


def run(processor, clock, *, limit: int = 100):
    return reconcile(processor, pending_after_seconds=PENDING_AFTER, limit=limit, clock=clock)


def crash_while_running(fakes, clock, *bodies) -> None:
    """Create the tasks and let each one's worker die mid-run: they stay PROCESSING."""
    engines = [FaultyEngine(task_type, always=Crash()) for task_type in TaskType]
    processor = fakes.processor(engine_for=registry_with(*engines).get, clock=clock)
    create(fakes.repo, fakes.queue, *bodies)
    for message in messages(fakes):
        with pytest.raises(Crash):
            processor.process(message)


# ------------------------------------------------------------------ SQS refusing entries at create
def test_entries_sqs_refuses_leave_their_tasks_pending_with_the_reason_and_the_reconciler_queues_them(
    fakes, processor, clock
):
    fakes.queue.refuse = refuse_ids("q2", "d1")
    created = create(
        fakes.repo,
        fakes.queue,
        BODY_OF[TaskType.QUIZ]("q1"),
        BODY_OF[TaskType.QUIZ]("q2"),
        BODY_OF[TaskType.DOCUMENTATION]("d1"),
        BODY_OF[TaskType.VIDEO]("v1"),
    )

    assert {t.task_id: t.status for t in created} == {
        "q1": TaskStatus.QUEUED,
        "q2": TaskStatus.PENDING,
        "d1": TaskStatus.PENDING,
        "v1": TaskStatus.QUEUED,
    }
    for task_id in ("q2", "d1"):
        assert event_messages(stored(fakes, task_id)) == [
            "Task pending",
            "Not queued yet (InternalError: SQS is busy); it will be retried",
        ]
    assert sorted(m.task_id for m in messages(fakes)) == ["q1", "v1"]
    fakes.queue.refuse = None

    early = run(processor, clock)
    assert early.pending_found == 0
    assert fakes.queue.sent == []

    clock.advance(seconds=PENDING_AFTER + 1)
    report = run(processor, clock)

    assert (report.pending_found, report.enqueued, report.enqueue_refused) == (2, 2, 0)
    for task_id in ("q2", "d1"):
        task = stored(fakes, task_id)
        assert task.status is TaskStatus.QUEUED
        assert event_messages(task)[-1] == f"Task added to {task.task_type.value} processing queue"
    assert deliver(fakes, processor) == [Outcome.COMPLETED, Outcome.COMPLETED]


def test_a_task_sqs_keeps_refusing_stays_pending_run_after_run_until_it_is_queued(fakes, processor, clock):
    fakes.queue.refuse = refuse_ids("q1")
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    clock.advance(seconds=PENDING_AFTER + 1)

    for _ in range(3):
        report = run(processor, clock)
        assert (report.pending_found, report.enqueued, report.enqueue_refused) == (1, 0, 1)
        assert stored(fakes, "q1").status is TaskStatus.PENDING

    fakes.queue.refuse = None
    assert run(processor, clock).enqueued == 1
    assert deliver(fakes, processor) == [Outcome.COMPLETED]


def test_tasks_without_request_data_are_stored_and_never_queued(fakes, processor, clock):
    (task,) = create(fakes.repo, fakes.queue, {"task_type": "quiz", "task_id": "bare"})
    assert task.status is TaskStatus.PENDING
    assert fakes.queue.sent == []

    clock.advance(days=1)
    report = run(processor, clock)

    assert report.pending_found == 0
    assert stored(fakes, "bare") == task
    assert fakes.queue.sent == []


# ------------------------------------------------------------------ PROCESSING past the timeout
def test_processing_past_its_types_timeout_is_retried_then_failed_after_max_tries(fakes, clock):
    crash_while_running(fakes, clock, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.VIDEO]("v1"))
    never_completes = FaultyEngine(TaskType.QUIZ, always=Crash())
    processor = fakes.processor(engine_for=registry_with(never_completes).get, clock=clock)

    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)
    report = run(processor, clock)

    assert report.processing_found == 1  # the video's 45 minutes are not over
    assert report.timed_out == {"retry_scheduled": 1}
    quiz = stored(fakes, "q1")
    assert quiz.status is TaskStatus.QUEUED
    assert event_messages(quiz)[-1] == "Try 1 failed: Processing timed out after 10 minutes; retrying in 0 s"
    assert stored(fakes, "v1").status is TaskStatus.PROCESSING

    (message,) = messages(fakes)
    with pytest.raises(Crash):
        processor.process(message)  # try 2 of 2 dies too
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.VIDEO])
    report = run(processor, clock)

    assert report.processing_found == 2
    assert report.timed_out == {"failed": 1, "retry_scheduled": 1}
    quiz = stored(fakes, "q1")
    assert quiz.status is TaskStatus.FAILED
    assert quiz.tries == MAX_TRIES[TaskType.QUIZ]
    assert quiz.error_message == "Processing timed out after 10 minutes"
    assert stored(fakes, "v1").status is TaskStatus.QUEUED
    assert [m.task_id for m in messages(fakes)] == ["v1"]


def test_a_run_does_bounded_work_and_the_next_runs_take_the_rest(fakes, processor, clock):
    fakes.queue.refuse = lambda priority, message: "refused"
    create(fakes.repo, fakes.queue, *[BODY_OF[TaskType.QUIZ](f"q{i}") for i in range(7)])
    fakes.queue.refuse = None
    clock.advance(seconds=PENDING_AFTER + 1)

    found = [run(processor, clock, limit=3).pending_found for _ in range(4)]

    assert found == [3, 3, 1, 0]
    assert sorted(m.task_id for m in messages(fakes)) == [f"q{i}" for i in range(7)]


def test_bounded_work_applies_to_timed_out_processing_tasks_too(fakes, clock):
    crash_while_running(fakes, clock, *[BODY_OF[TaskType.QUIZ](f"q{i}") for i in range(5)])
    processor = fakes.processor(clock=clock)
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)

    assert run(processor, clock, limit=2).processing_found == 2
    assert run(processor, clock, limit=2).processing_found == 2
    assert run(processor, clock, limit=2).processing_found == 1
    deliver(fakes, processor)
    for i in range(5):
        assert stored(fakes, f"q{i}").status is TaskStatus.COMPLETED


# ------------------------------------------------------------------ overlapping runs
class SecondRunReadsBeforeFirstWrites(RepositoryProxy):
    """The first run's table read is followed at once by a whole second run, before the first run
    writes anything: both decide on the same versions."""

    def __init__(self, inner, second_run) -> None:
        super().__init__(inner)
        self.second_run = second_run

    def get_many(self, account_id, task_ids):
        found = self.inner.get_many(account_id, task_ids)
        second, self.second_run = self.second_run, None
        if second is not None and found:
            second()
        return found


def test_overlapping_runs_queue_a_stuck_pending_task_once_and_it_completes_once(fakes, processor, clock):
    fakes.queue.refuse = lambda priority, message: "refused"
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.VIDEO]("v1"))
    fakes.queue.refuse = None
    clock.advance(seconds=PENDING_AFTER + 1)
    reports = []
    overlapping = fakes.processor(
        repository=SecondRunReadsBeforeFirstWrites(fakes.repo, lambda: reports.append(run(processor, clock))),
        clock=clock,
    )

    run(overlapping, clock)

    assert reports[0].enqueued == 2
    sent = fakes.queue.sent[:]
    assert sorted(m.task_id for _, m, _ in sent) == ["q1", "q1", "v1", "v1"]  # both runs sent: harmless
    assert sorted(deliver(fakes, processor)) == sorted([Outcome.COMPLETED] * 2 + [Outcome.SKIPPED] * 2)
    for task_id in ("q1", "v1"):
        task = stored(fakes, task_id)
        assert task.status is TaskStatus.COMPLETED
        assert completions(task) == 1
        assert event_messages(task).count(f"Task added to {task.task_type.value} processing queue") == 1


def test_overlapping_runs_time_out_a_processing_task_once(fakes, clock):
    crash_while_running(fakes, clock, BODY_OF[TaskType.QUIZ]("q1"))
    processor = fakes.processor(clock=clock)
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)
    reports = []
    overlapping = fakes.processor(
        repository=SecondRunReadsBeforeFirstWrites(fakes.repo, lambda: reports.append(run(processor, clock))),
        clock=clock,
    )

    first = run(overlapping, clock)

    assert reports[0].timed_out == {"retry_scheduled": 1}
    assert first.timed_out == {"stopped": 1}
    task = stored(fakes, "q1")
    assert task.status is TaskStatus.QUEUED
    assert task.tries == 1  # one timeout, one failed try: not two
    assert deliver(fakes, processor) == [Outcome.COMPLETED]
    assert completions(stored(fakes, "q1")) == 1


def test_a_redelivery_reclaiming_the_task_between_the_runs_read_and_write_wins(fakes, clock):
    """The reconciler read the task with its lease over; before it writes, the redelivered message
    reclaims it (a fresh try, running now). The reconciler's stale view must not time out the new try."""
    crash_while_running(fakes, clock, BODY_OF[TaskType.QUIZ]("q1"))
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)
    claimed_but_running = FaultyEngine(TaskType.QUIZ, [Crash()])
    worker = fakes.processor(engine_for=registry_with(claimed_but_running).get, clock=clock)
    message = TaskMessage.of(stored(fakes, "q1"))

    def redelivery_reclaims() -> None:
        with pytest.raises(Crash):
            worker.process(message)  # claimed: try 2 is now running (it stays PROCESSING)

    reconciler = fakes.processor(
        repository=SecondRunReadsBeforeFirstWrites(fakes.repo, redelivery_reclaims), clock=clock
    )
    report = run(reconciler, clock)

    assert report.timed_out == {"stopped": 1}
    task = stored(fakes, "q1")
    assert task.status is TaskStatus.PROCESSING
    assert task.tries == 2
    assert task.error_message is None


# ------------------------------------------------------------------ a lagging index
class LaggingIndex(RepositoryProxy):
    """open_tasks answers what the index held a while ago (a snapshot), not what the table holds."""

    def __init__(self, inner, snapshot: dict[TaskStatus, list[tuple[str, str]]]) -> None:
        super().__init__(inner)
        self.snapshot = snapshot

    def open_tasks(self, status, *, before, limit):
        return self.snapshot.get(status, [])[:limit]


def test_tasks_the_lagging_index_still_lists_but_the_table_moved_on_are_left_alone(fakes, processor, clock):
    fakes.queue.refuse = lambda priority, message: "refused"
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.QUIZ]("q2"))
    fakes.queue.refuse = None
    crash_while_running(fakes, clock, BODY_OF[TaskType.QUIZ]("q3"))
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)
    index = {
        TaskStatus.PENDING: fakes.repo.open_tasks(TaskStatus.PENDING, before="9", limit=10),
        TaskStatus.PROCESSING: fakes.repo.open_tasks(TaskStatus.PROCESSING, before="9", limit=10),
    }
    assert len(index[TaskStatus.PENDING]) == 2
    assert len(index[TaskStatus.PROCESSING]) == 1
    run(processor, clock)  # the table moves on: q1, q2 QUEUED; q3 QUEUED for its retry
    deliver(fakes, processor)  # ... and all three COMPLETED
    before = {task_id: stored(fakes, task_id) for task_id in ("q1", "q2", "q3")}

    report = run(fakes.processor(repository=LaggingIndex(fakes.repo, index), clock=clock), clock)

    assert (report.pending_found, report.processing_found) == (0, 0)
    assert {task_id: stored(fakes, task_id) for task_id in before} == before
    assert fakes.queue.sent == []


def test_a_task_missing_from_the_lagging_index_is_not_treated_as_lost(fakes, processor, clock):
    fakes.queue.refuse = lambda priority, message: "refused"
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    fakes.queue.refuse = None
    crash_while_running(fakes, clock, BODY_OF[TaskType.QUIZ]("q2"))
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)
    before = {task_id: stored(fakes, task_id) for task_id in ("q1", "q2")}

    lagging = run(fakes.processor(repository=LaggingIndex(fakes.repo, {}), clock=clock), clock)

    assert (lagging.pending_found, lagging.processing_found) == (0, 0)
    assert {task_id: stored(fakes, task_id) for task_id in before} == before  # untouched, not failed
    caught_up = run(processor, clock)
    assert (caught_up.pending_found, caught_up.processing_found) == (1, 1)
    deliver(fakes, processor)
    assert stored(fakes, "q1").status is TaskStatus.COMPLETED
    assert stored(fakes, "q2").status is TaskStatus.COMPLETED
