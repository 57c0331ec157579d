"""The reconciler (every minute): nothing with request_data stays PENDING, and nothing stays
PROCESSING after its worker died. Work per run is bounded; every action is a write conditioned on
the version just read, so two overlapping runs cannot both act on one task."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from taskapi.models.domain import PROCESSING_TIMEOUT_SECONDS, Task, TaskStatus, isoformat, utc_now
from taskapi.observability import logger, tracer
from taskapi.services.processing import Processor, lease_expired
from taskapi.services.queueing import enqueue
from taskapi.store.base import TaskRepository


@dataclass
class ReconcileReport:
    pending_found: int = 0
    enqueued: int = 0
    enqueue_refused: int = 0
    processing_found: int = 0
    timed_out: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "pending_found": self.pending_found,
            "enqueued": self.enqueued,
            "enqueue_refused": self.enqueue_refused,
            "processing_found": self.processing_found,
            "timed_out": self.timed_out,
        }


def _read(repository: TaskRepository, keys: list[tuple[str, str]]) -> list[Task]:
    """Re-read index hits from the table: the index lags, the table is the truth."""
    by_account: dict[str, list[str]] = defaultdict(list)
    for account_id, task_id in keys:
        by_account[account_id].append(task_id)
    tasks: list[Task] = []
    for account_id, ids in by_account.items():
        tasks += repository.get_many(account_id, ids).values()
    return tasks


@tracer.capture_method(capture_response=False)
def reconcile(
    processor: Processor,
    *,
    pending_after_seconds: int,
    limit: int,
    clock: Callable[[], datetime] = utc_now,
) -> ReconcileReport:
    repository = processor.repository
    report = ReconcileReport()
    moment = clock()

    cutoff = isoformat(moment - timedelta(seconds=pending_after_seconds))
    stuck = [
        task
        for task in _read(repository, repository.open_tasks(TaskStatus.PENDING, before=cutoff, limit=limit))
        if task.status is TaskStatus.PENDING and task.request_data is not None and (task.state_since or "") < cutoff
    ]
    report.pending_found = len(stuck)
    if stuck:
        result = enqueue(repository, processor.queue, stuck, now=isoformat(moment))
        report.enqueue_refused = len(result.refused)
        report.enqueued = sum(1 for task in result.tasks.values() if task.status is TaskStatus.QUEUED)

    shortest = min(PROCESSING_TIMEOUT_SECONDS.values())
    candidates = repository.open_tasks(
        TaskStatus.PROCESSING, before=isoformat(moment - timedelta(seconds=shortest)), limit=limit
    )
    for task in _read(repository, candidates):
        if task.status is not TaskStatus.PROCESSING or not lease_expired(task, moment):
            continue
        report.processing_found += 1
        minutes = PROCESSING_TIMEOUT_SECONDS[task.task_type] // 60
        outcome = processor.fail_try(task, f"Processing timed out after {minutes} minutes", permanent=False)
        report.timed_out[outcome.value] = report.timed_out.get(outcome.value, 0) + 1
    logger.info("reconciled", extra=report.as_dict())
    return report
