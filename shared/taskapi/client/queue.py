"""Endpoints under /api/tasks/queue and /api/tasks/requeue-pending."""

from __future__ import annotations

from taskapi.client.base import BaseClient
from taskapi.models.responses import ProcessPendingOut, QueueRestartOut, QueueStatusOut, RequeuePendingOut


class QueueEndpoints(BaseClient):
    def queue_status(self) -> QueueStatusOut:
        """GET /api/tasks/queue/status: whether processing is active and the account's PENDING /
        QUEUED / PROCESSING tasks (an operator's key also gets the real queue depths)."""
        return self._call("GET", "/api/tasks/queue/status", QueueStatusOut, idempotent=True)

    def queue_restart(self) -> QueueRestartOut:
        """POST /api/tasks/queue/restart: enable processing (idempotent: enabling twice is once).
        Operators only: a tenant's credentials raise Forbidden."""
        return self._call("POST", "/api/tasks/queue/restart", QueueRestartOut, idempotent=True)

    def queue_process_pending(self) -> ProcessPendingOut:
        """POST /api/tasks/queue/process-pending: queue the account's PENDING tasks (up to 1000).
        Retried: a second call finds them QUEUED and does nothing more."""
        return self._call("POST", "/api/tasks/queue/process-pending", ProcessPendingOut, idempotent=True)

    def requeue_pending(self) -> RequeuePendingOut:
        """POST /api/tasks/requeue-pending: process-pending, plus a new message for QUEUED tasks
        whose message is presumed lost. Retried: a duplicate message is acknowledged without work."""
        return self._call("POST", "/api/tasks/requeue-pending", RequeuePendingOut, idempotent=True)
