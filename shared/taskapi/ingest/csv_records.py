"""CSV uploads: a header row, then one task per record (taskapi.ingest.formats describes the format;
:data:`CSV_RULES` says how cells become values)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from functools import cache
from typing import Any, Final, get_args

from pydantic import BaseModel

from taskapi.ingest.rows import (
    MAX_ROW_BYTES,
    READ_SIZE,
    REQUEST_DATA,
    TASK_TYPES,
    FileInvalid,
    Row,
    RowError,
    invalid_row,
    validate_row,
)
from taskapi.ingest.source import Source
from taskapi.models.requests import TaskCreate

COLUMNS: Final = (
    "task_id",
    "task_type",
    "priority",
    "task_source_name",
    "task_source_id",
    "task_source_group_id",
    "request_data",
)
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


def parse_csv(source: Source, upload_id: str) -> Iterator[Row]:
    """A row for every record after the header that has a non-blank cell; FileInvalid (while
    iterating) for a bad header, a record too long, or text that is not UTF-8 or not CSV."""
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
        columns = _header(header)
        while True:
            lines.record_chars = 0
            cells = next(reader, None)
            if cells is None:
                return
            number += 1
            if any(cell.strip() for cell in cells):
                yield _row(number, columns, cells, upload_id)
    except _RecordTooLong:
        raise FileInvalid(f"{where()} is longer than {MAX_ROW_BYTES} characters") from None
    except UnicodeDecodeError:
        raise FileInvalid(f"the file is not valid UTF-8 (at or after {where()})") from None
    except csv.Error as exc:
        raise FileInvalid(f"the file is not valid CSV (in {where()}): {exc}") from None


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


def _header(cells: list[str]) -> list[str]:
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


def _row(number: int, columns: list[str], cells: list[str], upload_id: str) -> Row:
    if len(cells) != len(columns):
        return invalid_row(number, f"row has {len(cells)} cells; the header has {len(columns)}")
    values = dict(zip(columns, cells, strict=True))
    kinds = _field_kinds(values["task_type"]) if values["task_type"] in TASK_TYPES else {}  # the cache stays small
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
    return validate_row(number, body, upload_id, problems)
