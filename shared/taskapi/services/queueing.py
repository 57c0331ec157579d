"""Putting tasks on their priority's queue. New tasks are sent before their one insert
(send_before_insert); every path that queues stored tasks (regenerate, process-pending,
requeue-pending, the reconciler) goes through enqueue()."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from taskapi.models.domain import Task, TaskStatus, with_event
from taskapi.queueing.messages import TaskMessage
from taskapi.queueing.queues import TaskQueue
from taskapi.store.base import TaskRepository

TaskKey = tuple[str, str]
"""(account_id, task_id)"""


def key_of(task: Task) -> TaskKey:
    return (task.account_id, task.task_id)


@dataclass
class EnqueueResult:
    tasks: dict[TaskKey, Task] = field(default_factory=dict)
    """The current state of every task that was considered."""
    refused: dict[TaskKey, str] = field(default_factory=dict)
    """Tasks SQS refused (they stay PENDING, with an event saying why) and why."""


def queue_event(task: Task) -> str:
    return f"Task added to {task.task_type.value} processing queue"


def not_queued_event(reason: str) -> str:
    return f"Not queued yet ({reason}); it will be retried"


def send_before_insert(queue: TaskQueue, tasks: Sequence[Task], *, now: str) -> list[Task]:
    """One write per new task: send the message of every new task that has request_data FIRST,
    and answer each task as it is to be inserted — QUEUED when its message went, PENDING with why
    when SQS refused it (the reconciler sends it again), unchanged without request_data.

    The message may reach the processor before the insert lands (it sends such a message again
    a few seconds later), or for an id that turns out to exist already, or, after a crash before
    the insert, for no task at all: the processor claims a task once per attempt and acknowledges
    the rest, so none of these runs anything twice, and nothing inserted is without its message."""
    candidates = [i for i, t in enumerate(tasks) if t.status is TaskStatus.PENDING and t.request_data is not None]
    if not candidates:
        return list(tasks)
    refused = queue.send([(tasks[i].priority, TaskMessage.of(tasks[i])) for i in candidates])
    ready = list(tasks)
    for position, index in enumerate(candidates):
        task = tasks[index]
        reason = refused.get(position)
        if reason is None:
            ready[index] = task.moved_to(TaskStatus.QUEUED, now, queue_event(task))
        else:
            ready[index] = task.model_copy(
                update={"updated_at": now, "events": with_event(task.events, now, not_queued_event(reason))}
            )
    return ready


def enqueue(repository: TaskRepository, queue: TaskQueue, tasks: Sequence[Task], *, now: str) -> EnqueueResult:
    """Send each PENDING task that has request_data to its queue, then mark the sent ones QUEUED
    and note on the refused ones why they are still PENDING — one batched write for all of them.

    A refused task is not lost: it stays PENDING and the reconciler (or process-pending) sends it
    again. A task a worker claimed before the QUEUED write landed is re-read, not overwritten."""
    candidates = [t for t in tasks if t.status is TaskStatus.PENDING and t.request_data is not None]
    result = EnqueueResult()
    if not candidates:
        return result
    refused_by_index = queue.send([(t.priority, TaskMessage.of(t)) for t in candidates])
    changes: list[tuple[Task, int]] = []
    for index, task in enumerate(candidates):
        reason = refused_by_index.get(index)
        if reason is None:
            updated = task.moved_to(TaskStatus.QUEUED, now, queue_event(task))
        else:
            result.refused[key_of(task)] = reason
            updated = task.model_copy(
                update={
                    "updated_at": now,
                    "events": with_event(task.events, now, not_queued_event(reason)),
                }
            )
        changes.append((updated, task.version))
    by_account: dict[str, list[tuple[Task, int]]] = defaultdict(list)
    for change in changes:
        by_account[change[0].account_id].append(change)
    for account_id, account_changes in by_account.items():
        saved = repository.save_many(account_changes)
        moved = [task.task_id for task, _ in account_changes if task.task_id not in saved]
        if moved:
            saved.update(repository.get_many(account_id, moved))
        result.tasks.update({(account_id, task_id): task for task_id, task in saved.items()})
    return result
