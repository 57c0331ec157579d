"""File-level checks made before rows are parsed, by the ingest function (taskapi.uploads.ingest)
and by `taskapi submit` alike, so a file is refused locally as an upload would refuse it.

Like the row parsers of taskapi.ingest, it reads a stream and does no I/O of its own, and imports nothing of AWS:
the `taskapi[client]` extra loads it."""

from __future__ import annotations

import codecs
import json

from taskapi.ingest.rows import MAX_ROW_BYTES, READ_SIZE, FileInvalid, Readable

_BOM = codecs.BOM_UTF8


class _Replay:
    """The bytes read ahead, then the rest of the stream."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int, /) -> bytes:
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def check_jsonl_start(body: Readable) -> Readable:
    """The body, unchanged, once its first non-blank line is a JSON object; FileInvalid when it is
    not (a CSV, a pretty-printed JSON document, a binary file declared as JSON Lines). Only that
    line is judged: later bad lines are invalid rows, as taskapi.ingest.formats reports them. A first
    line too long to read ahead must at least begin like a JSON object in UTF-8."""
    head = b""
    while True:
        more = body.read(READ_SIZE)
        head += more
        text = head.removeprefix(_BOM)
        lines = text.split(b"\n")
        complete = lines if not more else lines[:-1]
        for line in complete:
            if line.strip():
                _judge_first_line(line)
                return _Replay(head, body)
        if not more:
            return _Replay(head, body)
        if len(text) > MAX_ROW_BYTES:
            _judge_long_first_line(text)
            return _Replay(head, body)


_NOT_JSONL = "its first line is not a JSON object"


def _judge_first_line(line: bytes) -> None:
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise FileInvalid(f"{_NOT_JSONL} (it is not UTF-8 text)") from None
    except ValueError:
        raise FileInvalid(f"{_NOT_JSONL} (it is not JSON)") from None
    if not isinstance(value, dict):
        raise FileInvalid(f"{_NOT_JSONL} (it is a JSON {type(value).__name__})")
    if "tasks" in value and "task_type" not in value:
        raise FileInvalid('its first line is a bulk body ({"tasks": [...]}): upload it with format "json"')


def _judge_long_first_line(text: bytes) -> None:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text, final=False)
    except UnicodeDecodeError:
        raise FileInvalid(f"{_NOT_JSONL} (it is not UTF-8 text)") from None
    if not text.lstrip().startswith(b"{"):
        raise FileInvalid(f"{_NOT_JSONL} (it is not JSON)")
