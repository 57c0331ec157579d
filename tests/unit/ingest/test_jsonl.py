"""JSON Lines: one task per line, row numbers are physical lines, a bad line spoils only itself."""

from __future__ import annotations

from taskapi.ingest.formats import UploadFormat
from taskapi.ingest.rows import MAX_ROW_BYTES, derived_task_id
from taskapi.models.domain import Priority, TaskType

from .support import UPLOAD, fields, jsonl, messages, parse, quiz, video

JSONL = UploadFormat.JSONL


def test_each_line_is_a_task_and_blank_lines_count_as_rows():
    data = jsonl(video(task_id="v-1"), "", "   ", quiz(task_source_group_id="batch_1"), {"task_type": "documentation"})

    rows = parse(data, JSONL)

    assert [row.row for row in rows] == [1, 4, 5]
    assert all(row.ok and row.errors is None for row in rows)
    first, second, third = (row.task for row in rows)
    assert first.task_type == TaskType.VIDEO
    assert first.priority == Priority.HIGH
    assert first.request_data.segments == 3
    assert second.task_type == TaskType.QUIZ
    assert second.task_source_group_id == "batch_1"
    assert third.task_type == TaskType.DOCUMENTATION
    assert third.request_data is None
    assert [row.task_id for row in rows] == ["v-1", derived_task_id(UPLOAD, 4), derived_task_id(UPLOAD, 5)]
    assert [row.task.task_id for row in rows] == [row.task_id for row in rows]


def test_crlf_and_a_last_line_without_newline():
    data = b'{"task_type": "documentation"}\r\n\r\n{"task_type": "animated_lesson"}'

    rows = parse(data, JSONL)

    assert [(row.row, row.task.task_type) for row in rows] == [(1, "documentation"), (3, "animated_lesson")]


def test_bad_lines_are_invalid_rows_and_later_lines_still_parse():
    data = jsonl(
        video(),
        '{"task_type": "video", ',
        "[1, 2]",
        '"just a string"',
        {"task_type": "video", "request_data": {"segments": 0}},
        {"task_type": "quiz", "colour": "red", "request_data": {"story_prompt": "x", "difficulty": "extreme"}},
        {"priority": "high"},
        {"task_type": "podcast"},
        b'{"task_type": "documentation", "task_source_name": "\xff"}',
        quiz(),
    )

    rows = parse(data, JSONL)

    assert [row.row for row in rows] == list(range(1, 11))
    assert [row.ok for row in rows] == [True, False, False, False, False, False, False, False, False, True]
    assert messages(rows[1])[0].startswith("line is not valid JSON: ")
    assert fields(rows[1]) == [None]
    assert messages(rows[2]) == ["line is not a JSON object"]
    assert messages(rows[3]) == ["line is not a JSON object"]
    assert sorted(fields(rows[4])) == ["request_data.segments", "request_data.story_prompt"]
    assert sorted(fields(rows[5])) == ["colour", "request_data.difficulty"]
    assert fields(rows[6]) == ["task_type"]
    assert fields(rows[7]) == ["task_type"]
    assert messages(rows[8]) == ["line is not valid UTF-8"]
    for row in rows[1:9]:
        assert row.task is None
        assert row.task_id is None
        assert row.errors


def test_errors_name_list_positions_and_request_data_limits():
    big = {"story_prompt": "x", "notes": "y" * 30_000}
    data = jsonl(
        {"task_type": "quiz", "request_data": {"story_prompt": "x", "difficulty": "easy", "question_types": ["essay"]}},
        {"task_type": "documentation", "request_data": big},
    )

    rows = parse(data, JSONL)

    assert fields(rows[0]) == ["request_data.question_types.0"]
    assert fields(rows[1]) == ["request_data"]
    assert "request_data is" in messages(rows[1])[0]


def test_a_line_over_the_limit_is_an_invalid_row_and_parsing_resumes_at_the_next_line():
    exact_line = b'{"task_type": "documentation"}'.ljust(MAX_ROW_BYTES)  # padded with spaces
    too_long = b'{"task_type": "video", "pad": "' + b"x" * (3 * MAX_ROW_BYTES) + b'"}'
    data = jsonl(video(), too_long, exact_line, quiz(), too_long).rstrip(b"\n")  # the last one ends the file

    rows = parse(data, JSONL)

    assert [row.row for row in rows] == [1, 2, 3, 4, 5]
    assert [row.ok for row in rows] == [True, False, True, True, False]
    assert messages(rows[1]) == [f"line is longer than {MAX_ROW_BYTES} bytes"]
    assert messages(rows[4]) == [f"line is longer than {MAX_ROW_BYTES} bytes"]


def test_a_line_one_byte_over_the_limit_is_too_long():
    line = b'{"task_type": "documentation", "pad": "' + b"x" * MAX_ROW_BYTES + b'"}'
    rows = parse(jsonl(line[: MAX_ROW_BYTES + 1]), JSONL)
    assert messages(rows[0]) == [f"line is longer than {MAX_ROW_BYTES} bytes"]


def test_empty_file_has_no_rows():
    assert parse(b"", JSONL) == []
    assert parse(b"\n\n", JSONL) == []
