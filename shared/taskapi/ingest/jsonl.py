"""JSON Lines uploads: one task object per line (taskapi.ingest.formats describes the format)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from taskapi.ingest.rows import MAX_ROW_BYTES, Row, invalid_row, validate_row
from taskapi.ingest.source import Source


def parse_jsonl(source: Source, upload_id: str) -> Iterator[Row]:
    """A row for every non-blank line, numbered by physical line."""
    for number, line in _lines(source):
        if line is None:
            yield invalid_row(number, f"line is longer than {MAX_ROW_BYTES} bytes")
            continue
        if not line.strip():
            continue
        try:
            body = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            yield invalid_row(number, "line is not valid UTF-8")
            continue
        except json.JSONDecodeError as exc:
            yield invalid_row(number, f"line is not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(body, dict):
            yield invalid_row(number, "line is not a JSON object")
            continue
        yield validate_row(number, body, upload_id)


def _lines(source: Source) -> Iterator[tuple[int, bytes | None]]:
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
