"""The rows of an uploaded file of tasks and what every format shares: the limits, the file-level
error, validation into a :class:`Row`, derived task ids and chunks. No I/O of its own.

:func:`taskapi.ingest.formats.parse_rows` yields one :class:`Row` per task of the file, valid or
not, whatever the format (taskapi.ingest.formats describes each).

Validation is the API's own: :data:`TaskCreate` through a TypeAdapter. Errors are a list of
``{"field": "request_data.story_prompt", "message": "Field required"}``; ``field`` is None for a
problem with the row as a whole (not JSON, not an object, too long, wrong number of cells).

A valid row without a task_id gets :func:`derived_task_id` (``upload_id``, row), so processing the
same upload again creates nothing twice. Ids are not checked for uniqueness across the file (that
would hold every id in memory): a task_id given twice is created once, and the second row is
answered with the stored task, like a repeated bulk request. Within one chunk the caller must not
pass the same id twice to ``create_tasks`` (one DynamoDB transaction cannot write an item twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypedDict

from pydantic import TypeAdapter, ValidationError

from taskapi.errors import InvalidRequest
from taskapi.models.domain import TaskType
from taskapi.models.requests import TaskCreate

MAX_ROW_BYTES: Final = 256 * 1024
"""Longest JSON Lines line (bytes before its newline), task object of a JSON document (bytes; one up
to READ_SIZE larger may pass), or CSV record (characters)."""
READ_SIZE: Final = 64 * 1024
"""Bytes asked of the stream per read."""

INGEST_NAMESPACE: Final = uuid.UUID("ca14bfdf-d8db-49d1-818a-62b1c1dc1a46")
"""Namespace of derived task ids. Never change it: ids of uploads processed again would change."""

REQUEST_DATA: Final = "request_data"
TASK_TYPES: Final = frozenset(str(t) for t in TaskType)
"""The task_type tags of the TaskCreate union."""


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class RowError(TypedDict):
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Row:
    """One task of the file. Valid: ``task`` (with ``task_id`` set, given or derived) and
    ``task_id``; ``errors`` None. Invalid: ``task`` and ``task_id`` None, ``errors`` not empty."""

    row: int
    task: TaskCreate | None
    errors: list[RowError] | None
    task_id: str | None

    @property
    def ok(self) -> bool:
        return self.task is not None


class FileInvalid(InvalidRequest):
    """The file as a whole cannot be read: nothing after the problem is parsed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def derived_task_id(upload_id: str, row: int) -> str:
    """The task id of row ``row`` of upload ``upload_id`` when the row names none: a UUID5, the
    same on every run. ``upload_id`` should name one version of one object."""
    return str(uuid.uuid5(INGEST_NAMESPACE, f"{upload_id}:{row}"))


def chunks(rows: Iterable[Row], size: int = 100) -> Iterator[list[Row]]:
    """Consecutive rows, ``size`` at a time (the last chunk may be shorter), valid and invalid
    together."""
    if size < 1:
        raise ValueError("size must be at least 1")
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------------------------ validation

_TASK: TypeAdapter[TaskCreate] = TypeAdapter(TaskCreate)


def errors_of(exc: ValidationError) -> list[RowError]:
    """pydantic's errors as the API reports them (loc and msg, never the input), with the loc
    joined by dots and the union's tag ("video") left out."""
    found: list[RowError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        if loc and loc[0] in TASK_TYPES:
            loc = loc[1:]
        field: str | None = ".".join(str(part) for part in loc) or None
        if field is None and error["type"].startswith("union_tag"):
            field = "task_type"
        elif field is None and error["type"].startswith("request_data_"):
            field = REQUEST_DATA
        found.append({"field": field, "message": error["msg"]})
    return found


def invalid_row(row: int, message: str, field: str | None = None) -> Row:
    return Row(row=row, task=None, errors=[{"field": field, "message": message}], task_id=None)


def validate_row(row: int, body: Any, upload_id: str, errors: list[RowError] | None = None) -> Row:
    """``errors``: problems found before validation (the row is invalid whatever pydantic says)."""
    try:
        task = _TASK.validate_python(body)
    except ValidationError as exc:
        return Row(row=row, task=None, errors=[*(errors or []), *errors_of(exc)], task_id=None)
    if errors:
        return Row(row=row, task=None, errors=errors, task_id=None)
    if task.task_id is None:
        task = task.model_copy(update={"task_id": derived_task_id(upload_id, row)})
    return Row(row=row, task=task, errors=None, task_id=task.task_id)
