"""The file a submit sends, read and validated locally by taskapi.ingest, the parser the
ingest function runs (for JSON Lines with its check of the first line too), so a row is judged as
an upload would judge it."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from taskapi.cli_support import EXIT_USAGE, CommandFailed
from taskapi.ingest.checks import check_jsonl_start
from taskapi.ingest.formats import UploadFormat, parse_rows
from taskapi.ingest.json_document import read_json_settings
from taskapi.ingest.rows import FileInvalid, Readable, Row
from taskapi.models.requests import SharedVideoSettings


@dataclass
class Parsed:
    """Rows of a file, in order: all of them, or up to a limit (`more`: the file goes on)."""

    rows: list[Row]
    shared: SharedVideoSettings
    more: bool = False


def file_format(args: argparse.Namespace) -> UploadFormat:
    """--format, else the file's extension (.jsonl/.ndjson, .json, .csv)."""
    if args.format:
        return UploadFormat(args.format)
    found = UploadFormat.for_key(args.file.name)
    if found is None:
        raise CommandFailed(
            f"cannot tell the format of {args.file.name} from its extension: pass --format jsonl, json or csv",
            EXIT_USAGE,
        )
    return found


def digest(path: Path, group: str | None) -> str:
    """What the file's derived task ids hang on: its bytes and the group."""
    hashed = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            hashed.update(block)
    hashed.update(b"\0group:" + (group or "").encode())
    return f"cli-{hashed.hexdigest()[:32]}"


@contextmanager
def opened(path: Path, fmt: UploadFormat) -> Iterator[BinaryIO]:
    """The file, open for reading; while it is read, a file that cannot be read as a whole
    (FileInvalid) is a CommandFailed."""
    with path.open("rb") as stream:
        try:
            yield stream
        except FileInvalid as exc:
            raise CommandFailed(f"{path.name} cannot be read as {fmt.value.upper()}: {exc.message}") from exc


def shared_settings(path: Path, fmt: UploadFormat) -> SharedVideoSettings:
    """A JSON document's shared video settings (none for the other formats)."""
    if fmt is not UploadFormat.JSON:
        return SharedVideoSettings()
    with opened(path, fmt) as stream:
        return read_json_settings(stream)


def rows_of(stream: BinaryIO, fmt: UploadFormat, upload_id: str) -> Iterator[Row]:
    """The rows as the ingest function parses them, JSON Lines after its check of the first line (a
    file that does not start with a JSON object is refused as a whole, not read as invalid rows)."""
    body: Readable = check_jsonl_start(stream) if fmt is UploadFormat.JSONL else stream
    return parse_rows(body, fmt, upload_id=upload_id)


def read(path: Path, fmt: UploadFormat, source_id: str, limit: int | None) -> Parsed:
    """Every row, or the first `limit` (and whether more follow), with the JSON document's shared
    video settings."""
    shared = shared_settings(path, fmt)
    with opened(path, fmt) as stream:
        rows = rows_of(stream, fmt, source_id)
        taken = list(rows if limit is None else islice(rows, limit + 1))
    more = limit is not None and len(taken) > limit
    return Parsed(rows=taken[:limit] if more else taken, shared=shared, more=more)


def grouped(row: Row, group: str | None) -> Row:
    """The row with task_source_group_id `group` when it has none."""
    if group is None or row.task is None or row.task.task_source_group_id is not None:
        return row
    task = row.task.model_copy(update={"task_source_group_id": group})
    return Row(row=row.row, task=task, errors=None, task_id=row.task_id)
