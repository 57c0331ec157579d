"""Routes: parse, call one service function, shape the answer. No AWS calls here."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.exceptions import RequestValidationError

from taskapi.http.deps import PrincipalDep, RepositoryDep
from taskapi.models import limits
from taskapi.models.domain import Priority, TaskStatus, TaskType
from taskapi.models.requests import BulkCreateRequest, TaskCreate
from taskapi.models.responses import CountOut, ErrorOut, TaskListOut, TaskOut
from taskapi.services import tasks as task_service
from taskapi.store.base import TaskFilters

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid credentials"},
    403: {"model": ErrorOut, "description": "The credentials do not grant X-Account-ID"},
    422: {"model": ErrorOut, "description": "Invalid body or parameters; `detail` names each field"},
    503: {"model": ErrorOut, "description": "A dependency is busy; retry after Retry-After seconds"},
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


@router.post(
    "/bulk",
    response_model=list[TaskOut],
    responses={**AUTH_ERRORS, 413: {"model": ErrorOut, "description": "More than 100 tasks"}},
    summary="Create up to 100 tasks",
)
def create_bulk(body: BulkCreateRequest, principal: PrincipalDep, repository: RepositoryDep) -> list[TaskOut]:
    """Creates the tasks whose ids are new; an id that already exists in the account is answered
    as stored (idempotent). Answers every task in request order."""
    return [TaskOut.from_task(t) for t in task_service.create_bulk(repository, principal, body)]


@router.post("", response_model=TaskOut, responses=AUTH_ERRORS, summary="Create one task")
def create_one(body: Annotated[TaskCreate, Body()], principal: PrincipalDep, repository: RepositoryDep) -> TaskOut:
    (task,) = task_service.create_tasks(repository, principal, [body])
    return TaskOut.from_task(task)


@router.get("", response_model=TaskListOut, responses=LIST_ERRORS, summary="List tasks, newest first")
def list_tasks(
    principal: PrincipalDep,
    repository: RepositoryDep,
    filters: Annotated[TaskFilters, Depends(task_filters)],
    limit: Annotated[int, Query(ge=1, le=limits.MAX_LIST_LIMIT)] = limits.DEFAULT_LIST_LIMIT,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP, description="Tasks to pass over (use next_token to go deeper).")] = 0,
    next_token: Annotated[str | None, Query(max_length=2048, description="Cursor from the previous page.")] = None,
) -> TaskListOut:
    page = task_service.list_tasks(repository, principal, filters, limit=limit, skip=skip, next_token=next_token)
    return TaskListOut(
        tasks=[TaskOut.from_task(t) for t in page.tasks],
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
) -> TaskOut:
    return TaskOut.from_task(task_service.get_task(repository, principal, task_id))
