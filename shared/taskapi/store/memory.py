"""In-memory TaskRepository for unit tests: the same contract as the DynamoDB adapter."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from taskapi.models.domain import Task
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

    def _matching(self, account_id: str, filters: TaskFilters) -> list[Task]:
        return [t for (acc, _), t in self._tasks.items() if acc == account_id and filters.matches(t)]

    def page(self, account_id: str, filters: TaskFilters, *, before: str | None, want: int) -> list[Task]:
        tasks = sorted(self._matching(account_id, filters), key=lambda t: t.created_sk, reverse=True)
        if before is not None:
            tasks = [t for t in tasks if t.created_sk < before]
        return tasks[:want]

    def count(self, account_id: str, filters: TaskFilters) -> int:
        return len(self._matching(account_id, filters))
