"""Request bodies and principals for tests: built here, not pasted into every test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
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


EVENTS = Path(__file__).parent / "events"


def apigw_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    resource: str = "/api/{proxy+}",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the v1 stage delivers it to the API function; with
    `authorizer`, the context a Lambda authorizer answered (plus what API Gateway adds)."""
    event = json.loads((EVENTS / "apigw_rest_proxy.json").read_text())
    all_headers = {**event["headers"], **(headers or {})}
    if body is not None and not any(name.lower() == "content-type" for name in all_headers):
        all_headers["Content-Type"] = "application/json"
    event.update(
        resource=resource,
        path=path,
        httpMethod=method,
        headers=all_headers,
        multiValueHeaders={k: [v] for k, v in all_headers.items()},
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"].update(httpMethod=method, path=f"/v1{path}", resourcePath=resource)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = {
            **authorizer,
            "principalId": authorizer.get("user_id", "anonymous"),
            "integrationLatency": 12,
        }
    return event


def authorizer_event(
    method: str = "GET",
    path: str = "/api/tasks",
    *,
    headers: dict[str, str] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST REQUEST authorizer event for the v1 stage."""
    proxy = apigw_event(method, path, headers=headers)
    if multi_value_headers is not None:
        proxy["multiValueHeaders"] = {**proxy["multiValueHeaders"], **multi_value_headers}
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:abc123/v1/{method}{path}",
        "resource": proxy["resource"],
        "path": path,
        "httpMethod": method,
        "headers": proxy["headers"],
        "multiValueHeaders": proxy["multiValueHeaders"],
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": proxy["pathParameters"],
        "stageVariables": {},
        "requestContext": proxy["requestContext"],
    }


@dataclass
class LambdaContext:
    function_name: str = "taskapi-ApiFunction"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:taskapi-ApiFunction"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


def all_tasks():
    """Filters matching every task of an account."""
    from taskapi.store.base import TaskFilters

    return TaskFilters()
