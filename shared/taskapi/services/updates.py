"""Changing a task after it was created (PATCH /api/tasks/{task_id}): giving a PENDING task its
request_data, which queues it at once; its priority; its source fields. One write conditioned on
the version read, with an event for every change."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from taskapi.auth.principal import Principal
from taskapi.errors import Conflict, InvalidFields
from taskapi.generation.choice import ProviderPolicy
from taskapi.models.domain import Task, TaskStatus, TaskType, isoformat, utc_now, with_event
from taskapi.models.requests import (
    AnimatedLessonTaskCreate,
    DocumentationTaskCreate,
    QuizTaskCreate,
    TaskUpdate,
    VideoTaskCreate,
)
from taskapi.observability import logger, metrics, tracer
from taskapi.queueing.messages import TaskMessage
from taskapi.queueing.queues import TaskQueue
from taskapi.services.queueing import enqueue, key_of
from taskapi.services.tasks import Ceiling, ensure_room, get_task
from taskapi.store.base import TaskRepository

SOURCE_FIELDS = ("task_source_name", "task_source_id", "task_source_group_id")
CREATE_MODELS = {
    TaskType.VIDEO: VideoTaskCreate,
    TaskType.QUIZ: QuizTaskCreate,
    TaskType.ANIMATED_LESSON: AnimatedLessonTaskCreate,
    TaskType.DOCUMENTATION: DocumentationTaskCreate,
}
"""request_data is checked by the model a create of the task's type uses: same fields, same bound."""


def _problem(error: Any) -> dict[str, Any]:
    loc = tuple(error["loc"])
    if loc[:1] != ("request_data",):
        loc = ("request_data", *loc)  # the size bound is a check of the whole request_data
    problem: dict[str, Any] = {"type": error["type"], "loc": ["body", *loc], "msg": error["msg"]}
    ctx = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, str | int | float | bool)}
    if ctx:
        problem["ctx"] = ctx
    return problem


def request_data_for(task_type: TaskType, data: dict[str, Any]) -> dict[str, Any]:
    """request_data as a create of this type would store it; InvalidFields names what is wrong."""
    try:
        spec = CREATE_MODELS[task_type].model_validate({"task_type": task_type, "request_data": data})
    except ValidationError as exc:
        raise InvalidFields([_problem(e) for e in exc.errors(include_url=False, include_input=False)]) from exc
    return spec.request_data_dict() or {}


def _source_event(name: str, value: str | None) -> str:
    return f"{name} cleared" if value is None else f"{name} set to {value}"


@tracer.capture_method(capture_response=False)
def update_task(
    repository: TaskRepository,
    queue: TaskQueue,
    principal: Principal,
    task_id: str,
    change: TaskUpdate,
    *,
    ceiling: Ceiling | None = None,
    providers: ProviderPolicy | None = None,
) -> Task:
    """Apply the fields the body gives and answer the task as stored. A value equal to the stored
    one is no change (a repeated PATCH answers the task as it is); only changes meet the rules:

    - request_data only while PENDING (Conflict otherwise); a task that had none now counts
      against the ceiling (TooManyRequests first), and the task is queued at once;
    - priority not while PROCESSING (Conflict); a QUEUED task is sent again on the new priority's
      queue (the message left on the old one is acknowledged without work by whichever comes second);
    - source fields in any state; None clears one."""
    task = get_task(repository, principal, task_id)
    given = change.model_fields_set
    now = isoformat(utc_now())
    updates: dict[str, Any] = {}
    events: list[str] = []

    if change.request_data is not None:
        request_data = request_data_for(task.task_type, change.request_data)
        if request_data != task.request_data:
            # Only a change meets the provider rule: the stored value again is no change, even
            # where the deployment has stopped serving its provider since.
            refusal = providers.refusal(task.task_type.value, request_data) if providers is not None else None
            if refusal is not None:
                problem = {"type": "provider_unavailable", "loc": ["body", "request_data", "provider"], "msg": refusal}
                raise InvalidFields([problem])
            if task.status is not TaskStatus.PENDING:
                raise Conflict(
                    f"Task {task_id} is {task.status.value}: request_data can be given only while a task is "
                    "PENDING. To run it again, use POST /api/tasks/bulk-regenerate."
                )
            updates["request_data"] = request_data
            events.append("request_data given" if task.request_data is None else "request_data replaced")
    resend = False
    if change.priority is not None and change.priority != task.priority:
        if task.status is TaskStatus.PROCESSING:
            raise Conflict(f"Task {task_id} is PROCESSING: its priority can no longer change")
        updates["priority"] = change.priority
        resend = task.status is TaskStatus.QUEUED
        events.append(f"Priority changed from {task.priority.value} to {change.priority.value}")
    for name in SOURCE_FIELDS:
        value = getattr(change, name)
        if name in given and value != getattr(task, name):
            updates[name] = value
            events.append(_source_event(name, value))
    if not updates:
        return task
    if ceiling is not None and task.request_data is None and "request_data" in updates:
        ensure_room(repository, principal, 1, ceiling)

    updated = task.model_copy(update={**updates, "updated_at": now})
    if resend:
        # Sent before the write: if the write then loses a race, a spare message is harmless
        # (the processor claims a task once per attempt), while a written change without its
        # message would leave the task on the old queue saying otherwise.
        refused = queue.send([(updated.priority, TaskMessage.of(updated))]).get(0)
        events.append(
            f"Sent again on the {updated.priority.value} queue"
            if refused is None
            else f"Not sent again ({refused}); it stays on the {task.priority.value} queue"
        )
    history = task.events
    for message in events:
        history = with_event(history, now, message)
    try:
        saved = repository.save(updated.model_copy(update={"events": history}), expected_version=task.version)
    except Conflict as exc:
        raise Conflict(f"Task {task_id} changed meanwhile; retry") from exc
    logger.info("task updated", extra={"task_id": task_id, "fields": sorted(updates)})
    metrics.add_metric(name="TasksUpdated", unit="Count", value=1)
    if "request_data" in updates:
        saved = enqueue(repository, queue, [saved], now=now).tasks.get(key_of(saved), saved)
    return saved
