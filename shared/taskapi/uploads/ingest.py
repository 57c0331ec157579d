"""Ingest: an uploaded file of tasks becomes tasks, in chunks of 100, through the same service
code as POST /api/tasks/bulk (so they are stored and queued exactly alike), with a report.

What holds, whatever S3 and SQS deliver:

- Only keys "uploads/<account_id>/<upload_id>" of the uploads bucket, for an upload that exists in
  that account, are ingested. Anything else is logged and ignored: never a task.
- One run at a time: a run claims the upload (PENDING -> PROCESSING, or PROCESSING whose lease has
  run out: the previous run crashed or timed out) and fences every later write with its claim. A
  duplicate delivery finds the upload final (and does nothing) or claimed (and leaves it to the
  holder, whose own message comes back if it fails). COMPLETED and FAILED are never redone.
- Re-delivery creates nothing twice: rows without a task_id get ids derived from (upload_id, row),
  so a second run finds the first run's tasks. A resumed run reports a task as "created" when an
  earlier run of this upload created it (it exists, was created by the uploader after the upload was
  first claimed and before this run began), so final counts are those of one uninterrupted run.
- Bounded memory: the object is streamed (taskapi.ingest reads 64 KiB at a time), one chunk
  of rows is held at a time, and the report is spooled to a temporary file before it is stored.
- Counts are written after every chunk (progress for GET /api/uploads/{id}). A file-level problem
  (not the declared format, not UTF-8, malformed JSON, bad CSV header) or the plan's ceiling of
  unfinished tasks stops the run: FAILED with the reason in `error`, and the report and counts of
  the rows done before it. An unexpected error releases the claim and propagates: the message is
  delivered again, and after the queue's maxReceiveCount the dead-letter handler fails the upload.

Report (reports/<account_id>/<upload_id>.jsonl): one JSON line per row,
{"row": n, "status": "created" | "existing" | "invalid", "task_id": ... | null, "errors": [...] | null}.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import IO, Any
from urllib.parse import unquote_plus

from taskapi.auth.api_keys import ApiKeyStore
from taskapi.auth.identity import plan_of
from taskapi.auth.principal import Principal
from taskapi.counting.store import CounterStore
from taskapi.errors import NotFound, TooManyRequests
from taskapi.generation.choice import ProviderPolicy
from taskapi.ingest.checks import check_jsonl_start
from taskapi.ingest.formats import parse_rows
from taskapi.ingest.json_document import read_json_settings
from taskapi.ingest.rows import FileInvalid, Readable, Row
from taskapi.models.domain import Task, isoformat, utc_now
from taskapi.models.requests import SharedVideoSettings, TaskCreate
from taskapi.observability import logger, metrics, tracer
from taskapi.queueing.queues import TaskQueue
from taskapi.services.tasks import Ceiling, create_tasks, held_tasks
from taskapi.settings import Settings, max_unfinished_tasks
from taskapi.store.base import TaskRepository
from taskapi.uploads.files import UploadFiles
from taskapi.uploads.model import Upload, UploadCounts, UploadStatus, parse_object_key, report_key
from taskapi.uploads.store import UploadStore

CHUNK_ROWS = 100
"""Rows per create_tasks call: the bulk endpoint's limit, one DynamoDB transaction."""
LEASE_SECONDS = 960
"""How long a claim holds: the ingest function's Timeout (900 s) and a margin. Another delivery may
take the upload over after it (the SQS visibility timeout, 5400 s, is longer still)."""
SPOOL_BYTES = 1024 * 1024
"""Report bytes kept in memory before the spool moves to a temporary file."""
MAX_ERROR_LENGTH = 1000
FORMAT_NAMES = {"jsonl": "JSON Lines", "json": "JSON", "csv": "CSV"}
DEAD_LETTER_ERROR = "ingest failed repeatedly"
NO_RUN_FINISHED = "the ingest function did not finish (it timed out or ran out of memory)"


class IngestOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    IGNORED = "ignored"
    """Not an upload of this service (another bucket or key, an unknown upload)."""
    DUPLICATE = "duplicate"
    """The upload is final already: a repeated or late delivery."""
    BUSY = "busy"
    """Another run holds the upload's claim."""
    SUPERSEDED = "superseded"
    """This run lost its claim halfway (taken over, or failed by the dead-letter handler)."""


@dataclass(frozen=True)
class IngestResult:
    outcome: IngestOutcome
    upload_id: str | None = None
    counts: UploadCounts = field(default_factory=UploadCounts)
    error: str | None = None


class _Superseded(Exception):
    pass


def _now() -> datetime:
    """Wall-clock time: a resumed run compares it with the created_at create_tasks stamps."""
    return utc_now()


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


class Ingestor:
    def __init__(
        self,
        *,
        uploads: UploadStore,
        files: UploadFiles,
        repository: TaskRepository,
        queue: TaskQueue,
        key_store: ApiKeyStore,
        settings: Settings,
        counters: CounterStore | None = None,
        on_final: Callable[[Upload], None] | None = None,
        lease_seconds: int = LEASE_SECONDS,
        chunk_rows: int = CHUNK_ROWS,
        spool_bytes: int = SPOOL_BYTES,
    ) -> None:
        self.counters = counters
        """Where the ceiling's held tasks are counted (None: by query)."""
        self.on_final = on_final
        """Told of every upload this ingest found or made final (upload.completed / upload.failed
        events, taskapi.webhooks.publish.UploadEventPublisher); it raises when it could not send,
        so the message comes back, finds the upload final and tells it again."""
        self.uploads = uploads
        self.files = files
        self.repository = repository
        self.queue = queue
        self.key_store = key_store
        self.settings = settings
        self.lease_seconds = lease_seconds
        self.chunk_rows = chunk_rows
        self.spool_bytes = spool_bytes

    # ------------------------------------------------------------------ entry points
    @tracer.capture_method(capture_response=False)
    def ingest(self, bucket: str, key: str, size: int | None = None) -> IngestResult:
        """Ingest the object an S3 ObjectCreated notification names (key URL-encoded, as S3 sends it)."""
        upload = self._upload_of(bucket, key)
        if upload is None:
            return IngestResult(IngestOutcome.IGNORED)
        if upload.is_final:
            logger.info("upload is final already: duplicate delivery", extra={"status": upload.status.value})
            self._tell_final(upload)
            return IngestResult(IngestOutcome.DUPLICATE, upload.upload_id, upload.counts, upload.error)
        started = _now()
        claim = uuid.uuid4().hex
        claimed = self.uploads.claim(
            upload.account_id,
            upload.upload_id,
            claim=claim,
            now=isoformat(started),
            lease_until=isoformat(started + timedelta(seconds=self.lease_seconds)),
        )
        if claimed is None:
            current = self.uploads.get(upload.account_id, upload.upload_id) or upload
            outcome = IngestOutcome.DUPLICATE if current.is_final else IngestOutcome.BUSY
            logger.info("upload not claimed", extra={"outcome": outcome.value, "status": current.status.value})
            return IngestResult(outcome, current.upload_id, current.counts, current.error)
        if claimed.started_at and claimed.started_at < isoformat(started):
            logger.info("resuming an upload whose previous run stopped", extra={"first_started_at": claimed.started_at})
        run = _Run(self, claimed, claim, run_started=isoformat(started), event_size=size)
        try:
            result = run.execute()
        except Exception as exc:
            self._release(claimed, claim, exc)
            raise
        if result.outcome in (IngestOutcome.COMPLETED, IngestOutcome.FAILED):
            self._tell_final(self.uploads.get(upload.account_id, upload.upload_id))
        return result

    @tracer.capture_method(capture_response=False)
    def fail_dead_lettered(self, bucket: str, key: str) -> IngestResult:
        """A notification that failed maxReceiveCount times: its upload ends FAILED, with the last
        run's error, unless it is final already."""
        upload = self._upload_of(bucket, key)
        if upload is None:
            return IngestResult(IngestOutcome.IGNORED)
        if upload.is_final:
            self._tell_final(upload)
            return IngestResult(IngestOutcome.DUPLICATE, upload.upload_id, upload.counts, upload.error)
        error = _short(f"{DEAD_LETTER_ERROR}: {upload.last_error or NO_RUN_FINISHED}")
        failed = self.uploads.fail(upload.account_id, upload.upload_id, error=error, now=isoformat(_now()))
        if failed is None:
            return IngestResult(IngestOutcome.DUPLICATE, upload.upload_id, upload.counts, upload.error)
        logger.warning("upload failed after repeated ingest failures", extra={"error": error})
        metrics.add_metric(name="UploadsFailed", unit="Count", value=1)
        self._tell_final(failed)
        return IngestResult(IngestOutcome.FAILED, failed.upload_id, failed.counts, error)

    # ------------------------------------------------------------------ helpers
    def _tell_final(self, upload: Upload | None) -> None:
        if self.on_final is not None and upload is not None and upload.is_final:
            self.on_final(upload)

    def _upload_of(self, bucket: str, raw_key: str) -> Upload | None:
        """The upload an event names, or None (logged) when it names none of ours."""
        key = unquote_plus(raw_key)
        expected_bucket = self.settings.uploads_bucket
        if bucket != expected_bucket:
            logger.warning("ignored: not the uploads bucket", extra={"bucket": bucket, "key": key[:300]})
            return None
        located = parse_object_key(key)
        if located is None:
            logger.warning("ignored: not an upload key (uploads/<account_id>/<upload_id>)", extra={"key": key[:300]})
            return None
        account_id, upload_id = located
        logger.append_keys(account_id=account_id, upload_id=upload_id)
        upload = self.uploads.get(account_id, upload_id)
        if upload is None:
            logger.warning("ignored: no such upload in the account", extra={"key": key})
        return upload

    def _release(self, upload: Upload, claim: str, exc: Exception) -> None:
        error = _short(f"{type(exc).__name__}: {exc}")
        logger.exception("ingest run raised; the claim is released for the next delivery")
        try:
            self.uploads.release(upload.account_id, upload.upload_id, claim=claim, now=isoformat(_now()), error=error)
        except Exception:  # the original error matters more; the lease runs out anyway
            logger.exception("the claim could not be released; it ends with its lease")


@dataclass
class _RowOutcome:
    row: int
    status: str
    task_id: str | None
    errors: Any = None

    def line(self) -> bytes:
        return (
            json.dumps(
                {"row": self.row, "status": self.status, "task_id": self.task_id, "errors": self.errors},
                separators=(",", ":"),
                ensure_ascii=False,
            )
            + "\n"
        ).encode()


@dataclass
class _Run:
    """One ingest run of one claimed upload."""

    ingestor: Ingestor
    upload: Upload
    claim: str
    run_started: str
    event_size: int | None
    counts: UploadCounts = field(default_factory=UploadCounts)

    @property
    def principal(self) -> Principal:
        return self.upload.principal()

    def execute(self) -> IngestResult:
        ing = self.ingestor
        key = report_key(self.upload.account_id, self.upload.upload_id)
        with tempfile.SpooledTemporaryFile(max_size=ing.spool_bytes, mode="w+b") as report:
            try:
                error = self._ingest_rows(report)
            except _Superseded:
                logger.warning("the upload's claim was lost halfway; this run stops", extra=self._extra())
                return IngestResult(IngestOutcome.SUPERSEDED, self.upload.upload_id, self.counts)
            report.seek(0)
            ing.files.put_report(key, report)
        status = UploadStatus.FAILED if error else UploadStatus.COMPLETED
        finished = ing.uploads.finish(
            self.upload.account_id,
            self.upload.upload_id,
            claim=self.claim,
            status=status,
            counts=self.counts,
            now=isoformat(_now()),
            error=error,
            report_key=key,
        )
        if not finished:
            logger.warning("the upload's claim was lost before it finished", extra=self._extra())
            return IngestResult(IngestOutcome.SUPERSEDED, self.upload.upload_id, self.counts)
        metrics.add_metric(name="UploadRows", unit="Count", value=self.counts.rows)
        metrics.add_metric(name="UploadRowsInvalid", unit="Count", value=self.counts.invalid)
        metrics.add_metric(name="IngestRowsPerSecond", unit="Count/Second", value=self._rows_per_second())
        if error:
            metrics.add_metric(name="UploadsFailed", unit="Count", value=1)
            logger.warning("upload failed", extra={**self._extra(), "error": error})
            return IngestResult(IngestOutcome.FAILED, self.upload.upload_id, self.counts, error)
        metrics.add_metric(name="UploadsCompleted", unit="Count", value=1)
        logger.info("upload completed", extra=self._extra())
        return IngestResult(IngestOutcome.COMPLETED, self.upload.upload_id, self.counts)

    def _rows_per_second(self) -> float:
        """Rows this run read per second of its wall time (claim to finish)."""
        started = datetime.fromisoformat(self.run_started.replace("Z", "+00:00"))
        elapsed = (_now() - started).total_seconds()
        return self.counts.rows / max(elapsed, 0.001)

    def _extra(self) -> dict[str, Any]:
        return {
            "rows": self.counts.rows,
            "created_count": self.counts.created,
            "existing_count": self.counts.existing,
            "invalid_count": self.counts.invalid,
        }

    def _ingest_rows(self, report: IO[bytes]) -> str | None:
        """Create the file's tasks and write the report lines; answers the file-level error, if any."""
        ing = self.ingestor
        limit = ing.settings.upload_max_bytes
        if self.event_size is not None and self.event_size > limit:
            return _too_large(self.event_size, limit)
        try:
            opened = ing.files.open(self.upload.object_key)
        except NotFound:
            return "The uploaded file is gone (deleted before it was read)"
        try:
            if opened.size > limit:
                return _too_large(opened.size, limit)
            if opened.size == 0:
                return "The file is empty"
            shared = self._shared_settings()
            body: Readable = opened.body
            if self.upload.format == "jsonl":
                body = check_jsonl_start(body)
            rows = parse_rows(body, self.upload.format, upload_id=self.upload.upload_id)
            room = _Room(ing.repository, self.principal, self._ceiling())
            for chunk in _chunks_until_invalid(rows, ing.chunk_rows):
                if isinstance(chunk, Exception):
                    raise chunk  # after the rows before it were created and reported
                self._create_and_report(chunk, shared, room, report)
        except FileInvalid as exc:
            return _short(f"The file cannot be read as {FORMAT_NAMES[self.upload.format]}: {exc.message}")
        except UnicodeDecodeError:
            return "The file is not valid UTF-8"
        except TooManyRequests as exc:
            return _short(f"Stopped after {self.counts.rows} rows: {exc.detail}")
        finally:
            opened.close()
        return None

    def _create_and_report(
        self, chunk: Sequence[Row], shared: SharedVideoSettings | None, room: _Room, report: IO[bytes]
    ) -> None:
        ing = self.ingestor
        outcomes = self._create(chunk, shared, room)
        for outcome in outcomes:
            report.write(outcome.line())
        self.counts = self.counts.plus(_count(outcomes))
        if not ing.uploads.record_progress(
            self.upload.account_id,
            self.upload.upload_id,
            claim=self.claim,
            counts=self.counts,
            now=isoformat(_now()),
        ):
            raise _Superseded

    def _shared_settings(self) -> SharedVideoSettings | None:
        """JSON documents carry shared video settings, possibly after the tasks: a first pass reads
        them (so a malformed document fails here, before any task is created)."""
        if self.upload.format != "json":
            return None
        first_pass = self.ingestor.files.open(self.upload.object_key)
        try:
            return read_json_settings(first_pass.body)
        finally:
            first_pass.close()

    def _ceiling(self) -> Ceiling:
        ing = self.ingestor
        plan = plan_of(self.principal, ing.key_store, ing.settings)
        return Ceiling(
            max_unfinished_tasks(ing.settings, plan), ing.settings.ceiling_retry_after_seconds, counters=ing.counters
        )

    def _create(self, chunk: Sequence[Row], shared: SharedVideoSettings | None, room: _Room) -> list[_RowOutcome]:
        """Create the chunk's valid rows (one create_tasks call) and answer each row's outcome."""
        group = self.upload.task_source_group_id
        providers = ProviderPolicy.from_settings(self.ingestor.settings)
        first_row: dict[str, int] = {}
        specs: list[TaskCreate] = []
        refused: dict[int, str] = {}
        for row in chunk:
            if row.task is None or row.task_id is None:
                continue
            refusal = providers.refusal(row.task.task_type.value, row.task.request_data_dict())
            if refusal is not None:
                refused[row.row] = refusal
                continue
            if row.task_id in first_row:
                continue  # the same id twice in one chunk: one DynamoDB transaction cannot write it twice
            first_row[row.task_id] = row.row
            task = row.task
            if group is not None and task.task_source_group_id is None:
                task = task.model_copy(update={"task_source_group_id": group})
            specs.append(task)
        created_ids: set[str] = set()
        stored: dict[str, Task] = {}
        if specs:
            room.reserve([spec.task_id for spec in specs if spec.task_id is not None])
            creation = create_tasks(self.ingestor.repository, self.ingestor.queue, self.principal, specs, shared=shared)
            created_ids = set(creation.created)
            stored = {task.task_id: task for task in creation.tasks}
            room.consume(len(created_ids))
        outcomes = []
        for row in chunk:
            if row.task_id is None:
                outcomes.append(_RowOutcome(row.row, "invalid", None, row.errors))
                continue
            if row.row in refused:
                problem = {"field": "request_data.provider", "message": refused[row.row]}
                outcomes.append(_RowOutcome(row.row, "invalid", row.task_id, [problem]))
                continue
            ours = first_row[row.task_id] == row.row and (
                row.task_id in created_ids or self._created_by_earlier_run(stored.get(row.task_id))
            )
            outcomes.append(_RowOutcome(row.row, "created" if ours else "existing", row.task_id))
        return outcomes

    def _created_by_earlier_run(self, task: Task | None) -> bool:
        """An existing task that an interrupted run of this upload created: made by the uploader
        after the upload was first claimed and before this run began."""
        first = self.upload.started_at
        if task is None or first is None or first >= self.run_started:
            return False
        return task.user_id == self.upload.user_id and first <= task.created_at < self.run_started


def _chunks_until_invalid(rows: Iterator[Row], size: int) -> Iterator[list[Row] | FileInvalid | UnicodeDecodeError]:
    """taskapi.ingest.rows.chunks, except that a file-level error ends the chunks with the rows
    read before it (a last, shorter chunk), then the error itself."""
    chunk: list[Row] = []
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except (FileInvalid, UnicodeDecodeError) as exc:
            if chunk:
                yield chunk
            yield exc
            return
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _too_large(size: int, limit: int) -> str:
    return f"The file is {size} bytes; an upload may be at most {limit} bytes"


def _count(outcomes: Iterable[_RowOutcome]) -> UploadCounts:
    statuses = [outcome.status for outcome in outcomes]
    return UploadCounts(
        created=statuses.count("created"), existing=statuses.count("existing"), invalid=statuses.count("invalid")
    )


class _Room:
    """The plan's ceiling of unfinished tasks, applied chunk by chunk: counted once, then spent
    locally by the tasks this run creates, and counted again only when it seems used up (tasks
    may have finished meanwhile). Like the bulk endpoint's check, concurrent requests may overshoot
    it by their own tasks, and a count from the counters misses the tasks of the last seconds."""

    def __init__(self, repository: TaskRepository, principal: Principal, ceiling: Ceiling) -> None:
        self._repository = repository
        self._principal = principal
        self._ceiling = ceiling
        self._left: int | None = None

    def reserve(self, task_ids: list[str]) -> None:
        needed = len(task_ids)
        if self._left is None or self._left < needed:
            unfinished = held_tasks(
                self._repository, self._principal.account_id, self._ceiling, at_most=self._ceiling.max_unfinished + 1
            )
            self._left = self._ceiling.max_unfinished - unfinished
        if self._left < needed:
            # Tasks that exist already take no room (a resumed run finds its own tasks).
            needed -= len(self._repository.get_many(self._principal.account_id, task_ids))
        if self._left < needed:
            metrics.add_metric(name="CeilingRefusals", unit="Count", value=1)
            raise TooManyRequests(
                f"account {self._principal.account_id} may hold at most {self._ceiling.max_unfinished} "
                f"unfinished tasks (PENDING, QUEUED or PROCESSING) on its plan; the next {needed} would exceed "
                "it. Upload the remaining rows again when some tasks have finished.",
                retry_after_seconds=self._ceiling.retry_after_seconds,
            )

    def consume(self, created: int) -> None:
        if self._left is not None:
            self._left -= created
