"""What the ingest tests share: parsing bytes into a list, collecting rows up to a file-level
error, and streams that make bytes on demand (or in tiny reads)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from taskapi.ingest.formats import UploadFormat, parse_rows
from taskapi.ingest.rows import FileInvalid, Row
from tests import factories

UPLOAD = "bucket/uploads/tasks.jsonl#v1"


def parse(data: bytes, upload_format: UploadFormat | str, upload_id: str = UPLOAD) -> list[Row]:
    return list(parse_rows(io.BytesIO(data), upload_format, upload_id=upload_id))


def parse_until_invalid(data: bytes, upload_format: UploadFormat | str) -> tuple[list[Row], FileInvalid]:
    """The rows yielded before the file-level error, and the error (which must come)."""
    rows: list[Row] = []
    try:
        for row in parse_rows(io.BytesIO(data), upload_format, upload_id=UPLOAD):
            rows.append(row)
    except FileInvalid as exc:
        return rows, exc
    raise AssertionError(f"no FileInvalid after {len(rows)} rows")


def jsonl(*items: Any) -> bytes:
    """One line per item: dicts as JSON, strings and bytes as they are."""
    lines = []
    for item in items:
        if isinstance(item, bytes):
            lines.append(item)
        elif isinstance(item, str):
            lines.append(item.encode())
        else:
            lines.append(json.dumps(item).encode())
    return b"\n".join(lines) + b"\n"


def video(prompt: str = "Addition and subtraction", **overrides: Any) -> dict[str, Any]:
    return factories.video(request_data={"story_prompt": prompt, "segments": 3}, **overrides)


def quiz(prompt: str = "Pythagoras and right triangles", **overrides: Any) -> dict[str, Any]:
    return factories.quiz(request_data={"story_prompt": prompt, "difficulty": "easy"}, **overrides)


def fields(row: Row) -> list[str | None]:
    assert row.errors is not None, f"row {row.row} is valid"
    return [error["field"] for error in row.errors]


def messages(row: Row) -> list[str]:
    assert row.errors is not None, f"row {row.row} is valid"
    return [error["message"] for error in row.errors]


class GeneratedStream:
    """A binary stream whose bytes come from a generator as they are read (like an S3 body):
    the file never exists in memory. Records the largest read asked for."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = b""
        self.largest_read = 0
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "the parser must never ask for the whole object"
        self.largest_read = max(self.largest_read, size)
        while len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self.bytes_read += len(data)
        return data


class TrickleStream:
    """Answers every read with at most ``step`` bytes (a slow network), never more than asked."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, self._step) if size >= 0 else self._step)


def repeated(make_line: Callable[[int], bytes], count: int, head: bytes = b"", tail: bytes = b"") -> Iterator[bytes]:
    yield head
    for index in range(1, count + 1):
        yield make_line(index)
    yield tail
