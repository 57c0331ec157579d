"""Bulk cancel and bulk regenerate. Every change is a write conditioned on the version read, so
cancel wins over a late completion and two regenerates of one task cannot both take effect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskapi.auth.principal import Principal
from taskapi.errors import InvalidRequest, TooManyItems
from taskapi.models.domain import FINAL_STATUSES, Task, TaskStatus, TaskType, isoformat, utc_now, with_event
from taskapi.models.limits import MAX_BULK_TASKS
from taskapi.models.requests import BulkRegenerateRequest
from taskapi.observability import logger, metrics, tracer
from taskapi.queueing.queues import TaskQueue
from taskapi.services.queueing import enqueue
from taskapi.store.base import TaskRepository

WRITE_ROUNDS = 4
"""A task that keeps changing under us (a busy worker) is re-read and decided again this often."""

QUEUE_RESULT = {
    TaskStatus.QUEUED: "Task cancelled from queue",
    TaskStatus.PENDING: "Not in queue",
    TaskStatus.PROCESSING: "Processing stops at its next progress update",
}


@dataclass
class BulkOutcome:
    not_found: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for d in self.details if d["status"] == status)


def _ids(task_ids: Sequence[str], verb: str) -> list[str]:
    if not task_ids:
        raise InvalidRequest("task_ids list cannot be empty")
    unique = list(dict.fromkeys(task_ids))
    if len(unique) > MAX_BULK_TASKS:
        raise TooManyItems(f"Cannot {verb} more than {MAX_BULK_TASKS} tasks at once")
    return unique


Decision = tuple[Task | None, dict[str, Any]]
"""(the task to write, or None when nothing is written; the detail entry if written)"""


def _apply(
    repository: TaskRepository,
    account_id: str,
    ids: list[str],
    decide: Callable[[Task], Decision],
    outcome: BulkOutcome,
) -> list[Task]:
    """Decide each task, write all decisions in one batch, and re-read and decide again the tasks
    that changed in between. Answers the tasks written."""
    found = repository.get_many(account_id, ids)
    outcome.not_found = [task_id for task_id in ids if task_id not in found]
    details: dict[str, dict[str, Any]] = {}
    written: list[Task] = []
    pending = [found[task_id] for task_id in ids if task_id in found]
    for _ in range(WRITE_ROUNDS):
        changes: list[tuple[Task, int]] = []
        planned: dict[str, dict[str, Any]] = {}
        for task in pending:
            change, detail = decide(task)
            if change is None:
                details[task.task_id] = detail
            else:
                changes.append((change, task.version))
                planned[task.task_id] = detail
        saved = repository.save_many(changes)
        for task_id, task in saved.items():
            details[task_id] = planned[task_id]
            written.append(task)
        moved = [task.task_id for task, _ in changes if task.task_id not in saved]
        if not moved:
            break
        pending = list(repository.get_many(account_id, moved).values())
        for task_id in moved:
            details.setdefault(task_id, {"task_id": task_id, "status": "failed", "reason": "Task changed; retry"})
    for task_id in ids:
        if task_id in details:
            outcome.details.append(details[task_id])
    return written


# ------------------------------------------------------------------ cancel
@tracer.capture_method(capture_response=False)
def cancel_tasks(
    repository: TaskRepository, principal: Principal, task_ids: Sequence[str], reason: str
) -> dict[str, Any]:
    ids = _ids(task_ids, "cancel")
    now = isoformat(utc_now())
    outcome = BulkOutcome()

    def decide(task: Task) -> Decision:
        if task.status in FINAL_STATUSES:
            return None, {
                "task_id": task.task_id,
                "status": "skipped",
                "reason": f"Task already in final state: {task.status.value}",
            }
        cancelled = task.moved_to(
            TaskStatus.CANCELLED,
            now,
            f"Task cancelled: {reason}",
            error_message=f"Cancelled: {reason}",
            error_details={
                "cancelled": True,
                "reason": reason,
                "cancelled_at": now,
                "cancelled_by": principal.user_id,
                "previous_status": task.status.value,
            },
        )
        return cancelled, {
            "task_id": task.task_id,
            "status": "cancelled",
            "reason": f"Successfully cancelled: {reason}",
            "queue_result": QUEUE_RESULT[task.status],
        }

    _apply(repository, principal.account_id, ids, decide, outcome)
    cancelled = outcome.count("cancelled")
    failures = len(outcome.details) - cancelled
    logger.info("tasks cancelled", extra={"cancelled_count": cancelled, "requested_count": len(ids)})
    if cancelled:
        metrics.add_metric(name="TasksCancelled", unit="Count", value=cancelled)
    return {
        "success": outcome.count("failed") == 0,
        "message": f"Cancelled {cancelled} tasks, {failures} failures",
        "cancelled_count": cancelled,
        "failed_count": failures,
        "not_found_count": len(outcome.not_found),
        "not_found_ids": outcome.not_found,
        "total_requested": len(ids),
        "cancellation_reason": reason,
        "details": outcome.details,
    }


# ------------------------------------------------------------------ regenerate
def _regenerated(task: Task, request: BulkRegenerateRequest, now: str) -> Task:
    attempt = task.attempt + 1
    request_data = dict(task.request_data or {})
    if task.task_type is TaskType.VIDEO:
        for name in ("logo_url", "intro_video_url", "outro_video_url"):
            value = getattr(request, name)
            if value is not None:
                request_data[name] = value
    update: dict[str, Any] = {
        "attempt": attempt,
        "tries": 0,
        "status": TaskStatus.PENDING,
        "state_since": now,
        "updated_at": now,
        "request_data": request_data,
        "events": with_event(task.events, now, f"Task regenerated (attempt {attempt})"),
    }
    if request.reset_to_pending:
        update.update(
            progress=0.0,
            progress_message=None,
            result_key=None,
            result_summary=None,
            error_message=None,
            error_details=None,
        )
    return task.model_copy(update=update)


@tracer.capture_method(capture_response=False)
def regenerate_tasks(
    repository: TaskRepository, queue: TaskQueue, principal: Principal, request: BulkRegenerateRequest
) -> dict[str, Any]:
    ids = _ids(request.task_ids, "regenerate")
    now = isoformat(utc_now())
    outcome = BulkOutcome()
    first_read: dict[str, int] = {}  # the attempt each task was on when this request first read it

    def decide(task: Task) -> Decision:
        if task.attempt != first_read.setdefault(task.task_id, task.attempt):
            # Re-read after a lost write: another request started a new attempt meanwhile (it may
            # not be queued yet). This request asked for exactly that; it must not add another.
            return None, {
                "task_id": task.task_id,
                "status": "skipped",
                "reason": "Task was regenerated by another request meanwhile",
            }
        if task.status is TaskStatus.QUEUED:
            return None, {"task_id": task.task_id, "status": "skipped", "reason": "Task is already in the queue"}
        if task.status is TaskStatus.PROCESSING and not request.force:
            return None, {
                "task_id": task.task_id,
                "status": "skipped",
                "reason": "Task is currently processing. Use force=true to override.",
            }
        if task.request_data is None:
            return None, {
                "task_id": task.task_id,
                "status": "failed",
                "reason": "Task has no request_data to regenerate",
            }
        return _regenerated(task, request, now), {
            "task_id": task.task_id,
            "status": "regenerated",
            "reason": "Successfully queued for regeneration",
        }

    written = _apply(repository, principal.account_id, ids, decide, outcome)
    queued = enqueue(repository, queue, written, now=now)
    for detail in outcome.details:
        reason = queued.refused.get((principal.account_id, detail["task_id"]))
        if reason is not None:
            detail["reason"] = f"Regenerated; not queued yet ({reason}), it will be retried"
    regenerated = outcome.count("regenerated")
    failures = len(outcome.details) - regenerated
    if regenerated:
        metrics.add_metric(name="TasksRegenerated", unit="Count", value=regenerated)
    return {
        "success": outcome.count("failed") == 0,
        "message": f"Regenerated {regenerated} tasks, {failures} failures",
        "regenerated_count": regenerated,
        "failed_count": failures,
        "not_found_count": len(outcome.not_found),
        "not_found_ids": outcome.not_found,
        "total_requested": len(ids),
        "details": outcome.details,
    }
