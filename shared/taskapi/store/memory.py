"""In-memory TaskRepository for unit tests: the same contract as the DynamoDB adapter."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from taskapi.errors import Conflict
from taskapi.models.domain import Task, TaskStatus
from taskapi.store.base import InsertResult, TaskFilters


class InMemoryTaskRepository:
    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], Task] = {}
        self._lock = threading.Lock()

    def insert_new(self, tasks: Sequence[Task]) -> InsertResult:
        result = InsertResult()
        with self._lock:
            for task in tasks:
                key = (task.account_id, task.task_id)
                if key in self._tasks:
                    result.existing[task.task_id] = self._tasks[key]
                else:
                    self._tasks[key] = task
                    result.created[task.task_id] = task
        return result

    def get(self, account_id: str, task_id: str) -> Task | None:
        return self._tasks.get((account_id, task_id))

    def get_many(self, account_id: str, task_ids: Iterable[str]) -> dict[str, Task]:
        found = {}
        for task_id in task_ids:
            task = self._tasks.get((account_id, task_id))
            if task is not None:
                found[task_id] = task
        return found

    def all_tasks(self) -> list[Task]:
        """Every stored task of every account (an in-memory counter store follows them)."""
        return list(self._tasks.values())

    def _matching(self, account_id: str, filters: TaskFilters) -> list[Task]:
        return [t for (acc, _), t in self._tasks.items() if acc == account_id and filters.matches(t)]

    def page(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int = 0
    ) -> list[Task]:
        tasks = sorted(self._matching(account_id, filters), key=lambda t: t.created_sk, reverse=True)
        if before is not None:
            tasks = [t for t in tasks if t.created_sk < before]
        return tasks[skip : skip + want]

    def window(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int = 0
    ) -> tuple[list[Task], bool]:
        tasks = self.page(account_id, filters, before=before, want=want + 1, skip=skip)
        return tasks[:want], len(tasks) > want

    def newest_ids(self, account_id: str, filters: TaskFilters, *, want: int) -> list[str]:
        return [task.task_id for task in self.page(account_id, filters, before=None, want=want)]

    def count(self, account_id: str, filters: TaskFilters, *, at_most: int | None = None) -> int:
        return len(self._matching(account_id, filters))

    def save(self, task: Task, *, expected_version: int) -> Task:
        with self._lock:
            key = (task.account_id, task.task_id)
            current = self._tasks.get(key)
            if current is None or current.version != expected_version:
                raise Conflict("The task changed while this request was being handled")
            stored = task.model_copy(update={"version": expected_version + 1})
            self._tasks[key] = stored
            return stored

    def save_many(self, changes: Sequence[tuple[Task, int]]) -> dict[str, Task]:
        saved = {}
        for task, version in changes:
            try:
                saved[task.task_id] = self.save(task, expected_version=version)
            except Conflict:
                continue
        return saved

    def record_progress(
        self,
        account_id: str,
        task_id: str,
        *,
        attempt: int,
        progress: float,
        message: str,
        now: str,
        claim: str | None = None,
    ) -> bool:
        with self._lock:
            current = self._tasks.get((account_id, task_id))
            if (
                current is None
                or current.status is not TaskStatus.PROCESSING
                or current.attempt != attempt
                or current.progress > progress
                or (claim is not None and current.state_since != claim)
            ):
                return False
            self._tasks[(account_id, task_id)] = current.model_copy(
                update={
                    "progress": progress,
                    "progress_message": message,
                    "updated_at": now,
                    "version": current.version + 1,
                }
            )
            return True

    def open_tasks(self, status: TaskStatus, *, before: str, limit: int) -> list[tuple[str, str]]:
        matching = sorted(
            (
                t
                for t in self._tasks.values()
                if t.status is status
                and (t.state_since or t.updated_at) < before
                and not (t.status is TaskStatus.PENDING and t.request_data is None)
            ),
            key=lambda t: t.state_since or t.updated_at,
        )
        return [(t.account_id, t.task_id) for t in matching[:limit]]
