"""The FastAPI application: the same object behind Mangum in Lambda and uvicorn locally."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from taskapi.http import errors
from taskapi.http.methods import MethodNotAllowedRoute
from taskapi.http.reference import router as reference_router
from taskapi.http.routes import router
from taskapi.http.uploads import router as uploads_router
from taskapi.http.webhooks import router as webhooks_router
from taskapi.models.responses import HealthOut
from taskapi.observability import logger

DESCRIPTION = """
Submit content-generation tasks (video, quiz, animated_lesson, documentation) in bulk and
follow them by group, source and id.

Authenticate with **X-API-Key**, or with **Authorization: Bearer &lt;JWT&gt;** plus **X-Account-ID**.
Every error answers `{"detail": ...}`. A method a path does not serve is 405 with `Allow`.
"""


def _version() -> str:
    try:
        return version("taskapi")
    except PackageNotFoundError:  # the Lambda layer carries the code, not the distribution metadata
        return "lambda"


LOG_KEYS = ("request_id", "account_id", "task_id")


def request_log_keys(request: Request) -> Iterator[None]:
    """Every log line of a routed request carries its ids: request_id (API Gateway's
    requestContext.requestId, also the handler's correlation_id), account_id (the authorizer's
    context) and task_id (a path that names one). Only ids: never a header, key or body. The keys
    are the logger's shared ones (a sync route runs on another thread than this dependency), so
    they are removed when the request ends; in Lambda one request runs per process at a time."""
    event: dict[str, Any] = request.scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    keys = {
        "request_id": context.get("requestId"),
        "account_id": (context.get("authorizer") or {}).get("account_id"),
        "task_id": request.path_params.get("task_id"),
    }
    logger.append_keys(**{name: str(value) for name, value in keys.items() if isinstance(value, str) and value})
    try:
        yield
    finally:
        logger.remove_keys(LOG_KEYS)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Task API",
        version=_version(),
        description=DESCRIPTION,
        dependencies=[Depends(request_log_keys)],
    )
    errors.install(app)
    app.include_router(router)
    app.include_router(uploads_router)
    app.include_router(webhooks_router)
    app.include_router(reference_router)
    # First in the routing table: a served path asked with another method is 405, never a
    # template's match (GET /api/tasks/bulk is not GET /api/tasks/{task_id}).
    app.router.routes.insert(0, MethodNotAllowedRoute(app.router.routes))

    @app.get("/health", response_model=HealthOut, tags=["health"], summary="Liveness, without credentials")
    def health() -> HealthOut:
        return HealthOut(status="ok", version=app.version)

    return app


def mounted_at(app: ASGIApp, root_path: str) -> ASGIApp:
    """Tell the app the prefix it is served under (API Gateway's stage, e.g. "/v1"), which
    Mangum does not pass on, so /docs links to the stage's /openapi.json."""
    if not root_path:
        return app

    async def with_root_path(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "root_path": root_path}, receive, send)

    return with_root_path
