"""Endpoints under /api/uploads, and the presigned POST of the file itself.

    created = api.create_upload("jsonl", task_source_group_id="batch_1", filename="batch.jsonl")
    api.upload_file(created, "batch.jsonl", on_progress=lambda sent, total: ...)
    final = api.wait_for_upload(created.upload_id, on_progress=lambda upload: print(upload.rows))

* create_upload: POST /api/uploads. Not idempotent (each call that lands records another upload),
  so it is retried only on 429 and on failures to connect (taskapi.client.retry).
* get_upload: GET /api/uploads/{upload_id}.
* upload_file: the HTML-form POST to the presigned URL — every field as given, then the file as
  "file" — streamed from disk (never read whole). It sends no API credentials: the signed policy
  is the authorisation. Repeated like an idempotent request (on 500/502/503/504 and transport
  errors, with the client's backoff): a second write of the same key is one more notification,
  which ingest answers as a duplicate. The file is checked against max_bytes (and emptiness) first,
  so a file the bucket would refuse is not sent. A refusal raises UploadRejected with S3's code.
* report_lines: the report's JSON lines ({"row", "status", "task_id", "errors"}), streamed from its
  presigned URL.
* wait_for_upload: get_upload every `interval` seconds (the client's sleep) until COMPLETED or
  FAILED, or UploadTimeout after `timeout` seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import quote

import httpx

from taskapi.client.base import BaseClient
from taskapi.client.errors import TaskApiError
from taskapi.models.uploads import PresignedUploadOut, UploadCreate, UploadCreatedOut, UploadOut
from taskapi.uploads.model import FINAL_UPLOAD_STATUSES, UploadFormatName

UPLOAD_RETRY_STATUSES = frozenset({500, 502, 503, 504})
"""Answers of the bucket the file's POST is repeated on (S3 answers 500 InternalError and 503
SlowDown, a proxy 502/504)."""
DEFAULT_POLL_SECONDS = 2.0


class UploadRejected(TaskApiError):
    """The bucket refused the file (e.g. EntityTooLarge, AccessDenied once the policy expired), or
    the file breaks the upload's limits before it is sent (status_code 0). `detail` is
    "Code: Message" from S3's XML answer when it has one."""


class UploadTimeout(TimeoutError):
    """wait_for_upload gave up; `upload` is the last answer."""

    def __init__(self, upload: UploadOut, seconds: float) -> None:
        super().__init__(f"upload {upload.upload_id} is still {upload.status} after {seconds:g} seconds")
        self.upload = upload


class _Counting(io.RawIOBase):
    """A binary file that reports the bytes read from it, for httpx's multipart encoder (which
    seeks to the start, asks the length with seek/tell and reads in chunks)."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None] | None) -> None:
        super().__init__()
        self._raw = raw
        self._on_read = on_read
        self.sent = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._raw.seek(offset, whence)
        if whence == os.SEEK_SET and offset == 0:
            self.sent = 0
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self.sent += len(data)
            if self._on_read is not None:
                self._on_read(self.sent)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _s3_detail(response: httpx.Response) -> str:
    text = response.text
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    if code:
        return f"{code.group(1)}: {message.group(1)}" if message else code.group(1)
    return text.strip()[:500] or response.reason_phrase


class UploadEndpoints(BaseClient):
    def create_upload(
        self,
        upload_format: UploadFormatName,
        *,
        task_source_group_id: str | None = None,
        filename: str | None = None,
    ) -> UploadCreatedOut:
        """POST /api/uploads: records a PENDING upload and answers the presigned POST for its file."""
        body = UploadCreate.model_validate(
            {
                "format": upload_format,
                **({"task_source_group_id": task_source_group_id} if task_source_group_id is not None else {}),
                **({"filename": filename} if filename is not None else {}),
            }
        )
        return self._call("POST", "/api/uploads", UploadCreatedOut, idempotent=False, body=body)

    def get_upload(self, upload_id: str) -> UploadOut:
        """GET /api/uploads/{upload_id}: status, counts, group and report URL; NotFound when the
        account has no such upload."""
        return self._call("GET", f"/api/uploads/{quote(upload_id, safe='')}", UploadOut, idempotent=True)

    def upload_file(
        self,
        upload: UploadCreatedOut | PresignedUploadOut,
        file: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """POST the file to the presigned URL. on_progress(bytes_sent, file_size) follows the
        stream. `http` sends it (default: this client's connection, without the API credentials:
        they are added per API request only)."""
        presigned = upload.upload if isinstance(upload, UploadCreatedOut) else upload
        path = Path(file)
        size = path.stat().st_size
        if size == 0:
            raise UploadRejected(0, f"{path.name} is empty")
        if size > presigned.max_bytes:
            raise UploadRejected(0, f"{path.name} is {size} bytes; an upload takes at most {presigned.max_bytes}")
        sender = http if http is not None else self._http
        attempt = 0
        while True:
            with path.open("rb") as raw:
                stream = _Counting(raw, None if on_progress is None else lambda sent: on_progress(sent, size))
                try:
                    response = sender.post(
                        presigned.url,
                        data=presigned.fields,
                        files={"file": (path.name, cast(IO[bytes], stream), "application/octet-stream")},
                    )
                except httpx.TransportError:
                    if attempt >= self.max_retries:
                        raise
                    response = None
            if response is not None:
                if response.is_success:
                    return
                if attempt >= self.max_retries or response.status_code not in UPLOAD_RETRY_STATUSES:
                    raise UploadRejected(response.status_code, _s3_detail(response), response)
            self._sleep(self._backoff.delay(attempt, retry_after=None, rand=self._rand()))
            attempt += 1

    def report_lines(self, report_url: str, *, http: httpx.Client | None = None) -> Iterator[dict[str, Any]]:
        """The upload report, one dict per row, read lazily from its presigned GET URL (no API
        credentials sent). Raises UploadRejected when the bucket refuses (e.g. the URL expired)."""
        sender = http if http is not None else self._http
        with sender.stream("GET", report_url) as response:
            if not response.is_success:
                response.read()
                raise UploadRejected(response.status_code, _s3_detail(response), response)
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def wait_for_upload(
        self,
        upload_id: str,
        *,
        interval: float = DEFAULT_POLL_SECONDS,
        timeout: float | None = None,
        on_progress: Callable[[UploadOut], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> UploadOut:
        """get_upload until the upload is COMPLETED or FAILED (answered, not raised);
        on_progress(upload) after every answer. UploadTimeout after `timeout` seconds."""
        deadline = None if timeout is None else clock() + timeout
        while True:
            current = self.get_upload(upload_id)
            if on_progress is not None:
                on_progress(current)
            if current.status in FINAL_UPLOAD_STATUSES:
                return current
            wait = interval
            if deadline is not None:
                left = deadline - clock()
                if left <= 0:
                    raise UploadTimeout(current, timeout or 0.0)
                wait = min(wait, left)
            self._sleep(wait)
