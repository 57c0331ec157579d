"""Response bodies of the HTTP API, mapped explicitly from the domain model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from taskapi.models.domain import Priority, Task, TaskStatus, TaskType


class TaskEventOut(BaseModel):
    timestamp: str
    message: str


class TaskOut(BaseModel):
    """The task object every endpoint answers."""

    task_id: str
    user_id: str
    account_id: str
    task_type: TaskType
    priority: Priority
    status: TaskStatus
    progress: float = Field(ge=0, le=100, description="Percent complete, 0-100.")
    attempt: int = Field(ge=1, description="Incremented by every regeneration.")
    created_at: str
    updated_at: str
    task_source_name: str | None
    task_source_id: str | None
    task_source_group_id: str | None
    request_data: dict[str, Any] | None
    events: list[TaskEventOut]

    @classmethod
    def from_task(cls, task: Task) -> TaskOut:
        return cls(
            task_id=task.task_id,
            user_id=task.user_id,
            account_id=task.account_id,
            task_type=task.task_type,
            priority=task.priority,
            status=task.status,
            progress=task.progress,
            attempt=task.attempt,
            created_at=task.created_at,
            updated_at=task.updated_at,
            task_source_name=task.task_source_name,
            task_source_id=task.task_source_id,
            task_source_group_id=task.task_source_group_id,
            request_data=task.request_data,
            events=[TaskEventOut(timestamp=e.timestamp, message=e.message) for e in task.events],
        )


class TaskListOut(BaseModel):
    tasks: list[TaskOut]
    total: int = Field(ge=0, description="Tasks matching the filters, over all pages.")
    limit: int
    skip: int
    next_token: str | None = Field(description="Pass back as next_token for the following page; null on the last.")


class CountOut(BaseModel):
    total: int = Field(ge=0)


class HealthOut(BaseModel):
    status: str
    version: str


class ErrorOut(BaseModel):
    detail: Any
