"""JSON uploads: the bulk body as one document, streamed with ijson (taskapi.ingest.formats
describes the format). The tasks become rows; the shared video settings, which may come after the
tasks, are read by :func:`read_json_settings` in a pass of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import ijson
from pydantic import ValidationError

from taskapi.ingest.rows import (
    MAX_ROW_BYTES,
    READ_SIZE,
    FileInvalid,
    Readable,
    Row,
    errors_of,
    invalid_row,
    validate_row,
)
from taskapi.ingest.source import Source
from taskapi.models.requests import SharedVideoSettings

MAX_TOKEN_BYTES: Final = 4 * MAX_ROW_BYTES
"""JSON documents: the parser buffers a whole string or number, so the document may not go on for
longer than this without completing one (a file-level error)."""

_SETTINGS: Final = tuple(SharedVideoSettings.model_fields)
_NOT_BULK: Final = 'the document is not a JSON object with a "tasks" array'
_TOO_LARGE: Final = object()
_NOT_OBJECT: Final = object()
_OPEN: Final = frozenset({"start_map", "start_array"})
_CLOSE: Final = frozenset({"end_map", "end_array"})


def parse_json(source: Source, upload_id: str) -> Iterator[Row]:
    """A row for every item of ``tasks``; FileInvalid (while iterating) for a document that is not
    a bulk body."""
    for kind, index, value in _json_document(source, build=True):
        if kind != "task":
            continue
        if value is _TOO_LARGE:
            yield invalid_row(index, f"task is larger than {MAX_ROW_BYTES} bytes")
        elif value is _NOT_OBJECT:
            yield invalid_row(index, "task is not a JSON object")
        else:
            yield validate_row(index, value, upload_id)


def read_json_settings(stream: Readable) -> SharedVideoSettings:
    """The shared video settings of a JSON document, read in a streaming pass that skips the tasks.
    Raises FileInvalid as parse_rows would, and for settings that do not validate."""
    source = Source(stream)
    found: dict[str, Any] = {}
    for kind, key, value in _json_document(source, build=False):
        if kind == "setting":
            found[key] = value
    try:
        return SharedVideoSettings.model_validate(found)
    except ValidationError as exc:
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in errors_of(exc))
        raise FileInvalid(f"invalid shared video settings: {problems}") from None


def _json_document(source: Source, *, build: bool) -> Iterator[tuple[str, Any, Any]]:
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


def _next(events: Iterator[tuple[str, str, Any]], source: Source) -> tuple[str, Any]:
    try:
        _, event, value = next(events)
    except StopIteration:  # ijson raises first; this is a safety net
        raise FileInvalid("the document ends too early") from None
    source.mark()
    return event, value


def _skip(events: Iterator[tuple[str, str, Any]], source: Source) -> None:
    depth = 1
    while depth:
        event, _ = _next(events, source)
        depth += (event in _OPEN) - (event in _CLOSE)


def _json_events(events: Iterator[tuple[str, str, Any]], source: Source, build: bool) -> Iterator[tuple[str, Any, Any]]:
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


def _json_tasks(events: Iterator[tuple[str, str, Any]], source: Source, build: bool) -> Iterator[tuple[str, Any, Any]]:
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
