"""The API reference's own spellings of routes this API serves under /api/tasks: the same
handler, credentials and answer, under the path the reference names."""

from __future__ import annotations

from fastapi import APIRouter

from taskapi.http.routes import AUTH_ERRORS, requeue_pending
from taskapi.models.responses import RequeuePendingOut

router = APIRouter(tags=["tasks"])

for _path in ("/task/requeue-pending", "/api/task/requeue-pending"):
    router.add_api_route(
        _path,
        requeue_pending,
        methods=["POST"],
        response_model=RequeuePendingOut,
        responses=AUTH_ERRORS,
        summary="Queue PENDING tasks and re-send lost QUEUED ones (the reference's spelling)",
        description="The API reference's spelling of `POST /api/tasks/requeue-pending`, which it does "
        "exactly: same credentials, same answer. Prefer `/api/tasks/requeue-pending`.",
        deprecated=True,
        name="requeue_pending_reference",  # operation ids stay unique: FastAPI adds path and method
    )
