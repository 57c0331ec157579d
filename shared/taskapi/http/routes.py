"""Routes: parse, call one service function, shape the answer. No AWS calls here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.exceptions import RequestValidationError

from taskapi.http.deps import (
    CeilingDep,
    ControlDep,
    CountersDep,
    OperatorDep,
    PrincipalDep,
    ProvidersDep,
    QueueDep,
    RepositoryDep,
    ResultsDep,
    SettingsDep,
)
from taskapi.models import limits
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType
from taskapi.models.requests import (
    BulkCancelRequest,
    BulkCreateRequest,
    BulkRegenerateRequest,
    TaskCreate,
    TaskUpdate,
)
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
from taskapi.services import updates as update_service
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
MAX_SKIP = 100_000
"""The reference sets no maximum; each skipped task is still read (see list_tasks)."""
_ID = re.compile(limits.ID_PATTERN)
_SOURCE_TEXT = re.compile(limits.SOURCE_TEXT_PATTERN)

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


def _refuse(name: str, message: str, raw: str | None, kind: str = "value_error") -> NoReturn:
    raise RequestValidationError([{"type": kind, "loc": ("query", name), "msg": message, "input": raw}])


@dataclass(frozen=True)
class _ListRule:
    """What a comma-separated filter accepts."""

    most: int
    longest: int
    pattern: re.Pattern[str] | None = None
    allowed: str = ""

    def values(self, name: str, raw: str | None) -> tuple[str, ...]:
        """The values with empty ones dropped and repeats removed, in order."""
        if raw is None:
            return ()
        values = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
        if len(values) > self.most:
            _refuse(name, f"at most {self.most} values", raw)
        if any(len(v) > self.longest for v in values):
            _refuse(name, f"each value may be at most {self.longest} characters", raw)
        if self.pattern is not None and any(not self.pattern.fullmatch(v) for v in values):
            _refuse(name, f"values may contain only {self.allowed}", raw)
        return values


_SOURCE_IDS = _ListRule(
    limits.MAX_FILTER_SOURCE_IDS, limits.MAX_SOURCE_ID_LENGTH, _SOURCE_TEXT, "text without control characters"
)
_TASK_IDS = _ListRule(limits.MAX_FILTER_IDS, limits.MAX_TASK_ID_LENGTH, _ID, limits.ID_CHARACTERS)
_STATUSES = _ListRule(len(TaskStatus), len("PROCESSING"))


def _statuses(raw: str | None) -> tuple[TaskStatus, ...]:
    values = _STATUSES.values("status", raw)
    known = {s.value for s in TaskStatus}
    unknown = [v for v in values if v.upper() not in known]
    if unknown:
        expected = ", ".join(sorted(known))
        _refuse("status", f"unknown status {', '.join(unknown)}; expected any of {expected}", raw, kind="enum")
    return tuple(TaskStatus(v.upper()) for v in values)


def _source_text(description: str) -> Any:
    """A query parameter holding one group or source id: any text, URL-encoded."""
    return Query(max_length=limits.MAX_SOURCE_ID_LENGTH, pattern=limits.SOURCE_TEXT_PATTERN, description=description)


def task_filters(
    task_source_group_id: Annotated[str | None, _source_text("Only this group (any text, URL-encoded).")] = None,
    task_source_ids: Annotated[
        str | None,
        Query(
            description="Comma-separated source ids (any of), URL-encoded; empty values are dropped. "
            "For one id that holds a comma, use task_source_id."
        ),
    ] = None,
    task_source_id: Annotated[
        str | None,
        _source_text("One source id, taken whole (commas included); combines with task_source_ids as any of."),
    ] = None,
    task_ids: Annotated[str | None, Query(description="Comma-separated task ids (any of).")] = None,
    status: Annotated[
        str | None, Query(description="One status or several, comma-separated (PENDING,QUEUED,...).")
    ] = None,
    task_type: TaskType | None = None,
    priority: Priority | None = None,
) -> TaskFilters:
    sources = _SOURCE_IDS.values("task_source_ids", task_source_ids)
    if task_source_id:
        sources = tuple(dict.fromkeys((*sources, task_source_id)))
        if len(sources) > limits.MAX_FILTER_SOURCE_IDS:
            _refuse(
                "task_source_ids",
                f"at most {limits.MAX_FILTER_SOURCE_IDS} source ids with task_source_id",
                task_source_ids,
            )
    return TaskFilters(
        group_id=task_source_group_id or None,
        source_ids=sources,
        task_ids=_TASK_IDS.values("task_ids", task_ids),
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
    providers: ProvidersDep,
) -> list[TaskOut]:
    """Creates the tasks whose ids are new and queues those with request_data; an id that already
    exists in the account is answered as stored (idempotent). Answers every task in request order.
    An account holds at most its plan's number of unfinished tasks: beyond it, 429 and nothing written."""
    created = task_service.create_bulk(repository, queue, principal, body, ceiling, providers)
    return [_out(t, results) for t in created]


@router.post("", response_model=TaskOut, responses=CREATE_ERRORS, summary="Create one task")
def create_one(
    body: Annotated[TaskCreate, Body()],
    principal: PrincipalDep,
    repository: RepositoryDep,
    queue: QueueDep,
    results: ResultsDep,
    ceiling: CeilingDep,
    providers: ProvidersDep,
) -> TaskOut:
    task_service.refuse_unserved_providers(providers, [body], loc=("body",))
    (task,) = task_service.create_tasks(repository, queue, principal, [body], ceiling=ceiling).tasks
    return _out(task, results)


@router.get("", response_model=TaskListOut, responses=LIST_ERRORS, summary="List tasks, newest first")
def list_tasks(
    principal: PrincipalDep,
    repository: RepositoryDep,
    counters: CountersDep,
    results: ResultsDep,
    filters: Annotated[TaskFilters, Depends(task_filters)],
    limit: Annotated[int, Query(ge=1, le=limits.MAX_LIST_LIMIT)] = limits.DEFAULT_LIST_LIMIT,
    skip: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_SKIP,
            description="Tasks to pass over. Each skipped task is read, so a far skip costs what it skips; "
            "next_token costs only its page.",
        ),
    ] = 0,
    next_token: Annotated[str | None, Query(max_length=2048, description="Cursor from the previous page.")] = None,
) -> TaskListOut:
    page = task_service.list_tasks(
        repository, principal, filters, limit=limit, skip=skip, next_token=next_token, counters=counters
    )
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
    counters: CountersDep,
    filters: Annotated[TaskFilters, Depends(task_filters)],
) -> CountOut:
    """Without filters, or by status, group or source ids (alone or with status), the count comes
    from the account's counters and may lag the tasks by seconds; other filters count by query."""
    return CountOut(total=task_service.count_tasks(repository, principal, filters, counters=counters))


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
    principal: PrincipalDep, repository: RepositoryDep, counters: CountersDep, queue: QueueDep, control: ControlDep
) -> QueueStatusOut:
    """Whether processing is active and the caller's PENDING / QUEUED / PROCESSING tasks. For a
    tenant every figure of overall_queue_status is about its own tasks (dead-letter figures null)
    and event_source_mappings carry states only; an operator sees the real queue depths (dead-letter
    queues too) and each mapping's id and queue ARN."""
    return QueueStatusOut.model_validate(queue_admin.queue_status(repository, queue, control, principal, counters))


@router.post(
    "/queue/restart",
    response_model=QueueRestartOut,
    responses={
        **AUTH_ERRORS,
        403: {"model": ErrorOut, "description": "Operator role required (or X-Account-ID not granted)"},
    },
    summary="Restart processing (operators)",
)
def queue_restart(operator: OperatorDep, control: ControlDep) -> QueueRestartOut:
    """Enables the processor's event source mappings if processing was paused. Processing is
    shared by every tenant, so only an operator may turn it on: 403 for a tenant, nothing changed."""
    return QueueRestartOut.model_validate(queue_admin.restart_processing(control))


@router.post(
    "/queue/process-pending", response_model=ProcessPendingOut, responses=AUTH_ERRORS, summary="Queue PENDING tasks"
)
def process_pending(
    principal: PrincipalDep, repository: RepositoryDep, counters: CountersDep, queue: QueueDep
) -> ProcessPendingOut:
    """Queues the account's PENDING tasks that have request_data (up to 1000 per call)."""
    return ProcessPendingOut.model_validate(queue_admin.process_pending(repository, queue, principal, counters))


@router.post(
    "/requeue-pending",
    response_model=RequeuePendingOut,
    responses=AUTH_ERRORS,
    summary="Queue PENDING tasks and re-send lost QUEUED ones",
)
def requeue_pending(
    principal: PrincipalDep, repository: RepositoryDep, counters: CountersDep, queue: QueueDep, settings: SettingsDep
) -> RequeuePendingOut:
    """process-pending, plus QUEUED tasks waiting longer than the requeue threshold: their message
    is presumed lost and sent again (a duplicate delivery is acknowledged without work)."""
    return RequeuePendingOut.model_validate(
        queue_admin.requeue_pending(
            repository,
            queue,
            principal,
            queued_older_than_seconds=settings.requeue_queued_after_seconds,
            counters=counters,
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


UPDATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    404: {"model": ErrorOut, "description": "No such task in this account"},
    409: {
        "model": ErrorOut,
        "description": "The task's status does not allow the change (request_data only while PENDING, "
        "priority not while PROCESSING), or the task changed meanwhile; retry",
    },
    429: {
        "model": ErrorOut,
        "description": "request_data would make the task one more unfinished task than the plan's ceiling "
        "allows; nothing was changed. Retry-After says when to try again.",
    },
}


@router.patch("/{task_id}", response_model=TaskOut, responses=UPDATE_ERRORS, summary="Change a task")
def update_task(
    task_id: Annotated[str, Path(max_length=limits.MAX_TASK_ID_LENGTH)],
    body: TaskUpdate,
    principal: PrincipalDep,
    repository: RepositoryDep,
    queue: QueueDep,
    results: ResultsDep,
    ceiling: CeilingDep,
    providers: ProvidersDep,
) -> TaskOut:
    """Gives a PENDING task its request_data (checked against the task's type, as on create) and
    queues it at once; changes the priority (not while PROCESSING; a QUEUED task is sent again on
    the new priority's queue) and the source fields (null clears one). Fields left out keep their
    value; every change adds an event."""
    task = update_service.update_task(repository, queue, principal, task_id, body, ceiling=ceiling, providers=providers)
    return _out(task, results)
