"""Stream records of the tasks and counters tables, shaped as Lambda delivers them, for the tests of
the events derived from them (test_events, test_publish)."""

from __future__ import annotations

import itertools
from typing import Any

from taskapi.models.domain import Priority, Task, TaskStatus, TaskType
from taskapi.store.dynamodb import task_to_item

ACCOUNT = "acct_a"
TASKS_TABLE = "taskapi-local-TasksTable"
COUNTERS_TABLE = "taskapi-local-CountersTable"
T0 = "2026-03-01T10:00:00.000000Z"
REQUEST = {"story_prompt": "Pythagoras discovered a theorem about right triangles."}
_sequence = itertools.count(1)


def at(seconds: float) -> str:
    """T0 + seconds, as the repository writes times."""
    whole, fraction = divmod(round(seconds * 1_000_000), 1_000_000)
    minutes, secs = divmod(whole, 60)
    return f"2026-03-01T10:{minutes:02d}:{secs:02d}.{fraction:06d}Z"


def task(**changes: Any) -> Task:
    fields: dict[str, Any] = {
        "account_id": ACCOUNT,
        "task_id": "t1",
        "user_id": "u1",
        "task_type": TaskType.QUIZ,
        "priority": Priority.HIGH,
        "created_at": T0,
        "updated_at": T0,
        "request_data": REQUEST,
        "task_source_group_id": "g1",
    }
    return Task(**(fields | changes))


def moved(t: Task, status: TaskStatus, seconds: float, **changes: Any) -> Task:
    """The task after a write that moves it, as the services write it (version + 1)."""
    return t.moved_to(status, at(seconds), f"now {status.value}", version=t.version + 1, **changes)


def progressed(t: Task, seconds: float, progress: float) -> Task:
    """The task after a progress write (record_progress: no new state_since)."""
    return t.model_copy(
        update={
            "progress": progress,
            "progress_message": f"{progress}%",
            "updated_at": at(seconds),
            "version": t.version + 1,
        }
    )


def stream_arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-03-01T00:00:00.000"


def record(
    old: dict[str, Any] | None, new: dict[str, Any] | None, *, table: str = TASKS_TABLE, event_id: str | None = None
) -> dict[str, Any]:
    """One stream record (NEW_AND_OLD_IMAGES) of a change from image `old` to image `new`."""
    name = "INSERT" if old is None else ("REMOVE" if new is None else "MODIFY")
    images: dict[str, Any] = {}
    if old is not None:
        images["OldImage"] = old
    if new is not None:
        images["NewImage"] = new
    return {
        "eventID": event_id or f"rec-{next(_sequence)}",
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "eventSourceARN": stream_arn(table),
        "dynamodb": {"SequenceNumber": str(next(_sequence)), "StreamViewType": "NEW_AND_OLD_IMAGES", **images},
    }


def task_record(old: Task | None, new: Task | None) -> dict[str, Any]:
    return record(
        None if old is None else task_to_item(old), None if new is None else task_to_item(new), table=TASKS_TABLE
    )


def counter_image(group: str, *, rev: int, changed_at: str, account: str = ACCOUNT, **counts: int) -> dict[str, Any]:
    """A group counter item (G#<account>#<group>) with these status counts."""
    item: dict[str, Any] = {
        "counter_key": {"S": f"G#{account}#{group}"},
        "rev": {"N": str(rev)},
        "changed_at": {"S": changed_at},
    }
    item.update({status: {"N": str(amount)} for status, amount in counts.items()})
    return item


def counter_record(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    return record(old, new, table=COUNTERS_TABLE)


def lifecycle() -> list[tuple[Task | None, Task]]:
    """A task's writes from insert to completion: (old, new) of each."""
    inserted = task(status=TaskStatus.QUEUED, version=1)
    claimed = moved(inserted, TaskStatus.PROCESSING, 1)
    halfway = progressed(claimed, 7, 50.0)
    done = moved(halfway, TaskStatus.COMPLETED, 12, progress=100.0, result_key="results/acct_a/t1/quiz.json")
    return [(None, inserted), (inserted, claimed), (claimed, halfway), (halfway, done)]
