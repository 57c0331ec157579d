"""Watching and steering the queues: status, restart, process-pending and requeue-pending."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from taskapi.auth.principal import Principal
from taskapi.counting.contributions import account_key, priority_attribute
from taskapi.counting.reads import covered_count
from taskapi.counting.store import CounterStore
from taskapi.models.domain import Priority, Task, TaskStatus, isoformat, utc_now, with_event
from taskapi.models.limits import MAX_LIST_LIMIT
from taskapi.observability import tracer
from taskapi.queueing.control import ProcessingControl, processing_active
from taskapi.queueing.messages import TaskMessage
from taskapi.queueing.queues import TaskQueue
from taskapi.services.queueing import enqueue
from taskapi.store.base import TaskFilters, TaskRepository

STATUS_ID_LIST = 100
"""Ids listed per status in the queue status answer (newest first)."""
NOT_QUEUEABLE = "Task has no request_data; it is stored, not queued"


@tracer.capture_method(capture_response=False)
def queue_status(
    repository: TaskRepository,
    queue: TaskQueue,
    control: ProcessingControl,
    principal: Principal,
    counters: CounterStore | None = None,
) -> dict[str, Any]:
    """The reference's queue status. A tenant sees figures about its own tasks only: its QUEUED
    tasks by priority, its PROCESSING tasks, and the mappings' states without their queues. An
    operator sees the real queues (every tenant's messages, the dead-letter queues) and the
    mappings' ids and queue ARNs. The account's figures come from its counter (one GetItem, may lag
    by seconds) when there are counters, else from COUNT queries per status and priority."""
    mappings = control.mappings()
    account = principal.account_id

    def newest(status: TaskStatus, want: int) -> list[str]:
        return repository.newest_ids(account, TaskFilters(statuses=(status,)), want=want)

    if counters is not None:
        counts = counters.get([account_key(account)])[account_key(account)]

        def by_priority(status: TaskStatus) -> dict[str, int]:
            return {p.value: counts.of(priority_attribute(status, p)) for p in Priority}

        pending = counts.of(TaskStatus.PENDING.value)
    else:

        def by_priority(status: TaskStatus) -> dict[str, int]:
            return {p.value: repository.count(account, TaskFilters(statuses=(status,), priority=p)) for p in Priority}

        pending = repository.count(account, TaskFilters(statuses=(TaskStatus.PENDING,)))

    queued, processing_by_priority = by_priority(TaskStatus.QUEUED), by_priority(TaskStatus.PROCESSING)
    processing = newest(TaskStatus.PROCESSING, 1)
    answer: dict[str, Any] = {
        "success": True,
        "queue_processing_active": processing_active(mappings),
        "current_processing_task": processing[0] if processing else None,
        "account_task_counts": {
            "pending": pending,
            "queued": sum(queued.values()),
            "processing": sum(processing_by_priority.values()),
        },
        "pending_task_ids": newest(TaskStatus.PENDING, STATUS_ID_LIST),
        "queued_task_ids": newest(TaskStatus.QUEUED, STATUS_ID_LIST),
    }
    if not principal.is_operator:
        answer["overall_queue_status"] = {
            "total_queued": sum(queued.values()),
            "processing": sum(processing_by_priority.values()),
            "by_priority": queued,
            "in_flight_by_priority": processing_by_priority,
            # Which of the account's FAILED tasks came through a dead-letter queue is not counted
            # per account (it would read every failed task): unknown rather than a guess.
            "dead_letter_by_priority": None,
            "dead_letter_total": None,
        }
        answer["event_source_mappings"] = [
            {"priority": m.priority, "state": m.state, "enabled": m.enabled} for m in mappings
        ]
        return answer
    depths = queue.depths()
    answer["overall_queue_status"] = {
        "total_queued": sum(d.visible + d.delayed for d in depths.values()),
        "processing": sum(d.in_flight for d in depths.values()),
        "by_priority": {p.value: d.visible + d.delayed for p, d in depths.items()},
        "in_flight_by_priority": {p.value: d.in_flight for p, d in depths.items()},
        "dead_letter_by_priority": {p.value: d.dead_letter for p, d in depths.items()},
        "dead_letter_total": sum(d.dead_letter for d in depths.values()),
    }
    answer["event_source_mappings"] = [
        {"id": m.mapping_id, "source": m.source_arn, "priority": m.priority, "state": m.state, "enabled": m.enabled}
        for m in mappings
    ]
    return answer


@tracer.capture_method(capture_response=False)
def restart_processing(control: ProcessingControl) -> dict[str, Any]:
    before = processing_active(control.mappings())
    after = processing_active(control.set_enabled(True))
    return {
        "success": after,
        "message": "Queue processing restarted" if after else "Queue processing could not be restarted",
        "was_processing_before": before,
        "is_processing_now": after,
    }


@tracer.capture_method(capture_response=False)
def pause_processing(control: ProcessingControl) -> dict[str, Any]:
    before = processing_active(control.mappings())
    after = processing_active(control.set_enabled(False))
    return {"success": not after, "was_processing_before": before, "is_processing_now": after}


def _queue_pending(
    repository: TaskRepository, queue: TaskQueue, principal: Principal, now: str, counters: CounterStore | None
) -> tuple[int, list[dict[str, Any]], int, int]:
    """Queue up to MAX_LIST_LIMIT PENDING tasks of the account. Answers (total pending, details,
    queued, failed); the total from the account's counter when there are counters."""
    filters = TaskFilters(statuses=(TaskStatus.PENDING,))
    counted = None if counters is None else covered_count(counters, principal.account_id, filters)
    total = repository.count(principal.account_id, filters) if counted is None else counted
    pending = repository.page(principal.account_id, filters, before=None, want=MAX_LIST_LIMIT)
    result = enqueue(repository, queue, pending, now=now)
    details = []
    queued = failed = 0
    for task in pending:
        key = (task.account_id, task.task_id)
        if task.request_data is None:
            details.append({"task_id": task.task_id, "status": "skipped", "reason": NOT_QUEUEABLE})
        elif key in result.refused:
            failed += 1
            details.append({"task_id": task.task_id, "status": "failed", "reason": result.refused[key]})
        elif result.tasks.get(key) is not None and result.tasks[key].status is TaskStatus.PENDING:
            failed += 1
            details.append({"task_id": task.task_id, "status": "failed", "reason": "Task changed; retry"})
        else:
            queued += 1
            details.append(
                {"task_id": task.task_id, "status": "queued", "reason": "Successfully added to processing queue"}
            )
    return total, details, queued, failed


@tracer.capture_method(capture_response=False)
def process_pending(
    repository: TaskRepository, queue: TaskQueue, principal: Principal, counters: CounterStore | None = None
) -> dict[str, Any]:
    total, details, queued, failed = _queue_pending(repository, queue, principal, isoformat(utc_now()), counters)
    return {
        "success": failed == 0,
        "message": f"Queued {queued} tasks, {failed} failures",
        "queued_count": queued,
        "failed_count": failed,
        "total_pending": total,
        "details": details,
    }


@tracer.capture_method(capture_response=False)
def requeue_pending(
    repository: TaskRepository,
    queue: TaskQueue,
    principal: Principal,
    *,
    queued_older_than_seconds: int,
    counters: CounterStore | None = None,
) -> dict[str, Any]:
    """process-pending, plus QUEUED tasks that have waited longer than the threshold: their message
    is presumed lost and is sent again. A duplicate is harmless: the first delivery claims the
    task and the other is acknowledged without work."""
    moment = utc_now()
    now = isoformat(moment)
    total, details, queued, failed = _queue_pending(repository, queue, principal, now, counters)
    cutoff = isoformat(moment - timedelta(seconds=queued_older_than_seconds))
    stale = [
        task
        for task in repository.page(
            principal.account_id, TaskFilters(statuses=(TaskStatus.QUEUED,)), before=None, want=MAX_LIST_LIMIT
        )
        if (task.state_since or task.updated_at) < cutoff
    ]
    refused = queue.send([(t.priority, TaskMessage.of(t)) for t in stale])
    requeued = 0
    notes: list[tuple[Task, int]] = []
    for index, task in enumerate(stale):
        if index in refused:
            failed += 1
            details.append({"task_id": task.task_id, "status": "failed", "reason": refused[index]})
            continue
        requeued += 1
        details.append({"task_id": task.task_id, "status": "requeued", "reason": "Message presumed lost; sent again"})
        notes.append(
            (
                task.model_copy(
                    update={
                        "updated_at": now,
                        "state_since": now,
                        "events": with_event(task.events, now, "Task message sent again (presumed lost)"),
                    }
                ),
                task.version,
            )
        )
    repository.save_many(notes)
    return {
        "success": failed == 0,
        "message": f"Queued {queued} pending and re-sent {requeued} queued tasks, {failed} failures",
        "queued_count": queued,
        "requeued_count": requeued,
        "failed_count": failed,
        "total_pending": total,
        "details": details,
    }
