"""What holds for every format: derived ids, chunks, byte order marks, reads of any size, and memory
that stays bounded whatever the size of the file."""

from __future__ import annotations

import json
import tracemalloc
import uuid

import pytest

from taskapi.ingest.formats import UploadFormat, parse_rows
from taskapi.ingest.rows import (
    MAX_ROW_BYTES,
    READ_SIZE,
    FileInvalid,
    Row,
    chunks,
    derived_task_id,
)

from .support import UPLOAD, GeneratedStream, TrickleStream, jsonl, parse, quiz, repeated, video

CSV_HEADER = b"task_id,task_type,priority,request_data.story_prompt,request_data.difficulty\r\n"
SAMPLES = {
    UploadFormat.JSONL: jsonl(video(), quiz(task_id="q-2"), {"task_type": "documentation"}),
    UploadFormat.JSON: json.dumps(
        {"tasks": [video(), quiz(task_id="q-2"), {"task_type": "documentation"}], "logo_url": "https://e.com/l.png"}
    ).encode(),
    UploadFormat.CSV: CSV_HEADER + b",video,,Prompt,\r\nq-2,quiz,,Prompt,easy\r\n,documentation,,,\r\n",
}
SAMPLES[UploadFormat.CSV] = SAMPLES[UploadFormat.CSV].replace(
    b",video,,Prompt,", b",documentation,,Prompt,"
)  # CSV has no segments column: a documentation task stands in for the video


def test_upload_format_for_key():
    assert UploadFormat.for_key("uploads/a/tasks.JSONL") is UploadFormat.JSONL
    assert UploadFormat.for_key("tasks.ndjson") is UploadFormat.JSONL
    assert UploadFormat.for_key("tasks.json") is UploadFormat.JSON
    assert UploadFormat.for_key("x.y/tasks.csv") is UploadFormat.CSV
    assert UploadFormat.for_key("tasks.txt") is None
    assert UploadFormat.for_key("json") is None
    assert UploadFormat("csv") is UploadFormat.CSV


@pytest.mark.parametrize("upload_format", list(UploadFormat))
def test_derived_ids_are_stable_across_parses_and_explicit_ids_are_kept(upload_format):
    first = parse(SAMPLES[upload_format], upload_format)
    second = parse(SAMPLES[upload_format], upload_format)

    assert [row.task_id for row in first] == [row.task_id for row in second]
    assert first[1].task_id == "q-2"
    assert first[0].task_id == derived_task_id(UPLOAD, 1)
    assert first[2].task_id == derived_task_id(UPLOAD, 3)
    assert [row.task.task_id for row in first] == [row.task_id for row in first]


def test_derived_ids_differ_per_row_and_per_upload():
    ids = {derived_task_id(upload, row) for upload in ("upload-a", "upload-b") for row in range(1, 1001)}
    assert len(ids) == 2000
    rows_a = parse(SAMPLES[UploadFormat.JSONL], UploadFormat.JSONL, upload_id="upload-a")
    rows_b = parse(SAMPLES[UploadFormat.JSONL], UploadFormat.JSONL, upload_id="upload-b")
    assert rows_a[0].task_id != rows_b[0].task_id
    assert rows_a[1].task_id == rows_b[1].task_id == "q-2"


def test_derived_ids_never_change():
    """A changed namespace or name would create every task of a re-processed upload twice."""
    assert derived_task_id("bucket/key#v1", 7) == str(
        uuid.uuid5(uuid.UUID("ca14bfdf-d8db-49d1-818a-62b1c1dc1a46"), "bucket/key#v1:7")
    )
    assert derived_task_id("bucket/key#v1", 7) == "6fa51c32-ce12-5932-8961-b6c8b0b24c33"


def test_an_empty_task_id_is_derived():
    rows = parse(jsonl({"task_id": "", "task_type": "documentation"}), UploadFormat.JSONL)
    assert rows[0].task_id == derived_task_id(UPLOAD, 1)


def row(number: int) -> Row:
    return Row(row=number, task=None, errors=[{"field": None, "message": "x"}], task_id=None)


def test_chunks_of_a_hundred_and_a_shorter_last_one():
    sizes = [len(chunk) for chunk in chunks(row(n) for n in range(1, 251))]
    assert sizes == [100, 100, 50]
    assert [[r.row for r in chunk] for chunk in chunks([row(1), row(2), row(3)], size=2)] == [[1, 2], [3]]
    assert list(chunks([])) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(chunks([row(1)], size=0))


@pytest.mark.parametrize("upload_format", list(UploadFormat))
def test_a_byte_order_mark_is_ignored(upload_format):
    with_bom = parse(b"\xef\xbb\xbf" + SAMPLES[upload_format], upload_format)
    assert [r.task_id for r in with_bom] == [r.task_id for r in parse(SAMPLES[upload_format], upload_format)]
    assert all(r.ok for r in with_bom)


@pytest.mark.parametrize("upload_format", list(UploadFormat))
@pytest.mark.parametrize("step", [1, 2, 7])
def test_reads_of_any_size_give_the_same_rows(upload_format, step):
    data = b"\xef\xbb\xbf" + SAMPLES[upload_format]
    trickled = list(parse_rows(TrickleStream(data, step), upload_format, upload_id=UPLOAD))
    assert trickled == parse(data, upload_format)


# ------------------------------------------------------------------ bounded memory

ROWS = {UploadFormat.JSONL: 20_000, UploadFormat.JSON: 6_000, UploadFormat.CSV: 6_000}
PEAK_LIMIT = 4 * 1024 * 1024
PROMPT = "lorem ipsum " * 80  # about 1 KB a row: every file is larger than PEAK_LIMIT


def jsonl_line(index: int) -> bytes:
    task = video(f"Generated prompt number {index}: {PROMPT}")
    task["task_source_id"] = f"source_{index}"
    return json.dumps(task).encode() + b"\n"


def json_item(index: int) -> bytes:
    return (b"," if index > 1 else b"") + jsonl_line(index)


def csv_line(index: int) -> bytes:
    return f",quiz,low,Generated prompt number {index}: {PROMPT},medium\r\n".encode()


GENERATED = {
    UploadFormat.JSONL: lambda n: repeated(jsonl_line, n),
    UploadFormat.JSON: lambda n: repeated(json_item, n, head=b'{"tasks": [', tail=b'], "logo_url": null}'),
    UploadFormat.CSV: lambda n: repeated(csv_line, n, head=CSV_HEADER),
}


def peak_while(consume) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("upload_format", list(UploadFormat))
def test_a_large_file_streams_in_bounded_memory(upload_format):
    count = ROWS[upload_format]
    stream = GeneratedStream(GENERATED[upload_format](count))
    seen = {"rows": 0, "valid": 0, "chunks": 0}

    def consume():
        for chunk in chunks(parse_rows(stream, upload_format, upload_id=UPLOAD)):
            seen["chunks"] += 1
            seen["rows"] += len(chunk)
            seen["valid"] += sum(r.ok for r in chunk)

    peak = peak_while(consume)

    assert seen == {"rows": count, "valid": count, "chunks": count // 100}
    assert stream.bytes_read > PEAK_LIMIT
    assert stream.largest_read <= READ_SIZE
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"


def test_a_huge_jsonl_line_is_dropped_as_it_streams():
    size = 64 * 1024 * 1024
    piece = b"x" * READ_SIZE

    def pieces():
        yield jsonl(video()) + b'{"task_type": "video", "pad": "'
        for _ in range(size // READ_SIZE):
            yield piece
        yield b'"}\n' + jsonl(quiz())

    stream = GeneratedStream(pieces())
    rows: list[Row] = []
    peak = peak_while(lambda: rows.extend(parse_rows(stream, UploadFormat.JSONL, upload_id=UPLOAD)))

    assert [(r.row, r.ok) for r in rows] == [(1, True), (2, False), (3, True)]
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"


def test_a_huge_json_string_is_a_file_error_without_buffering_it():
    def pieces():
        yield b'{"tasks": [{"task_type": "documentation"}, {"task_type": "video", "pad": "'
        while True:  # never ends: the parser must give up on its own
            yield b"x" * READ_SIZE

    stream = GeneratedStream(pieces())
    rows: list[Row] = []

    def consume():
        with pytest.raises(FileInvalid, match="JSON value longer than"):
            rows.extend(parse_rows(stream, UploadFormat.JSON, upload_id=UPLOAD))

    peak = peak_while(consume)

    assert [r.ok for r in rows] == [True]
    assert stream.bytes_read < 2 * 1024 * 1024
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"


def test_a_huge_json_task_is_skipped_without_building_it():
    def pieces():
        yield b'{"tasks": [{"task_type": "video", "pad": ['
        for index in range(60_000):  # 6 MB
            yield (b"," if index else b"") + b'"' + b"y" * 100 + b'"'
        yield b"]}, " + json.dumps(quiz()).encode() + b"]}"

    stream = GeneratedStream(pieces())
    rows: list[Row] = []
    peak = peak_while(lambda: rows.extend(parse_rows(stream, UploadFormat.JSON, upload_id=UPLOAD)))

    assert [r.ok for r in rows] == [False, True]
    assert rows[0].errors == [{"field": None, "message": f"task is larger than {MAX_ROW_BYTES} bytes"}]
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"
