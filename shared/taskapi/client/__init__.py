"""Python client of the Task API (install with the `client` extra: httpx).

    from taskapi.client import TaskApiClient, NotFound

TaskApiClient (taskapi.client.api) documents credentials, retries and errors."""

from taskapi.client.api import TaskApiClient
from taskapi.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TaskApiError,
    Unauthorized,
    UnprocessableEntity,
)
from taskapi.client.tasks import TaskFilterArgs, TaskInput, TaskSpec

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "TaskApiClient",
    "TaskApiError",
    "TaskFilterArgs",
    "TaskInput",
    "TaskSpec",
    "Unauthorized",
    "UnprocessableEntity",
]
