"""Task rules: creation (bulk and single), reading, listing and counting. Every entry point
(HTTP, and later S3 ingest and the reconciler) calls these functions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from taskapi.auth.principal import Principal
from taskapi.counting.reads import covered_count
from taskapi.counting.store import CounterStore
from taskapi.errors import InvalidFields, NotFound, TooManyRequests
from taskapi.generation.choice import ProviderPolicy
from taskapi.models.domain import Task, TaskEvent, TaskStatus, TaskType, isoformat, utc_now
from taskapi.models.requests import BulkCreateRequest, SharedVideoSettings, TaskCreate
from taskapi.observability import logger, metrics, tracer
from taskapi.queueing.queues import TaskQueue
from taskapi.services.pagination import Cursor
from taskapi.services.queueing import send_before_insert
from taskapi.store.base import TaskFilters, TaskRepository

PENDING_EVENT = "Task pending"
UNFINISHED = (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING)
HELD_AGAINST_CEILING = TaskFilters(statuses=UNFINISHED, queueable=True)
"""The tasks the ceiling counts: unfinished ones with request_data. A PENDING task without it is
stored and never queued (until a PATCH gives it some), so it holds no place in the work."""


@dataclass(frozen=True)
class Ceiling:
    """The most unfinished tasks (PENDING + QUEUED + PROCESSING) an account may hold."""

    max_unfinished: int
    retry_after_seconds: int
    counters: CounterStore | None = None
    """Where the held tasks are counted: the account counter's HELD (one GetItem, lagging the
    table by seconds); without counters, a COUNT query that stops at the ceiling."""


def held_tasks(repository: TaskRepository, account_id: str, ceiling: Ceiling, *, at_most: int) -> int:
    """The account's tasks HELD_AGAINST_CEILING: from its counter when the ceiling has counters,
    else counted by query (which may stop at at_most)."""
    if ceiling.counters is not None:
        counted = covered_count(ceiling.counters, account_id, HELD_AGAINST_CEILING)
        if counted is not None:
            return counted
    return repository.count(account_id, HELD_AGAINST_CEILING, at_most=at_most)


def ensure_room(repository: TaskRepository, principal: Principal, new_tasks: int, ceiling: Ceiling) -> None:
    """TooManyRequests unless the account can take new_tasks more unfinished tasks (those
    HELD_AGAINST_CEILING). Checked before writing, from counters that may lag by seconds, so
    concurrent requests can overshoot it by their own tasks and those of the last seconds (best
    effort); ids that turn out to exist already are counted as new."""
    room = ceiling.max_unfinished - new_tasks
    unfinished = 0 if room < 0 else held_tasks(repository, principal.account_id, ceiling, at_most=room + 1)
    if room < 0 or unfinished > room:
        logger.info(
            "unfinished-task ceiling reached",
            extra={"unfinished_at_least": unfinished, "requested_count": new_tasks, "ceiling": ceiling.max_unfinished},
        )
        metrics.add_metric(name="CeilingRefusals", unit="Count", value=1)
        raise TooManyRequests(
            f"Account {principal.account_id} may hold at most {ceiling.max_unfinished} unfinished tasks "
            f"(QUEUED, PROCESSING, or PENDING with request_data) on its plan; {new_tasks} more would exceed it. "
            "Retry when some have finished, or cancel some.",
            retry_after_seconds=ceiling.retry_after_seconds,
        )


def refuse_unserved_providers(
    providers: ProviderPolicy, specs: Sequence[TaskCreate], *, loc: tuple[str, ...] = ("body", "tasks")
) -> None:
    """InvalidFields (422) naming every task whose request_data.provider this deployment does not
    serve. `loc` locates the tasks in the body: a list ("body", "tasks") or the body itself ("body",)."""
    problems = []
    for index, spec in enumerate(specs):
        refusal = providers.refusal(spec.task_type.value, spec.request_data_dict())
        if refusal is not None:
            where = [*loc, index] if len(loc) > 1 else [*loc]
            problems.append(
                {"type": "provider_unavailable", "loc": [*where, "request_data", "provider"], "msg": refusal}
            )
    if problems:
        raise InvalidFields(problems)


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    total: int
    limit: int
    skip: int
    next_token: str | None


def _new_task(principal: Principal, spec: TaskCreate, shared: SharedVideoSettings, now: str) -> Task:
    request_data = spec.request_data_dict()
    if request_data is not None and spec.task_type == TaskType.VIDEO:
        request_data = shared.apply_to(request_data)
    return Task(
        account_id=principal.account_id,
        task_id=spec.task_id or str(uuid.uuid4()),
        user_id=principal.user_id,
        task_type=spec.task_type,
        priority=spec.priority,
        created_at=now,
        updated_at=now,
        task_source_name=spec.task_source_name,
        task_source_id=spec.task_source_id,
        task_source_group_id=spec.task_source_group_id,
        request_data=request_data,
        events=[TaskEvent(timestamp=now, message=PENDING_EVENT)],
    )


@dataclass(frozen=True)
class Creation:
    """What create_tasks did: every task of the request in request order (as stored, queued or
    found), and the ids this call created (the others existed already)."""

    tasks: list[Task]
    created: frozenset[str]


@tracer.capture_method(capture_response=False)
def create_tasks(
    repository: TaskRepository,
    queue: TaskQueue,
    principal: Principal,
    specs: Sequence[TaskCreate],
    shared: SharedVideoSettings | None = None,
    ceiling: Ceiling | None = None,
) -> Creation:
    """Create every task whose id is new in the account and queue those with request_data;
    answer all of them in request order, and which ids were created.

    One write per task: the messages are sent first, then each task is inserted QUEUED (or PENDING
    with why, where SQS refused its message: the reconciler sends it again), in one
    TransactWriteItems per request (services.queueing.send_before_insert says why no message is
    lost and none runs twice). An id that already exists is answered as stored: nothing about it
    is rewritten (its stray message is acknowledged by the processor). With a
    ceiling, nothing is written when the account has no room for every task of the request that
    has request_data (tasks without it are stored, not queued, and do not count)."""
    queueable = sum(1 for spec in specs if spec.request_data is not None)
    if ceiling is not None and queueable:
        ensure_room(repository, principal, queueable, ceiling)
    now = isoformat(utc_now())
    shared = shared or SharedVideoSettings()
    candidates = send_before_insert(queue, [_new_task(principal, spec, shared, now) for spec in specs], now=now)
    result = repository.insert_new(candidates)
    logger.info(
        "tasks created",
        extra={
            "created_count": len(result.created),
            "existing_count": len(result.existing),
            "requested_count": len(candidates),
        },
    )
    if result.created:
        metrics.add_metric(name="TasksCreated", unit="Count", value=len(result.created))
    answers = [result.existing.get(task.task_id) or result.created[task.task_id] for task in candidates]
    return Creation(tasks=answers, created=frozenset(result.created))


def create_bulk(
    repository: TaskRepository,
    queue: TaskQueue,
    principal: Principal,
    request: BulkCreateRequest,
    ceiling: Ceiling | None = None,
    providers: ProviderPolicy | None = None,
) -> list[Task]:
    if providers is not None:
        refuse_unserved_providers(providers, request.tasks)
    return create_tasks(repository, queue, principal, request.tasks, shared=request, ceiling=ceiling).tasks


@tracer.capture_method(capture_response=False)
def get_task(repository: TaskRepository, principal: Principal, task_id: str) -> Task:
    task = repository.get(principal.account_id, task_id)
    if task is None:
        # The same answer whether the id is unknown or another account's: nothing is confirmed.
        raise NotFound(f"Task {task_id} not found")
    return task


@tracer.capture_method(capture_response=False)
def list_tasks(
    repository: TaskRepository,
    principal: Principal,
    filters: TaskFilters,
    *,
    limit: int,
    skip: int,
    next_token: str | None,
    counters: CounterStore | None = None,
) -> TaskPage:
    """A page of `limit` tasks after `skip` of them. The skipped tasks are read too (an index has no
    offset): a far skip costs as many items read as it skips, where `next_token` costs only its
    page. A skip past the last match answers no tasks with the true total.

    The first page's `total` comes from the counters where they cover the filters (see
    count_tasks), kept consistent with the page itself: never below the tasks seen, never above a
    skip that went past the last match."""
    fingerprint = filters.fingerprint()
    cursor = Cursor.decode(next_token, filters=fingerprint) if next_token else None
    start = cursor.offset if cursor else 0
    # One index entry past the page says whether another page exists, whatever happened since page 1.
    tasks, more = repository.window(
        principal.account_id, filters, before=cursor.after if cursor else None, want=limit, skip=skip
    )
    if cursor is not None:
        total = cursor.total  # counted for the first page: a cursor page costs only itself
    elif not more and tasks:
        total = skip + len(tasks)  # the read reached the last match: no COUNT query needed
    elif not more and not skip:
        total = 0
    else:
        total = count_tasks(repository, principal, filters, counters=counters)
        total = max(total, skip + len(tasks) + 1) if tasks else min(total, skip)  # counters lag the page
    token = None
    if tasks and more:
        reached = start + skip + len(tasks)
        token = Cursor(after=tasks[-1].created_sk, offset=reached, filters=fingerprint, total=total).encode()
    return TaskPage(tasks=tasks, total=total, limit=limit, skip=skip, next_token=token)


@tracer.capture_method(capture_response=False)
def count_tasks(
    repository: TaskRepository, principal: Principal, filters: TaskFilters, *, counters: CounterStore | None = None
) -> int:
    """The account's tasks matching the filters: from the counters (one GetItem, or a BatchGetItem
    over the source ids) when they cover the filters (taskapi.counting.reads), lagging the table by
    seconds; otherwise by COUNT queries on the most selective index."""
    if counters is not None:
        counted = covered_count(counters, principal.account_id, filters)
        if counted is not None:
            return counted
    return repository.count(principal.account_id, filters)
