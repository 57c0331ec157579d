"""Domain model of a task: what the service reasons about, independent of HTTP and DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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

    @property
    def created_sk(self) -> str:
        """Sort key shared by every index: creation time, then id (unique within an account)."""
        return created_sort_key(self.created_at, self.task_id)


def created_sort_key(created_at: str, task_id: str) -> str:
    return f"{created_at}#{task_id}"
