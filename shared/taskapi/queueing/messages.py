"""The task message: just enough to find the task again. The processor re-reads the task, so a
stale or duplicate message can never carry old data into a newer attempt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from taskapi.models.domain import Priority, Task


@dataclass(frozen=True)
class TaskMessage:
    account_id: str
    task_id: str
    attempt: int
    priority: Priority | None = field(default=None, compare=False)
    """The queue it goes on: where a message that came before its task was stored is sent again."""
    first_sent_ms: int | None = field(default=None, compare=False)
    """Set on a message sent again because its task was not stored yet: when the first one was
    sent (epoch milliseconds, like SQS's SentTimestamp), so the waiting ends whatever the re-sends."""

    @classmethod
    def of(cls, task: Task) -> TaskMessage:
        return cls(account_id=task.account_id, task_id=task.task_id, attempt=task.attempt, priority=task.priority)

    def body(self) -> str:
        data: dict[str, Any] = {"account_id": self.account_id, "task_id": self.task_id, "attempt": self.attempt}
        if self.priority is not None:
            data["priority"] = self.priority.value
        if self.first_sent_ms is not None:
            data["first_sent_ms"] = self.first_sent_ms
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> TaskMessage:
        """Raises ValueError for anything that is not a task message (a poison message)."""
        try:
            data = json.loads(body)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError("message body is not JSON") from exc
        if not isinstance(data, dict):
            raise ValueError("message body is not a JSON object")
        account_id, task_id, attempt = data.get("account_id"), data.get("task_id"), data.get("attempt")
        if not isinstance(account_id, str) or not account_id or not isinstance(task_id, str) or not task_id:
            raise ValueError("message lacks account_id or task_id")
        if type(attempt) is not int or attempt < 1:
            raise ValueError("message lacks a positive integer attempt")
        priority, first_sent_ms = data.get("priority"), data.get("first_sent_ms")
        if priority is not None and (not isinstance(priority, str) or priority not in {p.value for p in Priority}):
            raise ValueError("message names no known priority")
        if first_sent_ms is not None and (type(first_sent_ms) is not int or first_sent_ms < 0):
            raise ValueError("message's first_sent_ms is not a time in milliseconds")
        return cls(
            account_id=account_id,
            task_id=task_id,
            attempt=attempt,
            priority=None if priority is None else Priority(priority),
            first_sent_ms=first_sent_ms,
        )
