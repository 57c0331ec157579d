"""Response bodies of the HTTP API, mapped explicitly from the domain model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    progress_message: str | None = Field(description="What the running step is doing.")
    result_url: str | None = Field(description="Presigned GET URL of the result (made at read time).")
    result_summary: dict[str, Any] | None
    error_message: str | None
    error_details: dict[str, Any] | None

    @classmethod
    def from_task(cls, task: Task, result_url: str | None = None) -> TaskOut:
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
            progress_message=task.progress_message,
            result_url=result_url,
            result_summary=task.result_summary,
            error_message=task.error_message,
            error_details=task.error_details,
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


class BulkDetail(BaseModel):
    task_id: str
    status: str = Field(description="regenerated | queued | requeued | skipped | failed")
    reason: str


class CancelDetail(BulkDetail):
    queue_result: str | None = Field(
        default=None, description="Cancelled tasks only: what happened to the queued message."
    )


class BulkCancelOut(BaseModel):
    success: bool
    message: str
    cancelled_count: int
    failed_count: int = Field(description="Skipped and failed tasks together.")
    not_found_count: int
    not_found_ids: list[str]
    total_requested: int
    cancellation_reason: str
    details: list[CancelDetail]


class BulkRegenerateOut(BaseModel):
    success: bool
    message: str
    regenerated_count: int
    failed_count: int = Field(description="Skipped and failed tasks together.")
    not_found_count: int
    not_found_ids: list[str]
    total_requested: int
    details: list[BulkDetail]


class OverallQueueStatus(BaseModel):
    """For a tenant every figure is about its own tasks; for an operator, the real queues."""

    total_queued: int = Field(
        description="Tenant: its QUEUED tasks. Operator: messages waiting in the four queues (visible + delayed)."
    )
    processing: int = Field(description="Tenant: its PROCESSING tasks. Operator: messages in flight.")
    by_priority: dict[str, int] = Field(description="total_queued by priority.")
    in_flight_by_priority: dict[str, int] = Field(description="processing by priority.")
    dead_letter_by_priority: dict[str, int] | None = Field(
        description="Operator: messages in each dead-letter queue. Tenant: null (not counted per account)."
    )
    dead_letter_total: int | None


class MappingStateOut(BaseModel):
    """What a tenant sees of an event source mapping: whether it consumes, never its queue."""

    model_config = ConfigDict(extra="forbid")

    priority: str | None = Field(description="Priority of the queue it consumes.")
    state: str
    enabled: bool


class MappingOut(MappingStateOut):
    """What an operator sees: also the mapping's id and its queue's ARN."""

    id: str
    source: str


class QueueStatusOut(BaseModel):
    success: bool
    queue_processing_active: bool
    current_processing_task: str | None
    overall_queue_status: OverallQueueStatus
    account_task_counts: dict[str, int]
    pending_task_ids: list[str]
    queued_task_ids: list[str]
    event_source_mappings: list[MappingOut | MappingStateOut]


class QueueRestartOut(BaseModel):
    success: bool
    message: str
    was_processing_before: bool
    is_processing_now: bool


class ProcessPendingOut(BaseModel):
    success: bool
    message: str
    queued_count: int
    failed_count: int
    total_pending: int
    details: list[BulkDetail]


class RequeuePendingOut(ProcessPendingOut):
    requeued_count: int = Field(description="QUEUED tasks whose message was presumed lost and sent again.")
