"""The task message: just enough to find the task again. The processor re-reads the task, so a
stale or duplicate message can never carry old data into a newer attempt."""

from __future__ import annotations

import json
from dataclasses import dataclass

from taskapi.models.domain import Task


@dataclass(frozen=True)
class TaskMessage:
    account_id: str
    task_id: str
    attempt: int

    @classmethod
    def of(cls, task: Task) -> TaskMessage:
        return cls(account_id=task.account_id, task_id=task.task_id, attempt=task.attempt)

    def body(self) -> str:
        return json.dumps(
            {"account_id": self.account_id, "task_id": self.task_id, "attempt": self.attempt}, separators=(",", ":")
        )

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
        return cls(account_id=account_id, task_id=task_id, attempt=attempt)
