"""Rows of an uploaded file of tasks: streamed, parsed and validated, without I/O of its own.

The ingest Lambda hands over the body of an S3 object (anything with ``read(n)`` returning bytes)
and gets back an iterator of :class:`Row`, one per task of the file, valid or not::

    settings = read_json_settings(open_body())  # JSON only: a first pass over the document
    for chunk in chunks(parse_rows(open_body(), UploadFormat.JSON, upload_id=upload_id)):
        valid = [row.task for row in chunk if row.task is not None]
        ...  # create_tasks(repository, queue, principal, valid, shared=settings); report row.errors

Memory stays bounded whatever the size of the file: the stream is read in chunks of
``READ_SIZE`` bytes and at most one row is held at a time. A row is limited to
``MAX_ROW_BYTES`` (a JSON Lines line, a task object of the JSON document, a CSV record).

Formats (:class:`UploadFormat`), each UTF-8 with or without a byte order mark:

``jsonl``
    One task object per line, shaped like an item of the bulk body. Blank lines are skipped, but
    row numbers count physical lines (1-based). A line that is not JSON, not an object, longer than
    ``MAX_ROW_BYTES`` or invalid is an invalid row; the lines after it are parsed as usual.
``json``
    The bulk body itself, without its limit of 100 tasks:
    ``{"tasks": [...], "logo_url": ..., "intro_video_url": ..., "outro_video_url": ...}``. The row
    number is the index in ``tasks`` plus one. The shared video settings may come after the tasks,
    so :func:`read_json_settings` reads them in a pass of their own (open the object twice).
    A document that is not such an object, or is malformed or truncated, raises
    :class:`FileInvalid` when the parser reaches the problem: rows yielded before stay yielded.
``csv``
    A header row, then one task per record. Columns: ``task_id``, ``task_type`` (required),
    ``priority``, ``task_source_name``, ``task_source_id``, ``task_source_group_id``, and the
    request data either as one ``request_data`` column holding a JSON object or as
    ``request_data.<field>`` columns (not both). Unknown, duplicate or missing-required columns
    raise :class:`FileInvalid`. The row number is the record's index after the header (1-based;
    records whose cells are all blank are skipped but counted). See :data:`CSV_RULES` for how cells
    become values.

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

import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Final, Protocol, TypedDict, get_args

import ijson
from pydantic import BaseModel, TypeAdapter, ValidationError

from taskapi.errors import InvalidRequest
from taskapi.models.domain import TaskType
from taskapi.models.requests import SharedVideoSettings, TaskCreate

MAX_ROW_BYTES: Final = 256 * 1024
"""Longest JSON Lines line (bytes before its newline), task object of a JSON document (bytes; one up
to READ_SIZE larger may pass), or CSV record (characters)."""
READ_SIZE: Final = 64 * 1024
"""Bytes asked of the stream per read."""
MAX_TOKEN_BYTES: Final = 4 * MAX_ROW_BYTES
"""JSON documents: the parser buffers a whole string or number, so the document may not go on for
longer than this without completing one (a file-level error)."""

INGEST_NAMESPACE: Final = uuid.UUID("ca14bfdf-d8db-49d1-818a-62b1c1dc1a46")
"""Namespace of derived task ids. Never change it: ids of uploads processed again would change."""

COLUMNS: Final = (
    "task_id",
    "task_type",
    "priority",
    "task_source_name",
    "task_source_id",
    "task_source_group_id",
    "request_data",
)
REQUEST_DATA: Final = "request_data"
REQUEST_DATA_PREFIX: Final = "request_data."
CSV_RULES: Final = """\
An empty cell means the field is absent (a row whose request_data.<field> cells are all empty has
no request_data). Other cells are strings, except:
- request_data: a JSON object.
- request_data.<field>, where the task type's model accepts a non-string value for <field>: the
  cell is decoded as JSON and the decoded value is used if it is of a type the model accepts
  (5 for num_questions, 1.5 for voice_rate, ["multiple_choice", "true_false"] for question_types);
  booleans may be written true/false in any case (TRUE from spreadsheets). Anything else stays a
  string, so "maximum" is kept for segments and "five" is reported by validation as not an integer.
Fields the model does not know (request data passes them through) stay strings."""


class UploadFormat(StrEnum):
    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"

    @classmethod
    def for_key(cls, key: str) -> UploadFormat | None:
        """The format named by an object key's extension (.jsonl/.ndjson, .json, .csv), if any."""
        suffix = key.rsplit(".", 1)[-1].lower() if "." in key else ""
        return {"jsonl": cls.JSONL, "ndjson": cls.JSONL, "json": cls.JSON, "csv": cls.CSV}.get(suffix)


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


def parse_rows(stream: Readable, upload_format: UploadFormat | str, *, upload_id: str) -> Iterator[Row]:
    """Every row of the file, in order. Raises FileInvalid (while iterating) for a file-level
    problem; the rows before it have been yielded."""
    parse = {UploadFormat.JSONL: _jsonl, UploadFormat.JSON: _json, UploadFormat.CSV: _csv}[UploadFormat(upload_format)]
    return parse(_Source(stream), upload_id)


def read_json_settings(stream: Readable) -> SharedVideoSettings:
    """The shared video settings of a JSON document, read in a streaming pass that skips the tasks.
    Raises FileInvalid as parse_rows would, and for settings that do not validate."""
    source = _Source(stream)
    found: dict[str, Any] = {}
    for kind, key, value in _json_document(source, build=False):
        if kind == "setting":
            found[key] = value
    try:
        return SharedVideoSettings.model_validate(found)
    except ValidationError as exc:
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in _errors_of(exc))
        raise FileInvalid(f"invalid shared video settings: {problems}") from None


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
_TAGS: Final = frozenset(str(t) for t in TaskType)


def _errors_of(exc: ValidationError) -> list[RowError]:
    """pydantic's errors as the API reports them (loc and msg, never the input), with the loc
    joined by dots and the union's tag ("video") left out."""
    found: list[RowError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        if loc and loc[0] in _TAGS:
            loc = loc[1:]
        field: str | None = ".".join(str(part) for part in loc) or None
        if field is None and error["type"].startswith("union_tag"):
            field = "task_type"
        elif field is None and error["type"].startswith("request_data_"):
            field = REQUEST_DATA
        found.append({"field": field, "message": error["msg"]})
    return found


def _invalid(row: int, message: str, field: str | None = None) -> Row:
    return Row(row=row, task=None, errors=[{"field": field, "message": message}], task_id=None)


def _validate(row: int, body: Any, upload_id: str, errors: list[RowError] | None = None) -> Row:
    """``errors``: problems found before validation (the row is invalid whatever pydantic says)."""
    try:
        task = _TASK.validate_python(body)
    except ValidationError as exc:
        return Row(row=row, task=None, errors=[*(errors or []), *_errors_of(exc)], task_id=None)
    if errors:
        return Row(row=row, task=None, errors=errors, task_id=None)
    if task.task_id is None:
        task = task.model_copy(update={"task_id": derived_task_id(upload_id, row)})
    return Row(row=row, task=task, errors=None, task_id=task.task_id)


# ------------------------------------------------------------------ the byte stream

_BOM: Final = b"\xef\xbb\xbf"


class _Source(io.RawIOBase):
    """Anything with read(n) as a raw binary stream: drops a leading UTF-8 byte order mark and
    counts the bytes handed on. With ``token_limit`` set, it answers end of file once that many
    bytes have been read since the last ``mark()`` (and says so in ``overrun``)."""

    def __init__(self, stream: Readable) -> None:
        super().__init__()
        self._stream = stream
        self._pending = b""
        self._started = False
        self.consumed = 0
        self._mark = 0
        self.token_limit: int | None = None
        self.overrun = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.chunk(len(view))
        view[: len(data)] = data
        return len(data)

    def mark(self) -> None:
        self._mark = self.consumed

    def chunk(self, size: int = READ_SIZE) -> bytes:
        """Up to ``size`` bytes; b"" only at the end."""
        if not self._started:
            self._started = True
            head = b""
            while len(head) < len(_BOM):
                more = self._stream.read(READ_SIZE)
                if not more:
                    break
                head += more
            self._pending = head.removeprefix(_BOM)
        if self.token_limit is not None and self.consumed - self._mark > self.token_limit:
            self.overrun = True
            return b""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
        else:
            data = bytes(self._stream.read(size))
            if len(data) > size:
                data, self._pending = data[:size], data[size:]
        self.consumed += len(data)
        return data


# ------------------------------------------------------------------ JSON Lines


def _lines(source: _Source) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without its newline) for every physical line; None for a line longer
    than MAX_ROW_BYTES, whose bytes are dropped as they arrive."""
    number = 0
    pending = bytearray()
    too_long = False
    while chunk := source.chunk():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            number += 1
            if not too_long:
                pending += chunk[start:end]
                too_long = len(pending) > MAX_ROW_BYTES
            yield number, None if too_long else bytes(pending)
            pending.clear()
            too_long = False
            start = end + 1
        if not too_long:
            pending += chunk[start:]
            if len(pending) > MAX_ROW_BYTES:
                too_long = True
                pending.clear()
    if too_long or pending:
        yield number + 1, None if too_long else bytes(pending)


def _jsonl(source: _Source, upload_id: str) -> Iterator[Row]:
    for number, line in _lines(source):
        if line is None:
            yield _invalid(number, f"line is longer than {MAX_ROW_BYTES} bytes")
            continue
        if not line.strip():
            continue
        try:
            body = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            yield _invalid(number, "line is not valid UTF-8")
            continue
        except json.JSONDecodeError as exc:
            yield _invalid(number, f"line is not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(body, dict):
            yield _invalid(number, "line is not a JSON object")
            continue
        yield _validate(number, body, upload_id)


# ------------------------------------------------------------------ JSON

_SETTINGS: Final = tuple(SharedVideoSettings.model_fields)
_NOT_BULK: Final = 'the document is not a JSON object with a "tasks" array'
_TOO_LARGE: Final = object()
_NOT_OBJECT: Final = object()
_OPEN: Final = frozenset({"start_map", "start_array"})
_CLOSE: Final = frozenset({"end_map", "end_array"})


def _json(source: _Source, upload_id: str) -> Iterator[Row]:
    for kind, index, value in _json_document(source, build=True):
        if kind != "task":
            continue
        if value is _TOO_LARGE:
            yield _invalid(index, f"task is larger than {MAX_ROW_BYTES} bytes")
        elif value is _NOT_OBJECT:
            yield _invalid(index, "task is not a JSON object")
        else:
            yield _validate(index, value, upload_id)


def _json_document(source: _Source, *, build: bool) -> Iterator[tuple[str, Any, Any]]:
    """("task", row number, object or _TOO_LARGE or _NOT_OBJECT) for each item of tasks (the
    object is None unless ``build``), and ("setting", key, value) for each settings key (a
    container value is replaced by an empty one, for validation to reject)."""
    source.token_limit = MAX_TOKEN_BYTES
    events = iter(ijson.parse(source, buf_size=READ_SIZE, use_float=True))
    try:
        yield from _json_events(events, source, build)
        for _ in events:  # only the check for trailing data is left
            pass
    except ijson.JSONError as exc:
        if source.overrun:
            raise FileInvalid(f"the document has a JSON value longer than {MAX_TOKEN_BYTES} bytes") from None
        raise FileInvalid(f"the document is not valid JSON: {_ijson_message(exc)}") from None


def _ijson_message(exc: Exception) -> str:
    """The first line of ijson's message (the rest quotes the input)."""
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def _next(events: Iterator[tuple[str, str, Any]], source: _Source) -> tuple[str, Any]:
    try:
        _, event, value = next(events)
    except StopIteration:  # ijson raises first; this is a safety net
        raise FileInvalid("the document ends too early") from None
    source.mark()
    return event, value


def _skip(events: Iterator[tuple[str, str, Any]], source: _Source) -> None:
    depth = 1
    while depth:
        event, _ = _next(events, source)
        depth += (event in _OPEN) - (event in _CLOSE)


def _json_events(
    events: Iterator[tuple[str, str, Any]], source: _Source, build: bool
) -> Iterator[tuple[str, Any, Any]]:
    event, _ = _next(events, source)
    if event != "start_map":
        raise FileInvalid(_NOT_BULK)
    seen: set[str] = set()
    while True:
        event, key = _next(events, source)
        if event == "end_map":
            break
        if key in seen:
            raise FileInvalid(f'the document has the key "{key}" twice')
        seen.add(key)
        event, value = _next(events, source)
        if key == "tasks":
            if event != "start_array":
                raise FileInvalid(_NOT_BULK)
            yield from _json_tasks(events, source, build)
        elif key in _SETTINGS:
            if event in _OPEN:
                _skip(events, source)
                value = {} if event == "start_map" else []
            yield "setting", key, value
        else:
            raise FileInvalid(f'the document has an unknown key "{key}" (expected tasks, {", ".join(_SETTINGS)})')
    if "tasks" not in seen:
        raise FileInvalid(_NOT_BULK)


def _json_tasks(events: Iterator[tuple[str, str, Any]], source: _Source, build: bool) -> Iterator[tuple[str, Any, Any]]:
    number = 0
    # Read-ahead is at most READ_SIZE, so an item that fits MAX_ROW_BYTES never looks larger.
    limit = MAX_ROW_BYTES + READ_SIZE
    while True:
        event, value = _next(events, source)
        if event == "end_array":
            return
        number += 1
        if event == "start_array":
            _skip(events, source)
        if event != "start_map":
            yield "task", number, _NOT_OBJECT
            continue
        start = source.consumed
        builder = ijson.ObjectBuilder() if build else None
        if builder is not None:
            builder.event(event, value)
        too_large = False
        depth = 1
        while depth:
            event, value = _next(events, source)
            depth += (event in _OPEN) - (event in _CLOSE)
            if builder is not None:
                if source.consumed - start > limit:
                    builder, too_large = None, True
                else:
                    builder.event(event, value)
        yield "task", number, _TOO_LARGE if too_large else (builder.value if builder is not None else None)


# ------------------------------------------------------------------ CSV


class _RecordTooLong(Exception):
    pass


class _Lines:
    """Physical lines of the text, each read with a bounded readline; counts the characters of the
    record being read (reset by the reader's loop) and stops past MAX_ROW_BYTES."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self.record_chars = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_ROW_BYTES + 1)
        if not line:
            raise StopIteration
        self.record_chars += len(line)
        if self.record_chars > MAX_ROW_BYTES:
            raise _RecordTooLong
        return line


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _schema_kinds(node: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a JSON Schema node admits."""
    if "$ref" in node:
        return _schema_kinds(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    kinds: set[str] = set()
    declared = node.get("type")
    kinds.update([declared] if isinstance(declared, str) else declared or [])
    if "const" in node:
        kinds.add(_kind(node["const"]))
    kinds.update(_kind(v) for v in node.get("enum", ()))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, ()):
            kinds |= _schema_kinds(sub, defs)
    return kinds


@cache
def _field_kinds(task_type: str) -> dict[str, frozenset[str]]:
    """For a task type: request data field -> the JSON types its model accepts, read from the
    model's JSON schema."""
    union = get_args(TaskCreate)[0]
    for member in get_args(union):
        (tag,) = get_args(member.model_fields["task_type"].annotation)
        if str(tag) != task_type:
            continue
        model: type[BaseModel] = next(
            a for a in get_args(member.model_fields["request_data"].annotation) if a is not type(None)
        )
        schema = model.model_json_schema()
        defs = schema.get("$defs", {})
        return {name: frozenset(_schema_kinds(node, defs)) for name, node in schema.get("properties", {}).items()}
    return {}


def _cell_value(kinds: frozenset[str] | None, cell: str) -> Any:
    """A request_data.<field> cell as the value to validate (CSV_RULES)."""
    if not kinds or not kinds - {"string", "null"}:
        return cell
    if "boolean" in kinds and cell.strip().lower() in ("true", "false"):
        return cell.strip().lower() == "true"
    try:
        value = json.loads(cell)
    except ValueError:
        return cell
    kind = _kind(value)
    if kind in ("string", "null"):
        return cell
    if kind in kinds or (kind == "integer" and "number" in kinds):
        return value
    return cell


def _csv_header(cells: list[str]) -> list[str]:
    columns = [cell.strip() for cell in cells]
    unknown = [
        c
        for c in columns
        if c not in COLUMNS
        and not (
            c.startswith(REQUEST_DATA_PREFIX) and c != REQUEST_DATA_PREFIX and "." not in c[len(REQUEST_DATA_PREFIX) :]
        )
    ]
    if unknown:
        raise FileInvalid(
            f"unknown columns: {', '.join(repr(c) for c in unknown)} "
            f"(expected {', '.join(COLUMNS)} or request_data.<field>)"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise FileInvalid(f"columns appear more than once: {', '.join(repeated)}")
    if "task_type" not in columns:
        raise FileInvalid("the header has no task_type column")
    if REQUEST_DATA in columns and any(c.startswith(REQUEST_DATA_PREFIX) for c in columns):
        raise FileInvalid("request_data is given both as a request_data column and as request_data.<field> columns")
    return columns


def _csv_row(number: int, columns: list[str], cells: list[str], upload_id: str) -> Row:
    if len(cells) != len(columns):
        return _invalid(number, f"row has {len(cells)} cells; the header has {len(columns)}")
    values = dict(zip(columns, cells, strict=True))
    kinds = _field_kinds(values["task_type"]) if values["task_type"] in _TAGS else {}  # the cache stays small
    body: dict[str, Any] = {}
    request_data: dict[str, Any] = {}
    problems: list[RowError] = []
    for column, cell in values.items():
        if cell == "":
            continue
        if column == REQUEST_DATA:
            try:
                decoded = json.loads(cell)
            except ValueError as exc:
                problems.append({"field": REQUEST_DATA, "message": f"not valid JSON: {exc}"})
                continue
            if not isinstance(decoded, dict):
                problems.append({"field": REQUEST_DATA, "message": "must be a JSON object"})
                continue
            body[REQUEST_DATA] = decoded
        elif column.startswith(REQUEST_DATA_PREFIX):
            name = column[len(REQUEST_DATA_PREFIX) :]
            request_data[name] = _cell_value(kinds.get(name), cell)
        else:
            body[column] = cell
    if request_data:
        body[REQUEST_DATA] = request_data
    return _validate(number, body, upload_id, problems)


def _csv(source: _Source, upload_id: str) -> Iterator[Row]:
    text = io.TextIOWrapper(io.BufferedReader(source, READ_SIZE), encoding="utf-8", newline="")
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    number = 0
    columns: list[str] | None = None

    def where() -> str:
        return "the header" if columns is None else f"row {number + 1}"

    try:
        header = next(reader, None)
        if header is None:
            raise FileInvalid("the file is empty: a header row is required")
        columns = _csv_header(header)
        while True:
            lines.record_chars = 0
            cells = next(reader, None)
            if cells is None:
                return
            number += 1
            if any(cell.strip() for cell in cells):
                yield _csv_row(number, columns, cells, upload_id)
    except _RecordTooLong:
        raise FileInvalid(f"{where()} is longer than {MAX_ROW_BYTES} characters") from None
    except UnicodeDecodeError:
        raise FileInvalid(f"the file is not valid UTF-8 (at or after {where()})") from None
    except csv.Error as exc:
        raise FileInvalid(f"the file is not valid CSV (in {where()}): {exc}") from None
