"""The formats of an uploaded file of tasks, and :func:`parse_rows`, which streams a file of any of
them into validated rows (:class:`taskapi.ingest.rows.Row`), without I/O of its own.

The ingest Lambda hands over the body of an S3 object (anything with ``read(n)`` returning bytes)
and gets back an iterator of Row, one per task of the file, valid or not::

    settings = read_json_settings(open_body())  # JSON only: a first pass over the document
    for chunk in chunks(parse_rows(open_body(), UploadFormat.JSON, upload_id=upload_id)):
        valid = [row.task for row in chunk if row.task is not None]
        ...  # create_tasks(repository, queue, principal, valid, shared=settings); report row.errors

Memory stays bounded whatever the size of the file: the stream is read in chunks of
``READ_SIZE`` bytes and at most one row is held at a time. A row is limited to
``MAX_ROW_BYTES`` (a JSON Lines line, a task object of the JSON document, a CSV record).

Formats (:class:`UploadFormat`), each UTF-8 with or without a byte order mark:

``jsonl`` (taskapi.ingest.jsonl)
    One task object per line, shaped like an item of the bulk body. Blank lines are skipped, but
    row numbers count physical lines (1-based). A line that is not JSON, not an object, longer than
    ``MAX_ROW_BYTES`` or invalid is an invalid row; the lines after it are parsed as usual.
``json`` (taskapi.ingest.json_document)
    The bulk body itself, without its limit of 100 tasks:
    ``{"tasks": [...], "logo_url": ..., "intro_video_url": ..., "outro_video_url": ...}``. The row
    number is the index in ``tasks`` plus one. The shared video settings may come after the tasks,
    so ``read_json_settings`` reads them in a pass of their own (open the object twice).
    A document that is not such an object, or is malformed or truncated, raises
    ``FileInvalid`` when the parser reaches the problem: rows yielded before stay yielded.
``csv`` (taskapi.ingest.csv_records)
    A header row, then one task per record. Columns: ``task_id``, ``task_type`` (required),
    ``priority``, ``task_source_name``, ``task_source_id``, ``task_source_group_id``, and the
    request data either as one ``request_data`` column holding a JSON object or as
    ``request_data.<field>`` columns (not both). Unknown, duplicate or missing-required columns
    raise ``FileInvalid``. The row number is the record's index after the header (1-based;
    records whose cells are all blank are skipped but counted). See ``CSV_RULES`` for how cells
    become values.

Validation, errors and derived task ids are the same for every format: taskapi.ingest.rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from taskapi.ingest.csv_records import parse_csv
from taskapi.ingest.json_document import parse_json
from taskapi.ingest.jsonl import parse_jsonl
from taskapi.ingest.rows import Readable, Row
from taskapi.ingest.source import Source


class UploadFormat(StrEnum):
    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"

    @classmethod
    def for_key(cls, key: str) -> UploadFormat | None:
        """The format named by an object key's extension (.jsonl/.ndjson, .json, .csv), if any."""
        suffix = key.rsplit(".", 1)[-1].lower() if "." in key else ""
        return {"jsonl": cls.JSONL, "ndjson": cls.JSONL, "json": cls.JSON, "csv": cls.CSV}.get(suffix)


def parse_rows(stream: Readable, upload_format: UploadFormat | str, *, upload_id: str) -> Iterator[Row]:
    """Every row of the file, in order. Raises FileInvalid (while iterating) for a file-level
    problem; the rows before it have been yielded."""
    parsers = {UploadFormat.JSONL: parse_jsonl, UploadFormat.JSON: parse_json, UploadFormat.CSV: parse_csv}
    return parsers[UploadFormat(upload_format)](Source(stream), upload_id)
