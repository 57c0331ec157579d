"""Ingest holds one chunk at a time: a file far larger than the memory it is allowed is streamed
from a body that makes its bytes on demand, created through stores that keep nothing, and its
report spooled to a temporary file; the peak Python allocation stays bounded."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator, Sequence
from typing import IO

from taskapi.models.domain import Task
from taskapi.settings import Settings
from taskapi.store.base import InsertResult
from taskapi.uploads.files import UploadedFile
from taskapi.uploads.ingest import IngestOutcome
from taskapi.uploads.model import UploadCounts
from tests import factories
from tests.fakes import Fakes
from tests.unit.ingest.support import GeneratedStream
from tests.unit.uploads.support import BUCKET, event_key, ingestor, start

ROWS = 6_000
SPOOL = 64 * 1024
PEAK_LIMIT = 4 * 1024 * 1024


class ForgetfulRepository:
    """Creates every task and keeps none (the bulk path's calls, without the memory of a fake)."""

    def __init__(self) -> None:
        self.created = 0

    def insert_new(self, tasks: Sequence[Task]) -> InsertResult:
        self.created += len(tasks)
        return InsertResult(created={task.task_id: task for task in tasks})

    def save_many(self, changes: Sequence[tuple[Task, int]]) -> dict[str, Task]:
        return {task.task_id: task.model_copy(update={"version": version + 1}) for task, version in changes}

    def count(self, account_id, filters, *, at_most=None) -> int:
        return 0

    def get_many(self, account_id, task_ids) -> dict[str, Task]:
        return {}


class ForgetfulQueue:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, messages, *, delay_seconds: int = 0) -> dict[int, str]:
        self.sent += len(messages)
        return {}


class GeneratedFiles:
    """The bucket: the upload's body is generated as it is read; the report is counted, not kept."""

    def __init__(self, body: GeneratedStream, size: int) -> None:
        self.body = body
        self.size = size
        self.report_lines = 0
        self.report_bytes = 0
        self.report_spilled = False

    def open(self, key: str) -> UploadedFile:
        return UploadedFile(body=self.body, size=self.size)

    def put_report(self, key: str, report: IO[bytes]) -> None:
        self.report_spilled = bool(getattr(report, "_rolled", False))  # SpooledTemporaryFile moved to disk
        while chunk := report.read(64 * 1024):
            self.report_lines += chunk.count(b"\n")
            self.report_bytes += len(chunk)

    def presign_post(self, key, *, max_bytes, expires_in):  # pragma: no cover - not used here
        raise NotImplementedError

    def url(self, key: str) -> str:  # pragma: no cover - not used here
        return key


def lines(count: int) -> Iterator[bytes]:
    for number in range(count):
        yield json.dumps(factories.documentation(request_data={"story_prompt": f"Lesson {number} " * 200})).encode()
        yield b"\n"


def test_a_large_upload_is_ingested_in_bounded_memory():
    fakes = Fakes()
    upload = start(fakes)
    size = sum(len(piece) for piece in lines(ROWS))
    files = GeneratedFiles(GeneratedStream(lines(ROWS)), size)
    repository, queue = ForgetfulRepository(), ForgetfulQueue()
    service = ingestor(fakes, files=files, repository=repository, queue=queue, settings=Settings(), spool_bytes=SPOOL)

    tracemalloc.start()
    try:
        result = service.ingest(BUCKET, event_key(upload.object_key), size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result.outcome is IngestOutcome.COMPLETED
    assert result.counts == UploadCounts(created=ROWS)
    assert (repository.created, queue.sent, files.report_lines) == (ROWS, ROWS, ROWS)
    assert size > 3 * PEAK_LIMIT
    assert files.report_bytes > SPOOL
    assert files.report_spilled, "the report moved to a temporary file once it outgrew the spool"
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"
