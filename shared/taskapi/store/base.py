"""The task repository interface: one DynamoDB adapter and one in-memory fake implement it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from taskapi.models.domain import Priority, Task, TaskStatus, TaskType


@dataclass(frozen=True)
class TaskFilters:
    """What a list or count asks for. Every value is exact-match; tuples mean "any of"."""

    group_id: str | None = None
    source_ids: tuple[str, ...] = ()
    task_ids: tuple[str, ...] = ()
    statuses: tuple[TaskStatus, ...] = ()
    task_type: TaskType | None = None
    priority: Priority | None = None
    queueable: bool | None = None
    """True: only tasks that have request_data (the ones that can be queued); False: only those without."""

    def matches(self, task: Task) -> bool:
        return (
            (self.group_id is None or task.task_source_group_id == self.group_id)
            and (not self.source_ids or task.task_source_id in self.source_ids)
            and (not self.task_ids or task.task_id in self.task_ids)
            and (not self.statuses or task.status in self.statuses)
            and (self.task_type is None or task.task_type == self.task_type)
            and (self.priority is None or task.priority == self.priority)
            and (self.queueable is None or (task.request_data is not None) == self.queueable)
        )

    def fingerprint(self) -> str:
        """Short digest binding a pagination cursor to the filters it was issued for."""
        parts = [
            self.group_id or "",
            ",".join(sorted(self.source_ids)),
            ",".join(sorted(self.task_ids)),
            ",".join(sorted(self.statuses)),
            self.task_type or "",
            self.priority or "",
        ]
        if self.queueable is not None:  # appended only when set: cursors issued before it stay valid
            parts.append(f"queueable={self.queueable}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass
class InsertResult:
    """Outcome of an idempotent bulk insert, keyed by task id."""

    created: dict[str, Task] = field(default_factory=dict)
    existing: dict[str, Task] = field(default_factory=dict)


class TaskRepository(Protocol):
    def insert_new(self, tasks: Sequence[Task]) -> InsertResult:
        """Write the tasks whose (account_id, task_id) is new; answer the stored ones for the rest.

        All tasks belong to one account. Nothing already stored is rewritten.
        """
        ...

    def get(self, account_id: str, task_id: str) -> Task | None: ...

    def get_many(self, account_id: str, task_ids: Iterable[str]) -> dict[str, Task]: ...

    def page(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int = 0
    ) -> list[Task]:
        """Up to `want` matching tasks, newest first, whose created_sk sorts below `before`, after
        passing over the first `skip` of them (read, but never all held at once)."""
        ...

    def window(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int = 0
    ) -> tuple[list[Task], bool]:
        """page(), and whether more tasks match after it: the index is read one entry further,
        the task of that entry is not fetched."""
        ...

    def newest_ids(self, account_id: str, filters: TaskFilters, *, want: int) -> list[str]:
        """The ids of up to `want` matching tasks, newest first, from the index alone (it lags the
        table by a moment): no task is fetched."""
        ...

    def count(self, account_id: str, filters: TaskFilters, *, at_most: int | None = None) -> int:
        """Tasks matching the filters; with at_most, counting may stop once it reaches that many
        (the answer is then at_most or more), so a ceiling check reads no more than the ceiling."""
        ...

    def save(self, task: Task, *, expected_version: int) -> Task:
        """Replace the task if its stored version is still expected_version (else Conflict).
        Answers the stored task (version expected_version + 1)."""
        ...

    def save_many(self, changes: Sequence[tuple[Task, int]]) -> dict[str, Task]:
        """save() for many tasks, skipping those whose version moved. Answers the stored ones by id."""
        ...

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
        """Set progress if the task is PROCESSING this attempt and progress does not go back."""
        ...

    def open_tasks(self, status: TaskStatus, *, before: str, limit: int) -> list[tuple[str, str]]:
        """Keys of tasks of every account in `status` since before `before` (may lag the table)."""
        ...
