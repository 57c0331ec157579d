"""DynamoTaskRepository's conditional writes on moto: the progress fence, version conflicts of save
and save_many, and the by_open index the reconciler reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from taskapi.errors import Conflict
from taskapi.models.domain import Task, TaskStatus, TaskType, isoformat, utc_now
from tests.unit.processing.support import ACCOUNT, BODY_OF, OTHER_ACCOUNT, create


def task_in(repo, queue, task_id: str, *, account: str = ACCOUNT, **changes) -> Task:
    """A quiz task created through the service, then set to `changes` with a conditional save."""
    (task,) = create(repo, queue, BODY_OF[TaskType.QUIZ](task_id), account=account)
    if changes:
        task = repo.save(task.model_copy(update=changes), expected_version=task.version)
    return task


def test_record_progress_is_fenced_on_processing_and_attempt_and_never_goes_back(repo, queue):
    task = task_in(repo, queue, "q1")

    def write(progress: float, attempt: int = 1) -> bool:
        return repo.record_progress(ACCOUNT, "q1", attempt=attempt, progress=progress, message="m", now="t")

    assert write(10) is False  # QUEUED
    running = repo.save(task.model_copy(update={"status": TaskStatus.PROCESSING}), expected_version=task.version)
    assert write(10) is True
    assert write(10.5) is True
    assert write(10.25) is False
    assert write(60, attempt=2) is False
    assert write(60, attempt=0) is False
    stored = repo.get(ACCOUNT, "q1")
    assert (stored.progress, stored.progress_message, stored.version) == (10.5, "m", running.version + 2)
    cancelled = repo.save(stored.model_copy(update={"status": TaskStatus.CANCELLED}), expected_version=stored.version)
    assert write(70) is False
    assert repo.get(ACCOUNT, "q1") == cancelled
    assert repo.record_progress(ACCOUNT, "ghost", attempt=1, progress=1, message="m", now="t") is False


def test_a_progress_write_moves_the_version_so_a_save_on_the_older_read_conflicts(repo, queue):
    task = task_in(repo, queue, "q1", status=TaskStatus.PROCESSING)
    assert repo.record_progress(ACCOUNT, "q1", attempt=1, progress=20, message="m", now="t")

    with pytest.raises(Conflict):
        repo.save(task.model_copy(update={"status": TaskStatus.COMPLETED}), expected_version=task.version)
    assert repo.get(ACCOUNT, "q1").status is TaskStatus.PROCESSING


def test_save_many_writes_the_unchanged_tasks_and_skips_the_ones_that_moved(repo, queue):
    tasks = [task_in(repo, queue, f"q{n}") for n in range(4)]
    moved = repo.save(tasks[2].model_copy(update={"progress": 5.0}), expected_version=tasks[2].version)

    saved = repo.save_many([(t.model_copy(update={"status": TaskStatus.CANCELLED}), t.version) for t in tasks])

    assert sorted(saved) == ["q0", "q1", "q3"]
    for task_id in ("q0", "q1", "q3"):
        stored = repo.get(ACCOUNT, task_id)
        assert stored.status is TaskStatus.CANCELLED
        assert stored == saved[task_id]
    assert repo.get(ACCOUNT, "q2") == moved


def test_save_many_of_unchanged_tasks_is_one_transaction(repo, queue, calls):
    tasks = [task_in(repo, queue, f"q{n}") for n in range(25)]
    calls.clear()

    saved = repo.save_many([(t.model_copy(update={"progress": 1.0}), t.version) for t in tasks])

    assert len(saved) == 25
    assert list(calls) == ["TransactWriteItems"]


def test_the_open_index_finds_pending_with_request_data_and_processing_tasks_only(repo, queue):
    now = utc_now()
    old, recent = isoformat(now - timedelta(minutes=30)), isoformat(now)
    open_pending = task_in(repo, queue, "pending", status=TaskStatus.PENDING, state_since=old)
    task_in(repo, queue, "pending_recent", status=TaskStatus.PENDING, state_since=recent)
    (bare,) = create(repo, queue, {"task_type": "quiz", "task_id": "bare"})
    bare = repo.save(bare.model_copy(update={"state_since": old}), expected_version=bare.version)
    processing = task_in(repo, queue, "processing", status=TaskStatus.PROCESSING, state_since=old)
    theirs = task_in(repo, queue, "theirs", account=OTHER_ACCOUNT, status=TaskStatus.PROCESSING, state_since=old)
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        task_in(repo, queue, status.value.lower(), status=status, state_since=old)
    queued = task_in(repo, queue, "queued", state_since=old)
    cutoff = isoformat(now - timedelta(minutes=10))

    assert repo.open_tasks(TaskStatus.PENDING, before=cutoff, limit=100) == [(ACCOUNT, open_pending.task_id)]
    assert sorted(repo.open_tasks(TaskStatus.PROCESSING, before=cutoff, limit=100)) == sorted(
        [(ACCOUNT, processing.task_id), (OTHER_ACCOUNT, theirs.task_id)]
    )
    assert repo.open_tasks(TaskStatus.QUEUED, before=cutoff, limit=100) == [(ACCOUNT, queued.task_id)]
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        assert repo.open_tasks(status, before=cutoff, limit=100) == []
    assert (ACCOUNT, bare.task_id) not in repo.open_tasks(TaskStatus.PENDING, before=recent + "~", limit=100)

    done = repo.get(ACCOUNT, "processing")
    repo.save(done.model_copy(update={"status": TaskStatus.COMPLETED}), expected_version=done.version)
    assert repo.open_tasks(TaskStatus.PROCESSING, before=cutoff, limit=100) == [(OTHER_ACCOUNT, "theirs")]


def test_the_open_index_answers_at_most_limit_keys_across_its_shards(repo, queue):
    old = isoformat(utc_now() - timedelta(hours=1))
    for n in range(30):
        task_in(repo, queue, f"p{n:02d}", status=TaskStatus.PROCESSING, state_since=old)

    some = repo.open_tasks(TaskStatus.PROCESSING, before=isoformat(utc_now()), limit=10)
    every = repo.open_tasks(TaskStatus.PROCESSING, before=isoformat(utc_now()), limit=1000)

    assert len(some) == len(set(some)) == 10
    assert sorted(every) == [(ACCOUNT, f"p{n:02d}") for n in range(30)]


def test_save_many_of_more_than_a_hundred_tasks_writes_them_all(repo, queue, calls):
    """DynamoDB takes at most 100 items per transaction: 150 changes go in two."""
    tasks = []
    for start in range(0, 150, 50):
        tasks += create(repo, queue, *[BODY_OF[TaskType.QUIZ](f"m{n:03d}") for n in range(start, start + 50)])
    calls.clear()
    changes = [(t.model_copy(update={"progress_message": "touched"}), t.version) for t in tasks]
    saved = repo.save_many(changes)
    assert len(saved) == 150
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    assert all(repo.get(ACCOUNT, t.task_id).progress_message == "touched" for t in tasks)
