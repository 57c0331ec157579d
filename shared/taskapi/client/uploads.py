"""Extension point for the uploads endpoints, not implemented yet:

    POST /api/uploads          -> e.g. create_upload(...)
    GET  /api/uploads/{id}     -> e.g. get_upload(upload_id)

To add them, define the methods on UploadEndpoints below (TaskApiClient already inherits it), the
same way as taskapi.client.tasks does:

* bodies and answers: the server's pydantic models (taskapi.models.requests / responses), sent and
  parsed by `self._call(method, path, AnswerModel, idempotent=..., params=..., body=...)`
  (`self._call_as(..., TypeAdapter(...))` for answers that are not one model);
* `idempotent`: True for the GET; for the POST only if sending it twice cannot create two uploads
  (e.g. a client-chosen upload id filled in before the first send, as create_tasks_bulk does with
  task ids). Otherwise False: then it is retried only on 429 and on failures to connect
  (see taskapi.client.retry);
* path parameters quoted with urllib.parse.quote(value, safe="");
* tests in tests/unit/client/, against the app over tests.fakes.Fakes (see conftest.py there).
"""

from __future__ import annotations

from taskapi.client.base import BaseClient


class UploadEndpoints(BaseClient):
    """The uploads endpoints (none yet; see the module docstring)."""
