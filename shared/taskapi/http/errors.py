"""The one place where domain exceptions become HTTP answers. Every answer is {"detail": ...}."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from taskapi import errors
from taskapi.models.requests import TOO_MANY_TASKS
from taskapi.observability import logger

STATUS_BY_ERROR: dict[type[errors.TaskApiError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooManyItems: 413,
    errors.TooManyRequests: 429,
    errors.Retryable: 503,
    errors.ServiceMisconfigured: 500,  # its cause is logged where AWS's error is translated (taskapi.aws_errors)
}


def status_for(exc: errors.TaskApiError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]  # type: ignore[index]
    return 500


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    """Validation errors name the field and say what is wrong, without echoing the input back."""
    cleaned = {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
    if error.get("ctx"):
        cleaned["ctx"] = {k: v for k, v in error["ctx"].items() if isinstance(v, str | int | float | bool)}
    return cleaned


PLUS_HINT = "; a '+' in a query string means a space: send it as %2B"


def _plus_in_raw_query(query_string: bytes) -> set[str]:
    """The query parameters whose raw value holds a '+', which the query parser read as a space."""
    names = set()
    for pair in query_string.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if "+" in value:
            names.add(unquote_plus(name))
    return names


def _with_plus_hints(problems: list[dict[str, Any]], query_string: bytes) -> list[dict[str, Any]]:
    """A refused query value that was sent with '+' says so: the sender most likely meant a plus."""
    if b"+" not in query_string:
        return problems
    names = _plus_in_raw_query(query_string)
    for problem in problems:
        loc = problem["loc"]
        if len(loc) == 2 and loc[0] == "query" and loc[1] in names:
            problem["msg"] = f"{problem['msg']}{PLUS_HINT}"
    return problems


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.InvalidFields)
    async def _invalid_fields(request: Request, exc: errors.InvalidFields) -> JSONResponse:
        # Checks only the service can make (request_data against a stored task's type) answer
        # exactly like the body's own validation.
        return JSONResponse({"detail": jsonable_encoder(exc.problems)}, status_code=422)

    @app.exception_handler(errors.TaskApiError)
    async def _domain(request: Request, exc: errors.TaskApiError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "1"}
        if isinstance(exc, errors.TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after_seconds)}
        return JSONResponse({"detail": jsonable_encoder(exc.detail)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _with_plus_hints([_clean(e) for e in exc.errors()], request.scope.get("query_string", b""))
        too_many = next((p for p in problems if p["type"] == TOO_MANY_TASKS), None)
        if too_many is not None:
            return JSONResponse({"detail": too_many["msg"]}, status_code=413)
        return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
        return JSONResponse({"detail": "Internal server error"}, status_code=500)
