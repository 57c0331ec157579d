"""What happened, as events: derived from a stream record of the tasks table (a task's old and new
images), of the counters table (a group's counter) or from an upload that became final. Pure:
no I/O but presigning a result URL (which makes no AWS call); taskapi.webhooks.publish stores and
sends what this answers.

Every event's id depends only on the change itself (account, subject, sequence, type and its
created_at: taskapi.webhooks.models.event_id_for), so a replayed stream batch derives the very
same events and the event store finds them stored already.

Task events (subject: task_id, sequence: the task's version, created_at: its updated_at):
- task.queued / task.completed / task.failed / task.cancelled: the task entered that status (from
  another status, or in another attempt: a regenerate);
- task.started: the task entered PROCESSING, or was claimed again (a new state_since: a reclaim
  after a lease ran out counts once per claim);
- task.progress: progress (or its message) changed within one claim, and this write is the first
  one of the task in its PROGRESS_WINDOW_SECONDS window of the clock (windows start at multiples
  of 5 s since the epoch): at most one per task per window, decided from the two images alone.
group.completed (subject: the group id, sequence: the counter's rev): a group counter whose open
tasks (PENDING, QUEUED, PROCESSING) went from some to none, with tasks in it; a regenerate reopens
the group, and its next completion is another event (another rev).
upload.completed / upload.failed (subject: upload_id, sequence 1: an upload is final once).

Bodies are under MAX_BODY_BYTES: a larger task object goes without request_data (then without its
result_summary, error_details and events; last, without any field over 1 KB) and with
"truncated": true in data."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from taskapi.counting.apply import Change
from taskapi.counting.contributions import OPEN_STATUSES, STATUSES
from taskapi.counting.store import CounterKey, item_to_counts
from taskapi.models.domain import Task, TaskStatus
from taskapi.models.responses import TaskOut
from taskapi.models.uploads import UploadOut
from taskapi.observability import logger
from taskapi.results import ResultStore
from taskapi.store.dynamodb import item_to_task
from taskapi.uploads.model import Upload, UploadStatus
from taskapi.webhooks.models import StoredEvent, event_id_for, parse_time

MAX_BODY_BYTES = 64 * 1024
"""A body is at most this long minus one byte (the receivers' limit is 64 KB)."""
PROGRESS_WINDOW_SECONDS = 5
TASK_STATUS_EVENTS: dict[TaskStatus, str] = {
    TaskStatus.QUEUED: "task.queued",
    TaskStatus.PROCESSING: "task.started",
    TaskStatus.COMPLETED: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}
UPLOAD_EVENTS: dict[UploadStatus, str] = {
    UploadStatus.COMPLETED: "upload.completed",
    UploadStatus.FAILED: "upload.failed",
}
TRUNCATED_FIELDS = ("request_data", "result_summary", "error_details", "events")
"""Dropped in this order from a task object until its body fits."""
UPLOAD_SEQUENCE = 1
SHORT_FIELD_BYTES = 1024
"""The last resort for a body still too long: data keeps only fields this short."""


# ---------------------------------------------------------------------- bodies
def _dump(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _fits(body: str) -> bool:
    return len(body.encode()) < MAX_BODY_BYTES


def _short_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in data.items() if len(_dump({name: value})) <= SHORT_FIELD_BYTES}


def make_event(
    *,
    account_id: str,
    type: str,
    subject: str,
    sequence: int,
    created_at: str,
    data: dict[str, Any],
    group_id: str | None = None,
    task_id: str | None = None,
    shrinkable: Sequence[str] = (),
) -> StoredEvent:
    """The stored event with its body: {id, type, created_at, account_id, data, sequence,
    group_id}. While the body is too long, the `shrinkable` fields of data are dropped in order
    (data then says "truncated": true); if that is not enough, every field longer than 1 KB."""
    event_id = event_id_for(account_id, subject, sequence, type, created_at)
    payload: dict[str, Any] = {
        "id": event_id,
        "type": type,
        "created_at": created_at,
        "account_id": account_id,
        "data": data,
        "sequence": sequence,
        "group_id": group_id,
    }
    body = _dump(payload)
    for name in shrinkable:
        if _fits(body):
            break
        data = {**{k: v for k, v in data.items() if k != name}, "truncated": True}
        payload["data"] = data
        body = _dump(payload)
    if not _fits(body):  # still too long: only the short fields (never raise: the stream would stall)
        payload["data"] = {**_short_fields(data), "truncated": True}
        body = _dump(payload)
    return StoredEvent(
        account_id=account_id,
        event_id=event_id,
        type=type,
        created_at=created_at,
        body=body,
        task_id=task_id,
        group_id=group_id,
    )


# ---------------------------------------------------------------------- tasks
def _window(moment: str) -> int:
    return int(parse_time(moment).timestamp() // PROGRESS_WINDOW_SECONDS)


def task_event_type(old: Task | None, new: Task) -> str | None:
    """The event a write of a task makes, or None (a write that is no transition: a note, a
    priority change, progress within the same window)."""
    entered = TASK_STATUS_EVENTS.get(new.status)
    if old is None:
        return entered
    if entered is not None and (old.status is not new.status or old.attempt != new.attempt):
        return entered
    if new.status is not TaskStatus.PROCESSING or old.attempt != new.attempt:
        return None
    if old.state_since != new.state_since:
        return entered  # claimed again: a redelivery took it over after the lease ran out
    moved = old.progress != new.progress or old.progress_message != new.progress_message
    if moved and _window(new.updated_at) != _window(old.updated_at):
        return "task.progress"
    return None


def task_event(old: Task | None, new: Task, results: ResultStore | None) -> StoredEvent | None:
    type_ = task_event_type(old, new)
    if type_ is None:
        return None
    url = results.url(new.result_key) if results is not None and new.result_key else None
    if new.status is not TaskStatus.COMPLETED:
        url = None  # a regenerated task keeps its old result_key until it completes again
    data = TaskOut.from_task(new, result_url=url).model_dump(mode="json")
    return make_event(
        account_id=new.account_id,
        type=type_,
        subject=new.task_id,
        sequence=new.version,
        created_at=new.updated_at,
        data=data,
        group_id=new.task_source_group_id,
        task_id=new.task_id,
        shrinkable=TRUNCATED_FIELDS,
    )


def _task_of(image: Mapping[str, Any] | None) -> Task | None:
    if not image:
        return None
    try:
        return item_to_task(dict(image))
    except (KeyError, TypeError, ValueError):
        return None


def task_change_event(change: Change, results: ResultStore | None) -> StoredEvent | None:
    """The event of one record of the tasks table's stream; None for a removal, a write that is no
    transition, or an item that is not a task (logged by key only)."""
    new = _task_of(change.new_image)
    if new is None:
        if change.new_image:
            logger.warning("stream record is not a task: no event", extra={"stream_event_id": change.event_id})
        return None
    return task_event(_task_of(change.old_image), new, results)


# ---------------------------------------------------------------------- groups
def _text(image: Mapping[str, Any], name: str) -> str | None:
    value = image.get(name)
    return str(value["S"]) if isinstance(value, Mapping) and isinstance(value.get("S"), str) else None


def group_change_event(change: Change) -> StoredEvent | None:
    """group.completed when this write of a group counter closed its last open task; else None."""
    new_image = change.new_image
    if not new_image:
        return None
    key_text = _text(new_image, "counter_key")
    key = CounterKey.parse(key_text) if key_text else None
    if key is None or key.kind != "G" or key.value is None:
        return None
    new = item_to_counts(new_image)
    old = item_to_counts(change.old_image or {})
    total = new.total(STATUSES)
    if new.total(OPEN_STATUSES) != 0 or total <= 0:
        return None
    if change.old_image and old.total(OPEN_STATUSES) <= 0:
        return None  # it was closed already: a write that moved final tasks only
    stamps = [s for s in (new.changed_at, _text(new_image, "repaired_at")) if s]
    if not stamps:
        logger.warning("group counter without changed_at: no event", extra={"stream_event_id": change.event_id})
        return None
    created_at = max(stamps, key=lambda stamp: parse_time(stamp))
    data = {"group_id": key.value, "counts": {status: new.of(status) for status in STATUSES}, "total": total}
    return make_event(
        account_id=key.account_id,
        type="group.completed",
        subject=key.value,
        sequence=new.rev,
        created_at=created_at,
        data=data,
        group_id=key.value,
    )


# ---------------------------------------------------------------------- uploads
def upload_event(upload: Upload, report_url: str | None = None) -> StoredEvent | None:
    """upload.completed / upload.failed of a final upload (data as GET /api/uploads/{id} answers
    it); None while it is not final. created_at: the upload's updated_at, which no write changes
    once it is final, so a second call makes the same event."""
    type_ = UPLOAD_EVENTS.get(upload.status)
    if type_ is None:
        return None
    data = UploadOut.from_upload(upload, report_url=report_url).model_dump(mode="json")
    return make_event(
        account_id=upload.account_id,
        type=type_,
        subject=upload.upload_id,
        sequence=UPLOAD_SEQUENCE,
        created_at=upload.updated_at,
        data=data,
        group_id=upload.task_source_group_id,
    )


# ---------------------------------------------------------------------- stream batches
def table_of(event_source_arn: str) -> str:
    """The table name in a stream ARN (arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<ts>)."""
    _, _, rest = event_source_arn.partition(":table/")
    return rest.split("/", 1)[0]


def events_of_records(
    records: Sequence[Mapping[str, Any]],
    *,
    tasks_table: str,
    counters_table: str,
    results: ResultStore | None,
) -> list[StoredEvent]:
    """The events of a stream batch, in record order. A record of another table is skipped with a
    warning (a mapping this function was not meant for)."""
    found: list[StoredEvent] = []
    for record in records:
        table = table_of(str(record.get("eventSourceARN", "")))
        change = Change.from_record(record)
        if table == tasks_table:
            event = task_change_event(change, results)
        elif table == counters_table:
            event = group_change_event(change)
        else:
            logger.warning("stream record of an unexpected table: skipped", extra={"table": table})
            continue
        if event is not None:
            found.append(event)
    return found
