"""Domain model of a task: what the service reasons about, independent of HTTP and DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TaskType(StrEnum):
    VIDEO = "video"
    QUIZ = "quiz"
    ANIMATED_LESSON = "animated_lesson"
    DOCUMENTATION = "documentation"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
OPEN_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING})

MAX_TRIES: dict[TaskType, int] = {
    TaskType.VIDEO: 3,
    TaskType.ANIMATED_LESSON: 3,
    TaskType.QUIZ: 2,
    TaskType.DOCUMENTATION: 2,
}
"""Processing tries of one attempt before the task ends FAILED."""

PROCESSING_TIMEOUT_SECONDS: dict[TaskType, int] = {
    TaskType.VIDEO: 45 * 60,
    TaskType.ANIMATED_LESSON: 30 * 60,
    TaskType.QUIZ: 10 * 60,
    TaskType.DOCUMENTATION: 15 * 60,
}
"""A PROCESSING task older than this has lost its worker: the reconciler retries or fails it."""

MAX_EVENTS = 50
"""Events kept on a task (the oldest are dropped first), so no item nears DynamoDB's 400 KB."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z suffix: sorts as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TaskEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    timestamp: str
    message: str


class Task(BaseModel):
    """A task as stored. (account_id, task_id) is its identity."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    task_id: str
    user_id: str
    task_type: TaskType
    priority: Priority = Priority.NORMAL
    status: TaskStatus = TaskStatus.PENDING
    progress: float = 0.0
    attempt: int = 1
    created_at: str
    updated_at: str
    task_source_name: str | None = None
    task_source_id: str | None = None
    task_source_group_id: str | None = None
    request_data: dict[str, Any] | None = None
    events: list[TaskEvent] = Field(default_factory=list)
    version: int = 1
    """Optimistic-concurrency counter: every write is conditioned on the version it read."""
    state_since: str | None = None
    """When the task entered its current status (the reconciler's clock)."""
    tries: int = 0
    """Processing tries of the current attempt."""
    progress_message: str | None = None
    result_key: str | None = None
    """S3 key of the result's primary file."""
    result_summary: dict[str, Any] | None = None
    error_message: str | None = None
    error_details: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _state_clock(self) -> Task:
        if self.state_since is None:
            object.__setattr__(self, "state_since", self.updated_at)
        return self

    def moved_to(self, status: TaskStatus, now: str, event: str, **changes: Any) -> Task:
        """This task in another status: its state clock restarts and an event says why."""
        return self.model_copy(
            update={
                "status": status,
                "state_since": now,
                "updated_at": now,
                "events": with_event(self.events, now, event),
                **changes,
            }
        )

    @property
    def created_sk(self) -> str:
        """Sort key shared by every index: creation time, then id (unique within an account)."""
        return created_sort_key(self.created_at, self.task_id)


def created_sort_key(created_at: str, task_id: str) -> str:
    return f"{created_at}#{task_id}"


def with_event(events: list[TaskEvent], timestamp: str, message: str) -> list[TaskEvent]:
    """Append an event, keeping the newest MAX_EVENTS."""
    return [*events, TaskEvent(timestamp=timestamp, message=message)][-MAX_EVENTS:]
