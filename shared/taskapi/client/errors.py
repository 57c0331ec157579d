"""Errors the client raises for non-2xx answers. Distinct from taskapi.errors (the service's own
domain exceptions): these carry the HTTP status, the answer's `detail` and the response.

Transport failures that outlast the retries are raised as they are (httpx.TransportError)."""

from __future__ import annotations

from typing import Any

import httpx

from taskapi.client.retry import parse_retry_after


class TaskApiError(Exception):
    """A non-2xx answer. `detail` is the body's "detail" (the service's errors), else its "message"
    (API Gateway's own answers), else the body as text."""

    def __init__(self, status_code: int, detail: Any, response: httpx.Response | None = None) -> None:
        self.status_code = status_code
        self.detail = detail
        self.response = response
        super().__init__(status_code, detail)

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {describe(self.detail)}"


class BadRequest(TaskApiError):
    """400: e.g. an empty task_ids list, a next_token issued for other filters."""


class Unauthorized(TaskApiError):
    """401: credentials missing or invalid."""


class Forbidden(TaskApiError):
    """403: the bearer token does not grant X-Account-ID."""


class NotFound(TaskApiError):
    """404: no such task in the account."""


class Conflict(TaskApiError):
    """409: a conditional write lost a race."""


class PayloadTooLarge(TaskApiError):
    """413: more than 100 tasks or task ids in one call."""


class UnprocessableEntity(TaskApiError):
    """422: the body or the query failed validation; `detail` lists {loc, msg, type} per problem."""


class RateLimited(TaskApiError):
    """429: throttled. `retry_after` is the answer's Retry-After in seconds, when it had one."""

    def __init__(self, status_code: int, detail: Any, response: httpx.Response | None = None) -> None:
        super().__init__(status_code, detail, response)
        self.retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None


class ServerError(TaskApiError):
    """5xx: the service or the gateway failed (503: a dependency is busy)."""


ERROR_BY_STATUS: dict[int, type[TaskApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
}


def describe(detail: Any) -> str:
    """One line per validation problem ("body.tasks.0.video.request_data.segments: ..."), else str()."""
    if isinstance(detail, list) and detail and all(isinstance(p, dict) and "msg" in p for p in detail):
        return "; ".join(
            f"{'.'.join(str(part) for part in p.get('loc', ()))}: {p['msg']}" if p.get("loc") else str(p["msg"])
            for p in detail
        )
    return str(detail)


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    if isinstance(body, dict):
        if "detail" in body:
            return body["detail"]
        if "message" in body:
            return body["message"]
    return body


def error_for(response: httpx.Response) -> TaskApiError:
    status = response.status_code
    kind = ERROR_BY_STATUS.get(status, ServerError if status >= 500 else TaskApiError)
    return kind(status, _detail(response), response)
