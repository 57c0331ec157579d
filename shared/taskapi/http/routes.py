"""Routes: parse, call one service function, shape the answer. No AWS calls here."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.exceptions import RequestValidationError

from taskapi.http.deps import (
    CeilingDep,
    ControlDep,
    PrincipalDep,
    QueueDep,
    RepositoryDep,
    ResultsDep,
    SettingsDep,
)
from taskapi.models import limits
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType
from taskapi.models.requests import BulkCancelRequest, BulkCreateRequest, BulkRegenerateRequest, TaskCreate
from taskapi.models.responses import (
    BulkCancelOut,
    BulkRegenerateOut,
    CountOut,
    ErrorOut,
    ProcessPendingOut,
    QueueRestartOut,
    QueueStatusOut,
    RequeuePendingOut,
    TaskListOut,
    TaskOut,
)
from taskapi.results import ResultStore
from taskapi.services import lifecycle, queue_admin
from taskapi.services import tasks as task_service
from taskapi.store.base import TaskFilters

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid credentials"},
    403: {"model": ErrorOut, "description": "The credentials do not grant X-Account-ID"},
    422: {"model": ErrorOut, "description": "Invalid body or parameters; `detail` names each field"},
    503: {"model": ErrorOut, "description": "A dependency is busy; retry after Retry-After seconds"},
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    400: {"model": ErrorOut, "description": "The body is not JSON (There was an error parsing the body)"},
}
CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    429: {
        "model": ErrorOut,
        "description": "The account's unfinished tasks would exceed its plan's ceiling; nothing was written. "
        "Retry-After says when to try again.",
    },
}
LIST_ERRORS = {**AUTH_ERRORS, 400: {"model": ErrorOut, "description": "next_token does not fit this request"}}
MAX_SKIP = 10_000
_ID = re.compile(limits.ID_PATTERN)

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


def _csv(name: str, raw: str | None, *, most: int, pattern: re.Pattern[str] | None = _ID) -> tuple[str, ...]:
    """Comma-separated values with empty ones dropped and repeats removed, in order."""
    if raw is None:
        return ()
    values = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    problem = None
    if len(values) > most:
        problem = f"at most {most} values"
    elif pattern is not None and any(not pattern.match(v) or len(v) > limits.MAX_SOURCE_ID_LENGTH for v in values):
        problem = "values may contain only letters, digits and . _ : @ ~ + = -"
    if problem:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": problem, "input": raw}])
    return values


def _statuses(raw: str | None) -> tuple[TaskStatus, ...]:
    values = _csv("status", raw, most=len(TaskStatus), pattern=None)
    known = {s.value for s in TaskStatus}
    unknown = [v for v in values if v.upper() not in known]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "enum",
                    "loc": ("query", "status"),
                    "msg": f"unknown status {', '.join(unknown)}; expected any of {', '.join(sorted(known))}",
                    "input": raw,
                }
            ]
        )
    return tuple(TaskStatus(v.upper()) for v in values)


def task_filters(
    task_source_group_id: Annotated[
        str | None,
        Query(max_length=limits.MAX_SOURCE_ID_LENGTH, pattern=limits.ID_PATTERN, description="Only this group."),
    ] = None,
    task_source_ids: Annotated[
        str | None, Query(description="Comma-separated source ids (any of); empty values are dropped.")
    ] = None,
    task_ids: Annotated[str | None, Query(description="Comma-separated task ids (any of).")] = None,
    status: Annotated[
        str | None, Query(description="One status or several, comma-separated (PENDING,QUEUED,...).")
    ] = None,
    task_type: TaskType | None = None,
    priority: Priority | None = None,
) -> TaskFilters:
    return TaskFilters(
        group_id=task_source_group_id or None,
        source_ids=_csv("task_source_ids", task_source_ids, most=limits.MAX_FILTER_SOURCE_IDS),
        task_ids=_csv("task_ids", task_ids, most=limits.MAX_FILTER_IDS),
        statuses=_statuses(status),
        task_type=task_type,
        priority=priority,
    )


def _out(task: Task, results: ResultStore) -> TaskOut:
    url = results.url(task.result_key) if task.result_key else None
    return TaskOut.from_task(task, result_url=url)


@router.post(
    "/bulk",
    response_model=list[TaskOut],
    responses={**CREATE_ERRORS, 413: {"model": ErrorOut, "description": "More than 100 tasks"}},
    summary="Create up to 100 tasks",
)
def create_bulk(
    body: BulkCreateRequest,
    principal: PrincipalDep,
    repository: RepositoryDep,
    queue: QueueDep,
    results: ResultsDep,
    ceiling: CeilingDep,
) -> list[TaskOut]:
    """Creates the tasks whose ids are new and queues those with request_data; an id that already
    exists in the account is answered as stored (idempotent). Answers every task in request order.
    An account holds at most its plan's number of unfinished tasks: beyond it, 429 and nothing written."""
    return [_out(t, results) for t in task_service.create_bulk(repository, queue, principal, body, ceiling)]


@router.post("", response_model=TaskOut, responses=CREATE_ERRORS, summary="Create one task")
def create_one(
    body: Annotated[TaskCreate, Body()],
    principal: PrincipalDep,
    repository: RepositoryDep,
    queue: QueueDep,
    results: ResultsDep,
    ceiling: CeilingDep,
) -> TaskOut:
    (task,) = task_service.create_tasks(repository, queue, principal, [body], ceiling=ceiling)
    return _out(task, results)


@router.get("", response_model=TaskListOut, responses=LIST_ERRORS, summary="List tasks, newest first")
def list_tasks(
    principal: PrincipalDep,
    repository: RepositoryDep,
    results: ResultsDep,
    filters: Annotated[TaskFilters, Depends(task_filters)],
    limit: Annotated[int, Query(ge=1, le=limits.MAX_LIST_LIMIT)] = limits.DEFAULT_LIST_LIMIT,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP, description="Tasks to pass over (use next_token to go deeper).")] = 0,
    next_token: Annotated[str | None, Query(max_length=2048, description="Cursor from the previous page.")] = None,
) -> TaskListOut:
    page = task_service.list_tasks(repository, principal, filters, limit=limit, skip=skip, next_token=next_token)
    return TaskListOut(
        tasks=[_out(t, results) for t in page.tasks],
        total=page.total,
        limit=page.limit,
        skip=page.skip,
        next_token=page.next_token,
    )


@router.get("/count/total", response_model=CountOut, responses=AUTH_ERRORS, summary="Count tasks")
def count_tasks(
    principal: PrincipalDep,
    repository: RepositoryDep,
    filters: Annotated[TaskFilters, Depends(task_filters)],
) -> CountOut:
    return CountOut(total=task_service.count_tasks(repository, principal, filters))


BULK_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorOut, "description": "task_ids list cannot be empty, or the body is not JSON"},
    413: {"model": ErrorOut, "description": "More than 100 task ids"},
}


@router.post(
    "/bulk-cancel",
    response_model=BulkCancelOut,
    response_model_exclude_none=True,
    responses=BULK_ERRORS,
    summary="Cancel up to 100 tasks",
)
def bulk_cancel(body: BulkCancelRequest, principal: PrincipalDep, repository: RepositoryDep) -> BulkCancelOut:
    """PENDING, QUEUED and PROCESSING tasks become CANCELLED (a running attempt stops at its next
    progress write); final ones are skipped. Ids of other accounts are reported as not found."""
    return BulkCancelOut.model_validate(lifecycle.cancel_tasks(repository, principal, body.task_ids, body.reason))


@router.post(
    "/bulk-regenerate", response_model=BulkRegenerateOut, responses=BULK_ERRORS, summary="Regenerate up to 100 tasks"
)
def bulk_regenerate(
    body: BulkRegenerateRequest, principal: PrincipalDep, repository: RepositoryDep, queue: QueueDep
) -> BulkRegenerateOut:
    """Starts a new attempt of each task (QUEUED ones are skipped, PROCESSING ones unless force)
    and queues it. Video overrides (logo_url, intro_video_url, outro_video_url) are written into
    request_data."""
    return BulkRegenerateOut.model_validate(lifecycle.regenerate_tasks(repository, queue, principal, body))


@router.get("/queue/status", response_model=QueueStatusOut, responses=AUTH_ERRORS, summary="Queue status")
def queue_status(
    principal: PrincipalDep, repository: RepositoryDep, queue: QueueDep, control: ControlDep
) -> QueueStatusOut:
    """Queue depths by priority (dead-letter queues too), whether processing is active, and the
    caller's PENDING / QUEUED / PROCESSING tasks."""
    return QueueStatusOut.model_validate(queue_admin.queue_status(repository, queue, control, principal))


@router.post("/queue/restart", response_model=QueueRestartOut, responses=AUTH_ERRORS, summary="Restart processing")
def queue_restart(principal: PrincipalDep, control: ControlDep) -> QueueRestartOut:
    """Enables the processor's event source mappings if processing was paused."""
    return QueueRestartOut.model_validate(queue_admin.restart_processing(control))


@router.post(
    "/queue/process-pending", response_model=ProcessPendingOut, responses=AUTH_ERRORS, summary="Queue PENDING tasks"
)
def process_pending(principal: PrincipalDep, repository: RepositoryDep, queue: QueueDep) -> ProcessPendingOut:
    """Queues the account's PENDING tasks that have request_data (up to 1000 per call)."""
    return ProcessPendingOut.model_validate(queue_admin.process_pending(repository, queue, principal))


@router.post(
    "/requeue-pending",
    response_model=RequeuePendingOut,
    responses=AUTH_ERRORS,
    summary="Queue PENDING tasks and re-send lost QUEUED ones",
)
def requeue_pending(
    principal: PrincipalDep, repository: RepositoryDep, queue: QueueDep, settings: SettingsDep
) -> RequeuePendingOut:
    """process-pending, plus QUEUED tasks waiting longer than the requeue threshold: their message
    is presumed lost and sent again (a duplicate delivery is acknowledged without work)."""
    return RequeuePendingOut.model_validate(
        queue_admin.requeue_pending(
            repository, queue, principal, queued_older_than_seconds=settings.requeue_queued_after_seconds
        )
    )


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such task in this account"}},
    summary="Get one task",
)
def get_task(
    task_id: Annotated[str, Path(max_length=limits.MAX_TASK_ID_LENGTH)],
    principal: PrincipalDep,
    repository: RepositoryDep,
    results: ResultsDep,
) -> TaskOut:
    return _out(task_service.get_task(repository, principal, task_id), results)
