"""Processing one task message: claim, generate, store, complete — each step fenced so that a
duplicate, stale or superseded message, a cancel or a regenerate never lets an old run write."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeGuard

from taskapi.engines.base import ContentEngine, EngineError
from taskapi.errors import Conflict, Retryable, ServiceMisconfigured
from taskapi.models.domain import (
    MAX_TRIES,
    PROCESSING_TIMEOUT_SECONDS,
    Priority,
    Task,
    TaskStatus,
    TaskType,
    isoformat,
    utc_now,
    with_event,
)
from taskapi.observability import logger, metrics, seconds_between, task_metric, tracer
from taskapi.queueing.messages import TaskMessage
from taskapi.queueing.queues import TaskQueue
from taskapi.results import ResultStore, result_prefix
from taskapi.services.queueing import queue_event
from taskapi.store.base import TaskRepository

CLAIM_ROUNDS = 3
"""A claim that loses to another write is decided again this often before the message is retried."""
PROGRESS_CEILING = 99.0
"""Engines report below this; only completion writes 100."""
NOT_STORED_GRACE_SECONDS = 60
"""A message can come before its task's insert lands (create sends first, then inserts): one whose
task is not stored is sent again for this long after its first send, then acknowledged."""
NOT_STORED_RETRY_DELAY_SECONDS = 5


class FailureReason(StrEnum):
    """The `reason` dimension of TasksFailedByType: where a task was failed."""

    PERMANENT = "permanent"
    """The engine said the task cannot succeed."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """The last of the type's tries failed."""
    DEAD_LETTER = "dead_letter"
    """Its message exhausted its deliveries (the processor kept failing on AWS)."""
    TIMED_OUT = "timed_out"
    """The reconciler found the last try's worker gone after the processing timeout."""


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    SKIPPED = "skipped"
    """Duplicate, stale or superseded message, or a task gone: acknowledged without work."""
    STOPPED = "stopped"
    """The task was cancelled, regenerated or timed out while running: the run wrote nothing more."""
    DEFERRED = "deferred"
    """The task was not stored yet: the message was sent again with a delay and acknowledged."""


class Superseded(Exception):
    """Raised from the progress callback when the fence fails: stop the engine."""


@dataclass
class Processor:
    repository: TaskRepository
    queue: TaskQueue
    results: ResultStore
    engine_for: Callable[[TaskType], ContentEngine]
    retry_delay_seconds: int = 30
    clock: Callable[[], datetime] = utc_now
    progress_interval_seconds: float = 5.0
    """At most one progress write per this many seconds of a run (the claim counts as the first):
    reports in between are not written. Completion is always written; a cancel stops the run at
    its next write."""
    ticker: Callable[[], float] = time.monotonic
    """The seconds the progress interval is measured in (tests move it by hand)."""

    def _now(self) -> str:
        return isoformat(self.clock())

    # ------------------------------------------------------------------ claim
    def _claimable(self, task: Task, message: TaskMessage) -> bool:
        if task.attempt != message.attempt or task.request_data is None:
            return False  # another attempt's message; or nothing to generate from (never run)
        if task.status in (TaskStatus.PENDING, TaskStatus.QUEUED):
            return True
        if task.status is TaskStatus.PROCESSING:
            return lease_expired(task, self.clock())  # its worker died; this delivery takes over
        return False

    @tracer.capture_method(capture_response=False)
    def process(self, message: TaskMessage, *, sent_at: datetime | None = None) -> Outcome:
        """sent_at: when SQS took the message (its SentTimestamp), which decides how long a message
        whose task is not stored yet is sent again; unknown (None), such a message is acknowledged."""
        # A failed claim is decided again on a fresh read: the write that got in first may be one
        # that leaves the task claimable (enqueue marking it QUEUED, a "not queued yet" note).
        # Acknowledging the message then would leave a QUEUED task with no message.
        for _ in range(CLAIM_ROUNDS):
            task = self.repository.get(message.account_id, message.task_id)
            if task is None and sent_at is not None:
                return self._not_stored_yet(message, sent_at)
            if task is None or not self._claimable(task, message):
                logger.info(
                    "message acknowledged without work",
                    extra={
                        "status": task.status.value if task else None,
                        "task_attempt": task.attempt if task else None,
                    },
                )
                return Outcome.SKIPPED
            now = self._now()
            tries = task.tries + 1
            claimed = task.model_copy(
                update={
                    "status": TaskStatus.PROCESSING,
                    "state_since": now,
                    "updated_at": now,
                    "tries": tries,
                    "progress": 0.0 if task.status is not TaskStatus.PROCESSING else task.progress,
                    "progress_message": "Processing started",
                    "events": with_event(
                        # Claimed before enqueue's QUEUED write landed: that write will lose, so its
                        # event is recorded here and the history reads the same either way.
                        with_event(task.events, now, queue_event(task))
                        if task.status is TaskStatus.PENDING
                        else task.events,
                        now,
                        f"Processing started (try {tries} of {MAX_TRIES[task.task_type]})",
                    ),
                }
            )
            try:
                claimed = self.repository.save(claimed, expected_version=task.version)
            except Conflict:
                continue  # another delivery, a cancel or a regenerate wins on the next read
            if task.status is not TaskStatus.PROCESSING:  # a takeover from a dead worker did not wait in a queue
                task_metric("TaskQueueWait", "Seconds", queue_wait_seconds(task, now), claimed)
            break
        else:
            raise Retryable("The task kept changing while it was claimed")
        try:
            return self._run(claimed)
        except (Retryable, ServiceMisconfigured):  # an AWS failure: the redelivery (or the DLQ) decides
            self._release(claimed)
            raise

    def _not_stored_yet(self, message: TaskMessage, sent_at: datetime) -> Outcome:
        """The task of this message is not stored: its create may still be inserting it (the
        message is sent again with a short delay), or never will (a crash between the send and the
        insert; the client's retry sends its own message): after the grace period, acknowledged."""
        first_sent_ms = message.first_sent_ms or int(sent_at.timestamp() * 1000)
        age = self.clock().timestamp() - first_sent_ms / 1000
        if age >= NOT_STORED_GRACE_SECONDS:
            logger.info("message of a task that was never stored acknowledged", extra={"age_seconds": age})
            return Outcome.SKIPPED
        again = dataclasses.replace(message, first_sent_ms=first_sent_ms)
        priority = message.priority or Priority.NORMAL
        refused = self.queue.send([(priority, again)], delay_seconds=NOT_STORED_RETRY_DELAY_SECONDS)
        if refused:  # this delivery fails instead: SQS delivers it again after its visibility timeout
            raise Retryable(f"The message of a task not stored yet could not be sent again: {refused[0]}")
        logger.info("task not stored yet: message sent again", extra={"age_seconds": age})
        return Outcome.DEFERRED

    # ------------------------------------------------------------------ run
    def _run(self, task: Task) -> Outcome:
        # A run that reclaims a task from a dead worker starts from the progress that worker left:
        # reports below it are written as that value, so progress never goes back and the fence
        # (which refuses a lower value) does not mistake the restarted run for a superseded one.
        floor = task.progress
        last_write = self.ticker()  # the claim wrote "Processing started"
        version = task.version  # the stored task's, as long as only this run writes it

        def progress(percent: float, note: str) -> None:
            nonlocal last_write, version
            tick = self.ticker()
            if tick - last_write < self.progress_interval_seconds:
                return  # written at most once per interval: most runs write only claim and completion
            last_write = tick
            fenced = self.repository.record_progress(
                task.account_id,
                task.task_id,
                attempt=task.attempt,
                progress=max(min(max(float(percent), 0.0), PROGRESS_CEILING), floor),
                message=note[:200],
                now=self._now(),
                claim=task.state_since,
            )
            if not fenced:
                raise Superseded
            version += 1

        started = self.clock()
        try:
            artifact = self.engine_for(task.task_type).generate(task.request_data or {}, progress)
        except Superseded:
            logger.info("run stopped: the task was cancelled, regenerated or timed out")
            return Outcome.STOPPED
        except EngineError as exc:
            return self.fail_try(task, str(exc.detail), permanent=exc.permanent, details=exc.details)
        except (Retryable, ServiceMisconfigured):  # AWS failed the progress write: not the engine's fault
            raise
        except Exception as exc:  # an engine bug: count it as a failed try, bounded by MAX_TRIES
            logger.exception("engine raised an unexpected error")
            return self.fail_try(task, f"{type(exc).__name__}: {exc}", permanent=False)

        # Each claim writes under its own prefix, so a worker that outlived its lease can never
        # overwrite the files of the claim that completed the attempt.
        prefix = result_prefix(task.account_id, task.task_id, task.attempt, claim=task.state_since)
        key = self.results.put(prefix, artifact)
        # The completion is written against the version this run's own writes left, without reading
        # the task first: any other write since (a cancel, a regenerate, a takeover) makes it a
        # Conflict, and only then is the task read to decide.
        current: Task | None = task.model_copy(update={"version": version})
        for _ in range(3):
            if not same_claim(current, task):
                self.results.delete(prefix, artifact)  # cancel, a newer attempt or claim won: no orphan
                return Outcome.STOPPED
            now = self._now()
            done = current.moved_to(
                TaskStatus.COMPLETED,
                now,
                "Task completed",
                progress=100.0,
                progress_message=None,
                result_key=key,
                result_summary=artifact.summary,
                error_message=None,
                error_details=None,
            )
            try:
                self.repository.save(done, expected_version=current.version)
            except Conflict:
                current = self.repository.get(task.account_id, task.task_id)
                continue
            metrics.add_metric(name="TasksCompleted", unit="Count", value=1)
            metrics.add_metric(
                name="ProcessingDuration", unit="Seconds", value=(self.clock() - started).total_seconds()
            )
            task_metric("TasksCompletedByType", "Count", 1, done)
            task_metric("TaskProcessingTime", "Seconds", seconds_between(task.state_since, now), done)
            task_metric("TaskEndToEndTime", "Seconds", seconds_between(done.created_at, now), done)
            return Outcome.COMPLETED
        raise Retryable("The task kept changing while its completion was written")

    # ------------------------------------------------------------------ failures
    def fail_try(
        self,
        task: Task,
        error: str,
        *,
        permanent: bool,
        details: dict[str, Any] | None = None,
        timed_out: bool = False,
    ) -> Outcome:
        """A try failed: queue the next one with a delay, or end FAILED after the type's max tries.
        Only the claim `task` was read under is failed: a newer claim (a redelivery that took the
        task over after the lease ended) is left running. timed_out: the reconciler fails a try
        whose worker is gone (a last such try is counted as failed with reason timed_out)."""
        for _ in range(3):
            current = self.repository.get(task.account_id, task.task_id)
            if not same_claim(current, task):
                return Outcome.STOPPED
            now = self._now()
            limit = MAX_TRIES[current.task_type]
            if permanent or current.tries >= limit:
                why = "cannot succeed" if permanent else f"failed {current.tries} of {limit} tries"
                changed = current.moved_to(
                    TaskStatus.FAILED,
                    now,
                    f"Task failed ({why}): {error}",
                    progress_message=None,
                    error_message=error,
                    error_details={
                        **(details or {}),
                        "tries": current.tries,
                        "permanent": permanent,
                        "last_error": error,
                    },
                )
                outcome = Outcome.FAILED
            else:
                delay = min(self.retry_delay_seconds * current.tries, 900)
                changed = current.moved_to(
                    TaskStatus.QUEUED,
                    now,
                    f"Try {current.tries} failed: {error}; retrying in {delay} s",
                    progress_message=None,
                    error_details={**(details or {}), "tries": current.tries, "last_error": error},
                )
                outcome = Outcome.RETRY_SCHEDULED
            try:
                saved = self.repository.save(changed, expected_version=current.version)
            except Conflict:
                continue
            if outcome is Outcome.FAILED:
                metrics.add_metric(name="TasksFailed", unit="Count", value=1)
                if permanent:
                    reason = FailureReason.PERMANENT
                elif timed_out:
                    reason = FailureReason.TIMED_OUT
                else:
                    reason = FailureReason.RETRIES_EXHAUSTED
                task_metric("TasksFailedByType", "Count", 1, saved, reason=reason.value)
                return outcome
            refused = self.queue.send([(saved.priority, TaskMessage.of(saved))], delay_seconds=delay)
            if refused:
                # The task is QUEUED for this attempt: redelivery of the current message claims it.
                raise Retryable(f"The retry could not be queued: {refused[0]}")
            task_metric("TasksRetried", "Count", 1, saved)
            return outcome
        raise Retryable("The task kept changing while its failure was written")

    def _release(self, task: Task) -> None:
        """Give the claim back after an AWS failure, without counting the try (best effort: if
        this fails too, the lease runs out and the redelivered message takes over)."""
        current = self.repository.get(task.account_id, task.task_id)
        if not same_claim(current, task):
            return
        now = self._now()
        released = current.moved_to(
            TaskStatus.QUEUED,
            now,
            "Processing interrupted by an AWS error; retrying",
            tries=max(current.tries - 1, 0),
        )
        try:
            self.repository.save(released, expected_version=current.version)
        except (Conflict, Retryable, ServiceMisconfigured):
            logger.warning("could not release the claim; the lease will expire instead")


def same_claim(current: Task | None, task: Task) -> TypeGuard[Task]:
    """`current` is still PROCESSING under the claim `task` was read at. Every claim sets
    state_since (progress writes leave it alone), so a redelivery that reclaimed the task after
    the lease ended is a different claim even on the same attempt."""
    return (
        current is not None
        and current.status is TaskStatus.PROCESSING
        and current.attempt == task.attempt
        and current.state_since == task.state_since
    )


def queue_wait_seconds(task: Task, claimed_at: str) -> float:
    """How long `task` (as read, PENDING or QUEUED) waited before this claim: from when it last
    entered that status (state_since), which is its creation for a new task, its regeneration
    for a regenerated one (a new attempt restarts PENDING), and the failed try for a re-queued
    retry (so a retry's wait includes its deliberate delay). A "not queued yet" note on a PENDING
    task leaves state_since alone, so SQS refusals count as waiting. created_at would charge a
    regenerated task its whole earlier life."""
    return seconds_between(task.state_since or task.created_at, claimed_at)


def lease_expired(task: Task, moment: datetime) -> bool:
    since = datetime.fromisoformat((task.state_since or task.updated_at).replace("Z", "+00:00"))
    return moment - since > timedelta(seconds=PROCESSING_TIMEOUT_SECONDS[task.task_type])


@tracer.capture_method(capture_response=False)
def fail_dead_lettered(
    repository: TaskRepository, body: str, *, receive_count: int, clock: Callable[[], datetime] = utc_now
) -> Outcome:
    """A message exhausted its deliveries: its task ends FAILED with the last error it recorded,
    unless it is final already, on another attempt, or still legitimately running."""
    try:
        message = TaskMessage.parse(body)
    except ValueError as exc:
        logger.error("dead-lettered message is not a task message", extra={"reason": str(exc)})
        return Outcome.SKIPPED
    for _ in range(3):
        task = repository.get(message.account_id, message.task_id)
        if task is None or task.attempt != message.attempt:
            return Outcome.SKIPPED
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            return Outcome.SKIPPED
        if task.status is TaskStatus.PROCESSING and not lease_expired(task, clock()):
            raise Retryable("The task is still running; decide once its lease ends")
        now = isoformat(clock())
        last_error: Any = (task.error_details or {}).get("last_error")
        error = f"Processing failed: the message was dead-lettered after {receive_count} deliveries"
        if last_error:
            error += f"; last error: {last_error}"
        failed = task.moved_to(
            TaskStatus.FAILED,
            now,
            error,
            progress_message=None,
            error_message=error,
            error_details={**(task.error_details or {}), "dead_lettered": True, "deliveries": receive_count},
        )
        try:
            repository.save(failed, expected_version=task.version)
        except Conflict:
            continue
        metrics.add_metric(name="TasksFailed", unit="Count", value=1)
        task_metric("TasksFailedByType", "Count", 1, failed, reason=FailureReason.DEAD_LETTER.value)
        return Outcome.FAILED
    raise Retryable("The task kept changing while the dead letter was handled")
