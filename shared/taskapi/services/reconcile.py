"""The reconciler (every minute): nothing with request_data stays PENDING, nothing stays
PROCESSING after its worker died, and the task counters do not drift. Work per run is bounded;
every action is a write conditioned on the version (or counter rev) just read, so two overlapping
runs cannot both act on one task or counter."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from taskapi.counting.contributions import HELD, priority_attribute
from taskapi.counting.store import BY_PRIORITY_STATUSES, CounterKey, CounterStore
from taskapi.models.domain import (
    OPEN_STATUSES,
    PROCESSING_TIMEOUT_SECONDS,
    Priority,
    Task,
    TaskStatus,
    isoformat,
    utc_now,
)
from taskapi.observability import logger, metrics, tracer
from taskapi.services.processing import Processor, lease_expired
from taskapi.services.queueing import enqueue
from taskapi.store.base import TaskFilters, TaskRepository

RECOUNT_PER_RUN = 5
"""Counters recounted per run: each costs COUNT queries reading its tasks' index entries."""
RECOUNT_QUIET_SECONDS = 120
"""A counter is recounted only when the stream consumer has not changed it for this long: the
stream has caught up with its tasks, so the counts can be compared with the table's."""


@dataclass
class ReconcileReport:
    pending_found: int = 0
    enqueued: int = 0
    enqueue_refused: int = 0
    processing_found: int = 0
    timed_out: dict[str, int] = field(default_factory=dict)
    counters_checked: int = 0
    counters_repaired: int = 0
    counters_changed_meanwhile: int = 0
    """Drifted counters left alone: the consumer changed them between the read and the repair."""
    counter_drift: int = 0
    """Sum over the repaired counters of |recounted - counted|, attribute by attribute."""

    def as_dict(self) -> dict[str, object]:
        return {
            "pending_found": self.pending_found,
            "enqueued": self.enqueued,
            "enqueue_refused": self.enqueue_refused,
            "processing_found": self.processing_found,
            "timed_out": self.timed_out,
            "counters_checked": self.counters_checked,
            "counters_repaired": self.counters_repaired,
            "counters_changed_meanwhile": self.counters_changed_meanwhile,
            "counter_drift": self.counter_drift,
        }


def task_log_keys(task: Task) -> dict[str, object]:
    """The ids a log line about one task carries (per line: one run acts on many tasks)."""
    return {"account_id": task.account_id, "task_id": task.task_id, "attempt": task.attempt}


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
    counters: CounterStore | None = None,
    recount_per_run: int = RECOUNT_PER_RUN,
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
        for task in stuck:
            refused = result.refused.get((task.account_id, task.task_id))
            logger.info("stuck pending task sent to its queue again", extra={**task_log_keys(task), "refused": refused})

    shortest = min(PROCESSING_TIMEOUT_SECONDS.values())
    candidates = repository.open_tasks(
        TaskStatus.PROCESSING, before=isoformat(moment - timedelta(seconds=shortest)), limit=limit
    )
    for task in _read(repository, candidates):
        if task.status is not TaskStatus.PROCESSING or not lease_expired(task, moment):
            continue
        report.processing_found += 1
        minutes = PROCESSING_TIMEOUT_SECONDS[task.task_type] // 60
        outcome = processor.fail_try(
            task, f"Processing timed out after {minutes} minutes", permanent=False, timed_out=True
        )
        logger.info("processing timed out", extra={**task_log_keys(task), "outcome": outcome.value})
        report.timed_out[outcome.value] = report.timed_out.get(outcome.value, 0) + 1
    # Found stuck, whether or not SQS took the re-queue: an alarm counts tasks that did not move.
    metrics.add_metric(name="TasksStuck", unit="Count", value=report.pending_found + report.processing_found)
    if counters is not None:
        recount(counters, repository, report, moment=moment, want=recount_per_run)
    logger.info("reconciled", extra=report.as_dict())
    return report


def recounted(repository: TaskRepository, key: CounterKey) -> dict[str, int]:
    """What the counter should hold, by COUNT queries on the task indexes: per status (an account's
    QUEUED and PROCESSING as the sum of their per-priority counts) and an account's HELD."""
    account = key.account_id
    group_id = key.value if key.kind == "G" else None
    source_ids = (key.value,) if key.kind == "S" and key.value is not None else ()
    counts: dict[str, int] = {}
    for status in TaskStatus:
        if key.kind == "A" and status in BY_PRIORITY_STATUSES:
            by_priority = {
                priority_attribute(status, p): repository.count(account, TaskFilters(statuses=(status,), priority=p))
                for p in Priority
            }
            counts.update(by_priority)
            counts[status.value] = sum(by_priority.values())
        else:
            place = TaskFilters(group_id=group_id, source_ids=source_ids, statuses=(status,))
            counts[status.value] = repository.count(account, place)
    if key.kind == "A":
        held = TaskFilters(statuses=tuple(s for s in TaskStatus if s in OPEN_STATUSES), queueable=True)
        counts[HELD] = repository.count(account, held)
    return counts


@tracer.capture_method(capture_response=False)
def recount(
    counters: CounterStore, repository: TaskRepository, report: ReconcileReport, *, moment: datetime, want: int
) -> None:
    """Recount up to `want` quiescent counters (the Scan goes on from where the last run stopped)
    and repair those that drifted, each repair conditioned on the counter's rev being unchanged.
    Drift is logged per counter and emitted as the CounterDrift metric (0 included)."""
    quiet_since = isoformat(moment - timedelta(seconds=RECOUNT_QUIET_SECONDS))
    for record in counters.quiescent(changed_before=quiet_since, want=want):
        key = CounterKey.parse(record.key)
        if key is None:
            continue
        report.counters_checked += 1
        expected = recounted(repository, key)
        differences = {
            attribute: amount - record.counts.of(attribute)
            for attribute, amount in expected.items()
            if amount != record.counts.of(attribute)
        }
        if not differences:
            continue
        if not counters.repair(record.key, expected, rev=record.counts.rev):
            report.counters_changed_meanwhile += 1
            logger.info("counter changed while recounted; left for a later run", extra={"counter_key": record.key})
            continue
        drift = sum(abs(difference) for difference in differences.values())
        report.counters_repaired += 1
        report.counter_drift += drift
        logger.warning(
            "counter drift repaired",
            extra={"counter_key": record.key, "drift": drift, "differences": differences, "rev": record.counts.rev},
        )
    metrics.add_metric(name="CounterDrift", unit="Count", value=report.counter_drift)
