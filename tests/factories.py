"""Request bodies and principals for tests: built here, not pasted into every test."""

from __future__ import annotations

from typing import Any

from taskapi.auth.principal import Principal


def principal(account_id: str = "acct_a", user_id: str = "user_1") -> Principal:
    return Principal(account_id=account_id, user_id=user_id, auth_method="jwt")


def video(task_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_type": "video",
        "priority": "high",
        "request_data": {"story_prompt": "Basic mathematics: addition and subtraction", "segments": 3},
    }
    if task_id is not None:
        body["task_id"] = task_id
    body.update(overrides)
    return body


def quiz(task_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_type": "quiz",
        "request_data": {
            "story_prompt": "Pythagoras discovered a theorem about right triangles.",
            "difficulty": "medium",
        },
    }
    if task_id is not None:
        body["task_id"] = task_id
    body.update(overrides)
    return body


def documentation(task_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"task_type": "documentation", "request_data": {"story_prompt": "How to use the API"}}
    if task_id is not None:
        body["task_id"] = task_id
    body.update(overrides)
    return body


def bulk(*tasks: dict[str, Any], **shared: Any) -> dict[str, Any]:
    return {"tasks": list(tasks), **shared}
