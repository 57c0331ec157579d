"""Endpoints under /api/tasks: create, read, list, count, cancel, regenerate, and the helpers
built on them (create_tasks, iter_tasks, counts_by_status, cancel_all, regenerate_all)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from itertools import islice
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

from pydantic import TypeAdapter

from taskapi.client.base import BaseClient
from taskapi.models import limits
from taskapi.models.domain import OPEN_STATUSES, TaskStatus
from taskapi.models.requests import (
    AnimatedLessonTaskCreate,
    BulkCancelRequest,
    BulkCreateRequest,
    BulkRegenerateRequest,
    DocumentationTaskCreate,
    QuizTaskCreate,
    TaskCreate,
    TaskUpdate,
    VideoTaskCreate,
)
from taskapi.models.responses import BulkCancelOut, BulkRegenerateOut, CountOut, TaskListOut, TaskOut

TaskSpec = VideoTaskCreate | QuizTaskCreate | AnimatedLessonTaskCreate | DocumentationTaskCreate
"""One task to create: a model of taskapi.models.requests, or a mapping validated into one."""
TaskInput = TaskSpec | Mapping[str, Any]
Progress = Callable[[int, int | None], None]
"""on_progress(done, total): called after every chunk; total is None for an iterable of unknown size."""

CHUNK = limits.MAX_BULK_TASKS
"""Tasks or task ids per bulk call: the server's limit."""
PAGE_SIZE = 100
"""Tasks per page in iter_tasks: a page carries whole tasks (request_data up to 24 KB each), and
1000 of those could pass API Gateway's 10 MB answer limit."""

_TASK_SPEC: TypeAdapter[TaskSpec] = TypeAdapter(TaskCreate)
_TASKS: TypeAdapter[list[TaskOut]] = TypeAdapter(list[TaskOut])


class TaskFilterArgs(TypedDict, total=False):
    """The filters of GET /api/tasks and /api/tasks/count/total. Lists may be given as a
    comma-separated string or as an iterable; status may name several statuses."""

    task_source_group_id: str | None
    task_source_ids: str | Iterable[str] | None
    task_ids: str | Iterable[str] | None
    status: str | Iterable[str] | None
    task_type: str | None
    priority: str | None


_FILTER_NAMES = frozenset(TaskFilterArgs.__annotations__)


def filter_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters of the filters; None and empty values are left out."""
    unknown = set(filters) - _FILTER_NAMES
    if unknown:
        raise TypeError(f"unknown task filter(s): {', '.join(sorted(unknown))}")
    params: dict[str, str] = {}
    for name, value in filters.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else ",".join(str(v) for v in value)
        if text:
            params[name] = text
    return params


def _with_id(spec: TaskInput) -> TaskSpec:
    """The task validated by the server's own model, with a UUID4 task_id when it has none."""
    task = _TASK_SPEC.validate_python(spec)
    if task.task_id is None:
        task = task.model_copy(update={"task_id": str(uuid.uuid4())})
    return task


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _shared(**settings: str | None) -> dict[str, str]:
    return {name: value for name, value in settings.items() if value is not None}


class TaskEndpoints(BaseClient):
    # ------------------------------------------------------------------ create
    def create_tasks_bulk(
        self,
        tasks: Sequence[TaskInput],
        *,
        logo_url: str | None = None,
        intro_video_url: str | None = None,
        outro_video_url: str | None = None,
    ) -> list[TaskOut]:
        """POST /api/tasks/bulk: up to 100 tasks in one call, answered in request order. Tasks
        without a task_id get a UUID4 here, before the first send, so a retried call answers the
        tasks already created instead of creating them again. The video settings apply to every
        video task whose request_data does not set its own."""
        body = BulkCreateRequest.model_validate(
            {
                "tasks": [_with_id(t) for t in tasks],
                **_shared(logo_url=logo_url, intro_video_url=intro_video_url, outro_video_url=outro_video_url),
            }
        )
        return self._call_as("POST", "/api/tasks/bulk", _TASKS, idempotent=True, body=body)

    def create_tasks(
        self,
        tasks: Iterable[TaskInput],
        *,
        chunk_size: int = CHUNK,
        on_progress: Progress | None = None,
        logo_url: str | None = None,
        intro_video_url: str | None = None,
        outro_video_url: str | None = None,
    ) -> list[TaskOut]:
        """Any number of tasks, in bulk calls of chunk_size (at most 100). on_progress(done, total)
        follows each call. A failed call raises; the chunks before it stay created (give tasks
        your own task_id to make a re-run skip them)."""
        if not 1 <= chunk_size <= CHUNK:
            raise ValueError(f"chunk_size must be between 1 and {CHUNK}")
        total = len(tasks) if isinstance(tasks, Sized) else None
        created: list[TaskOut] = []
        for chunk in _chunks(tasks, chunk_size):
            created += self.create_tasks_bulk(
                chunk, logo_url=logo_url, intro_video_url=intro_video_url, outro_video_url=outro_video_url
            )
            if on_progress is not None:
                on_progress(len(created), total)
        return created

    def create_task(self, task: TaskInput) -> TaskOut:
        """POST /api/tasks: one task (a UUID4 task_id is filled in as in create_tasks_bulk)."""
        return self._call("POST", "/api/tasks", TaskOut, idempotent=True, body=_with_id(task))

    # ------------------------------------------------------------------ read
    def get_task(self, task_id: str) -> TaskOut:
        """GET /api/tasks/{task_id}; NotFound when the account has no such task."""
        return self._call("GET", f"/api/tasks/{quote(task_id, safe='')}", TaskOut, idempotent=True)

    def update_task(self, task_id: str, **changes: Any) -> TaskOut:
        """PATCH /api/tasks/{task_id} with the fields to change (request_data, priority,
        task_source_name, task_source_id, task_source_group_id; None clears a source field).
        Retried: sending the same change again changes nothing more."""
        body = TaskUpdate.model_validate(changes)
        return self._call("PATCH", f"/api/tasks/{quote(task_id, safe='')}", TaskOut, idempotent=True, body=body)

    def list_tasks(
        self,
        *,
        limit: int | None = None,
        skip: int | None = None,
        next_token: str | None = None,
        **filters: Unpack[TaskFilterArgs],
    ) -> TaskListOut:
        """GET /api/tasks: one page, newest first (limit 1-1000, server default 100). Pass the
        answer's next_token with the same filters for the following page."""
        return self._list(filter_params(filters), limit=limit, skip=skip, next_token=next_token)

    def iter_tasks(self, *, page_size: int = PAGE_SIZE, **filters: Unpack[TaskFilterArgs]) -> Iterator[TaskOut]:
        """Every matching task, newest first, following next_token page by page (lazily)."""
        return self._iter(filter_params(filters), page_size)

    def count_tasks(self, **filters: Unpack[TaskFilterArgs]) -> CountOut:
        """GET /api/tasks/count/total."""
        return self._count(filter_params(filters))

    def counts_by_status(self, **filters: Unpack[TaskFilterArgs]) -> dict[TaskStatus, int]:
        """One count_tasks call per status: every status, or those the `status` filter names."""
        params = filter_params(filters)
        named = params.pop("status", None)
        statuses = [TaskStatus(s.strip().upper()) for s in named.split(",") if s.strip()] if named else list(TaskStatus)
        return {status: self._count({**params, "status": status.value}).total for status in statuses}

    def _list(
        self, params: dict[str, str], *, limit: int | None, skip: int | None, next_token: str | None
    ) -> TaskListOut:
        query: dict[str, str | int] = dict(params)
        for name, value in (("limit", limit), ("skip", skip), ("next_token", next_token)):
            if value is not None:
                query[name] = value
        return self._call("GET", "/api/tasks", TaskListOut, idempotent=True, params=query)

    def _iter(self, params: dict[str, str], page_size: int) -> Iterator[TaskOut]:
        token: str | None = None
        while True:
            page = self._list(params, limit=page_size, skip=None, next_token=token)
            yield from page.tasks
            token = page.next_token
            if token is None:
                return

    def _count(self, params: dict[str, str]) -> CountOut:
        return self._call("GET", "/api/tasks/count/total", CountOut, idempotent=True, params=params)

    # ------------------------------------------------------------------ cancel / regenerate
    def bulk_cancel(self, task_ids: Sequence[str], reason: str | None = None) -> BulkCancelOut:
        """POST /api/tasks/bulk-cancel: up to 100 ids. reason defaults to the server's
        ("Bulk cancellation requested"). Retried like a GET: cancelling twice cancels once (a
        retry after a lost answer reports those tasks as skipped, already CANCELLED)."""
        body = BulkCancelRequest.model_validate(
            {"task_ids": list(task_ids), **({} if reason is None else {"reason": reason})}
        )
        return self._call("POST", "/api/tasks/bulk-cancel", BulkCancelOut, idempotent=True, body=body)

    def bulk_regenerate(
        self,
        task_ids: Sequence[str],
        *,
        reset_to_pending: bool = True,
        force: bool = False,
        logo_url: str | None = None,
        intro_video_url: str | None = None,
        outro_video_url: str | None = None,
    ) -> BulkRegenerateOut:
        """POST /api/tasks/bulk-regenerate: up to 100 ids. Not idempotent (each call that lands
        starts another attempt), so it is retried only on 429 and on failures to connect."""
        body = BulkRegenerateRequest.model_validate(
            {
                "task_ids": list(task_ids),
                "reset_to_pending": reset_to_pending,
                "force": force,
                **_shared(logo_url=logo_url, intro_video_url=intro_video_url, outro_video_url=outro_video_url),
            }
        )
        return self._call("POST", "/api/tasks/bulk-regenerate", BulkRegenerateOut, idempotent=False, body=body)

    def matching_ids(self, **filters: Unpack[TaskFilterArgs]) -> list[str]:
        """The ids of every matching task, newest first (all pages)."""
        return [task.task_id for task in self.iter_tasks(**filters)]

    def cancel_all(
        self,
        *,
        reason: str | None = None,
        on_progress: Progress | None = None,
        **filters: Unpack[TaskFilterArgs],
    ) -> list[BulkCancelOut]:
        """Cancel every task matching the filters: the ids are collected first (all pages), then
        cancelled 100 per call; one answer per call, on_progress(done, total) after each. Without
        a status filter only open tasks (PENDING, QUEUED, PROCESSING) are collected, since final
        ones would be skipped. At least one filter is required, so that no call cancels a whole
        account by accident; for that, pass status="PENDING,QUEUED,PROCESSING"."""
        params = _required(filter_params(filters), "cancel_all")
        params.setdefault("status", ",".join(s.value for s in TaskStatus if s in OPEN_STATUSES))
        ids = [task.task_id for task in self._iter(params, PAGE_SIZE)]
        answers: list[BulkCancelOut] = []
        for chunk in _chunks(ids, CHUNK):
            answers.append(self.bulk_cancel(chunk, reason=reason))
            _report(on_progress, answers, ids)
        return answers

    def regenerate_all(
        self,
        *,
        reset_to_pending: bool = True,
        force: bool = False,
        logo_url: str | None = None,
        intro_video_url: str | None = None,
        outro_video_url: str | None = None,
        on_progress: Progress | None = None,
        **filters: Unpack[TaskFilterArgs],
    ) -> list[BulkRegenerateOut]:
        """Regenerate every task matching the filters (at least one required): ids collected
        first (all pages), then bulk_regenerate 100 per call; one answer per call, on_progress
        (done, total) after each."""
        params = _required(filter_params(filters), "regenerate_all")
        ids = [task.task_id for task in self._iter(params, PAGE_SIZE)]
        answers: list[BulkRegenerateOut] = []
        for chunk in _chunks(ids, CHUNK):
            answers.append(
                self.bulk_regenerate(
                    chunk,
                    reset_to_pending=reset_to_pending,
                    force=force,
                    logo_url=logo_url,
                    intro_video_url=intro_video_url,
                    outro_video_url=outro_video_url,
                )
            )
            _report(on_progress, answers, ids)
        return answers


def _required(params: dict[str, str], name: str) -> dict[str, str]:
    if not params:
        raise ValueError(f"{name} needs at least one filter (it would otherwise act on every task of the account)")
    return params


def _report(on_progress: Progress | None, answers: Sequence[Any], ids: Sequence[str]) -> None:
    if on_progress is not None:
        on_progress(min(len(answers) * CHUNK, len(ids)), len(ids))
