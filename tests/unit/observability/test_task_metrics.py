"""The per-task metrics (issue 17): queue wait, processing and end-to-end time and the outcome
counts, each filed under service, task_type and priority on an EMF line of its own, so the
handler's flush (TasksCompleted, ...) keeps the service dimension alone."""

from __future__ import annotations

import pytest

from taskapi.engines.base import EngineError
from taskapi.models.domain import MAX_TRIES, PROCESSING_TIMEOUT_SECONDS, TaskStatus, TaskType
from taskapi.services.processing import Outcome, fail_dead_lettered
from taskapi.services.reconcile import reconcile
from tests.unit.observability.conftest import Emitted
from tests.unit.processing.support import ACCOUNT, BODY_OF, FaultyEngine, create, deliver, messages, registry_with

SERVICE = {"service": "taskapi"}


def named(emitted: list[Emitted], name: str) -> list[Emitted]:
    return [metric for metric in emitted if metric.name == name]


def only(emitted: list[Emitted], name: str) -> Emitted:
    (metric,) = named(emitted, name)
    return metric


def test_a_completed_task_emits_its_wait_processing_and_end_to_end_times_by_type_and_priority(emf, fakes, clock):
    # Given a high-priority quiz that waits 30 s in its queue and whose engine takes 4 s
    moved = []

    def slow(_percent: float) -> None:
        if not moved:
            moved.append(clock.advance(seconds=4))

    engine = FaultyEngine(TaskType.QUIZ, on_progress=slow)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1", priority="high"))
    clock.advance(seconds=30)

    # When it is processed
    assert deliver(fakes, processor) == [Outcome.COMPLETED]
    emitted = emf()

    # Then each time is emitted once, in seconds, under its type and priority
    by_task = {**SERVICE, "task_type": "quiz", "priority": "high"}
    wait, run, total = (
        only(emitted, "TaskQueueWait"),
        only(emitted, "TaskProcessingTime"),
        only(emitted, "TaskEndToEndTime"),
    )
    assert {wait.unit, run.unit, total.unit} == {"Seconds"}
    assert wait.dimensions == run.dimensions == total.dimensions == by_task
    # (the task service stamps created_at with the wall clock, a hair after the test clock's start)
    assert wait.value == pytest.approx(30, abs=0.5)
    assert run.value == pytest.approx(4)
    assert total.value == pytest.approx(34, abs=0.5)
    completed = only(emitted, "TasksCompletedByType")
    assert (completed.unit, completed.value, completed.dimensions) == ("Count", 1, by_task)
    assert all(metric.namespace == "TaskApi" for metric in emitted)
    # ... and the dimensions do not leak onto the metrics of the handler's flush
    assert only(emitted, "TasksCompleted").dimensions == SERVICE
    assert only(emitted, "ProcessingDuration").dimensions == SERVICE
    assert named(emitted, "TasksFailedByType") == []


def test_a_permanently_failed_task_is_counted_by_type_with_reason_permanent(emf, fakes, clock):
    engine = FaultyEngine(TaskType.VIDEO, always=EngineError("the prompt names no topic", permanent=True))
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1"))

    assert deliver(fakes, processor) == [Outcome.FAILED]
    emitted = emf()

    failed = only(emitted, "TasksFailedByType")
    assert (failed.unit, failed.value) == ("Count", 1)
    assert failed.dimensions == {**SERVICE, "task_type": "video", "priority": "high", "reason": "permanent"}
    assert only(emitted, "TasksFailed").dimensions == SERVICE
    assert named(emitted, "TasksCompletedByType") == []
    assert named(emitted, "TasksRetried") == []


def test_each_retry_is_counted_and_the_last_failed_try_has_reason_retries_exhausted(emf, fakes, clock):
    engine = FaultyEngine(TaskType.QUIZ, always=EngineError("generator overloaded", permanent=False))
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    fakes.run_queue(processor)
    emitted = emf()

    by_task = {**SERVICE, "task_type": "quiz", "priority": "normal"}
    retried = named(emitted, "TasksRetried")
    assert len(retried) == MAX_TRIES[TaskType.QUIZ] - 1
    assert all(metric.dimensions == by_task for metric in retried)
    assert only(emitted, "TasksFailedByType").dimensions == {**by_task, "reason": "retries_exhausted"}
    assert len(named(emitted, "TaskQueueWait")) == MAX_TRIES[TaskType.QUIZ]  # one per claim


def test_a_dead_lettered_task_is_counted_with_reason_dead_letter(emf, fakes, clock):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)

    assert fail_dead_lettered(fakes.repo, message.body(), receive_count=5, clock=clock) is Outcome.FAILED

    failed = only(emf(), "TasksFailedByType")
    assert failed.dimensions == {**SERVICE, "task_type": "quiz", "priority": "normal", "reason": "dead_letter"}


def test_the_reconciler_counts_stuck_tasks_and_a_last_timed_out_try_has_reason_timed_out(emf, fakes, clock):
    # Given a quiz on its last try whose worker died
    engine = FaultyEngine(TaskType.QUIZ, [EngineError("flaky", permanent=False)] * (MAX_TRIES[TaskType.QUIZ] - 1))
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    for _ in range(MAX_TRIES[TaskType.QUIZ] - 1):
        deliver(fakes, processor)
    task = fakes.repo.get(ACCOUNT, "q1")
    assert task is not None
    claimed = task.moved_to(TaskStatus.PROCESSING, task.updated_at, "claimed", tries=MAX_TRIES[TaskType.QUIZ])
    fakes.repo.save(claimed, expected_version=task.version)
    messages(fakes)
    emf()  # what the tries emitted is not this test's
    clock.advance(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 1)

    # When the reconciler runs
    report = reconcile(processor, pending_after_seconds=60, limit=50, clock=clock)
    emitted = emf()

    # Then the task ended FAILED as timed out, and the run counted one stuck task
    assert report.timed_out == {"failed": 1}
    assert only(emitted, "TasksFailedByType").dimensions["reason"] == "timed_out"
    stuck = only(emitted, "TasksStuck")
    assert (stuck.unit, stuck.value, stuck.dimensions) == ("Count", 1, SERVICE)


def test_nothing_is_printed_while_metrics_are_disabled(fakes, clock, capsys):
    processor = fakes.processor(clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    assert '"_aws"' not in capsys.readouterr().out
