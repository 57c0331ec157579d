"""The FastAPI application: the same object behind Mangum in Lambda and uvicorn locally."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from taskapi.http import errors
from taskapi.http.routes import router
from taskapi.models.responses import HealthOut
from taskapi.settings import Settings, get_settings

DESCRIPTION = """
Submit content-generation tasks (video, quiz, animated_lesson, documentation) in bulk and
follow them by group, source and id.

Authenticate with **X-API-Key**, or with **Authorization: Bearer &lt;JWT&gt;** plus **X-Account-ID**.
Every error answers `{"detail": ...}`.
"""


def _version() -> str:
    try:
        return version("taskapi")
    except PackageNotFoundError:  # the Lambda layer carries the code, not the distribution metadata
        return "lambda"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Task API",
        version=_version(),
        description=DESCRIPTION,
        root_path=settings.root_path,
    )
    errors.install(app)
    app.include_router(router)

    @app.get("/health", response_model=HealthOut, tags=["health"], summary="Liveness, without credentials")
    def health() -> HealthOut:
        return HealthOut(status="ok", version=app.version)

    return app
