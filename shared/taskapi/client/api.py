"""TaskApiClient: every endpoint of the Task API, one class."""

from __future__ import annotations

from taskapi.client.queue import QueueEndpoints
from taskapi.client.tasks import TaskEndpoints
from taskapi.client.uploads import UploadEndpoints
from taskapi.client.webhooks import WebhookEndpoints
from taskapi.models.responses import HealthOut


class TaskApiClient(TaskEndpoints, QueueEndpoints, UploadEndpoints, WebhookEndpoints):
    """A synchronous client of the Task API over httpx, answering the server's own pydantic models.

        with TaskApiClient("https://api.example.com/v1", api_key="tk.acct.....") as api:
            created = api.create_tasks(specs, on_progress=lambda done, total: print(done, total))
            for task in api.iter_tasks(task_source_group_id="batch_456", status="FAILED"):
                ...

    Credentials: exactly one of api_key (sent as X-API-Key; the key names its account) and token
    (sent as Authorization: Bearer, with account_id as X-Account-ID).

    `http` injects an httpx.Client (starlette's TestClient, or one over httpx.MockTransport); the
    client then uses it as configured (`timeout` applies only to the client made here) and leaves
    closing it to its owner. `sleep` and `rand` (a float in [0, 1)) replace time.sleep and
    random.random in the retry waits.

    Retries (taskapi.client.retry): up to max_retries repeats of a request.
    * Idempotent requests are repeated on 429, 502, 503, 504 and on transport errors (timeouts,
      network errors, a connection closed without an answer). They are every GET, task creation
      (create_tasks_bulk, create_tasks, create_task: a task without a task_id is given a UUID4
      before the first send, and the server answers an id it already holds as stored, so a repeat
      never creates a task twice), bulk_cancel (and cancel_all), queue_restart,
      queue_process_pending and requeue_pending.
    * bulk_regenerate (and regenerate_all) is not idempotent, each call that lands starting another
      attempt; it is repeated only when the failure shows it was not processed: a 429 (a refusal
      that writes nothing), or a failure to connect (ConnectError, ConnectTimeout, PoolTimeout).
    * The wait is the answer's Retry-After (seconds or HTTP-date) when present, else
      exponential backoff with equal jitter from backoff_base; always capped at backoff_max.

    Errors: a non-2xx answer raises taskapi.client.errors.TaskApiError (NotFound, Unauthorized,
    Forbidden, RateLimited, ... by status) once retries are spent; a transport error that outlasts
    them is raised as httpx raised it. Request bodies are validated by the server's models before
    sending (pydantic.ValidationError).
    """

    def health(self) -> HealthOut:
        """GET /health (needs no credentials)."""
        return self._call("GET", "/health", HealthOut, idempotent=True)
