"""The one domain exception hierarchy. HTTP status mapping lives in taskapi.http.errors only."""

from __future__ import annotations

from typing import Any


class TaskApiError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail


class InvalidRequest(TaskApiError):
    """The request is well-formed JSON but asks for something the API does not allow."""


class InvalidFields(InvalidRequest):
    """Fields fail a check only the service can make (request_data against a stored task's type).
    `problems` locate each one as request validation does: {"loc": ["body", ...], "msg", "type"};
    they answer 422 like any invalid body."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(problems)
        self.problems = problems


class TooManyItems(TaskApiError):
    """A bulk request names more items than one call may carry."""


class NotFound(TaskApiError):
    """The resource does not exist in the caller's account (or belongs to another one)."""


class Conflict(TaskApiError):
    """A conditional write lost a race."""


class Unauthenticated(TaskApiError):
    """Credentials are missing or do not verify."""


class Forbidden(TaskApiError):
    """Credentials verify but do not grant the requested account."""


class TooManyRequests(TaskApiError):
    """The account may not take on more work now; the same call may succeed after retry_after."""

    def __init__(self, detail: Any, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class Retryable(TaskApiError):
    """A dependency throttled or failed transiently; the same call may succeed later."""


class ServiceMisconfigured(TaskApiError):
    """A dependency refused the call in a way no retry changes (access denied, a missing table or
    queue, a request it calls invalid): the service's own configuration is wrong. Its cause is
    logged where it is raised (taskapi.aws_errors); the caller gets a generic 500, never "retry"."""
