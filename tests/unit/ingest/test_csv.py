"""CSV: a header of documented columns, request_data as one JSON column or as one column per field."""

from __future__ import annotations

import pytest

from taskapi.ingest.formats import UploadFormat
from taskapi.ingest.rows import MAX_ROW_BYTES, derived_task_id
from taskapi.models.domain import Priority

from .support import UPLOAD, fields, messages, parse, parse_until_invalid

CSV = UploadFormat.CSV


def csv_bytes(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def test_request_data_as_a_json_column():
    data = csv_bytes(
        "task_id,task_type,priority,task_source_name,task_source_id,task_source_group_id,request_data",
        'v-1,video,high,Course Creator,course_123,batch_456,"{""story_prompt"": ""Maths"", ""segments"": 3}"',
        ',quiz,,,,,"{""story_prompt"": ""Greece"", ""difficulty"": ""hard"", ""num_questions"": 12}"',
        ",documentation,low,,,,",
    )

    rows = parse(data, CSV)

    assert [row.row for row in rows] == [1, 2, 3]
    assert all(row.ok for row in rows)
    video, quiz, documentation = (row.task for row in rows)
    assert video.task_id == "v-1"
    assert video.priority == Priority.HIGH
    assert (video.task_source_name, video.task_source_id, video.task_source_group_id) == (
        "Course Creator",
        "course_123",
        "batch_456",
    )
    assert video.request_data.segments == 3
    assert quiz.task_id == derived_task_id(UPLOAD, 2)
    assert quiz.priority == Priority.NORMAL  # an empty cell is an absent field
    assert (quiz.request_data.difficulty, quiz.request_data.num_questions) == ("hard", 12)
    assert documentation.request_data is None


def test_request_data_as_field_columns_converts_to_the_types_the_model_expects():
    data = csv_bytes(
        "task_type,request_data.story_prompt,request_data.difficulty,request_data.num_questions,"
        "request_data.question_types,request_data.segments,request_data.include_subtitles,"
        "request_data.voice_rate,request_data.language,request_data.subject",
        'quiz,Pythagoras,medium,5,"[""multiple_choice"", ""true_false""]",,,,,42',
        "video,123,,,,maximum,TRUE,1.5,English,",
        "video,History,,,,7,false,2,,",
        "documentation,,,,,,,,,",
    )

    rows = parse(data, CSV)

    assert all(row.ok for row in rows), [row.errors for row in rows]
    quiz, maximum, seven, documentation = (row.task.request_data for row in rows)
    assert quiz.num_questions == 5
    assert quiz.difficulty == "medium"
    assert quiz.question_types == ["multiple_choice", "true_false"]
    assert quiz.model_dump(exclude_unset=True)["subject"] == "42"  # unknown to the model: a string
    assert maximum.segments == "maximum"
    assert maximum.story_prompt == "123"  # a string field is never decoded
    assert maximum.include_subtitles is True
    assert maximum.voice_rate == 1.5
    assert maximum.language == "English"
    assert seven.segments == 7
    assert seven.include_subtitles is False
    assert seven.voice_rate == 2
    assert documentation is None  # every request_data cell empty: no request_data


def test_cells_that_do_not_convert_are_reported_by_validation():
    data = csv_bytes(
        "task_type,request_data.story_prompt,request_data.difficulty,request_data.num_questions,request_data.segments",
        "quiz,Prompt,easy,five,",
        "quiz,Prompt,easy,5.0,",
        "quiz,Prompt,extreme,,",
        "video,Prompt,,,many",
        "video,Prompt,,,51",
        "quiz,Prompt,easy,7,",
    )

    rows = parse(data, CSV)

    assert [row.ok for row in rows] == [False, False, False, False, False, True]
    assert fields(rows[0]) == ["request_data.num_questions"]
    assert messages(rows[0]) == ["Input should be a valid integer"]
    assert fields(rows[1]) == ["request_data.num_questions"]
    assert fields(rows[2]) == ["request_data.difficulty"]
    assert fields(rows[3]) == ["request_data.segments"]
    assert fields(rows[4]) == ["request_data.segments"]


def test_row_problems_are_invalid_rows_and_later_rows_still_parse():
    data = csv_bytes(
        "task_id,task_type,priority,request_data",
        ",video,high,{not json",
        ",video,high,[1]",
        ",video,urgent",
        ",podcast,,",
        ",,,",
        "",
        ",,,",
        'bad id,quiz,,"{""story_prompt"": ""x"", ""difficulty"": ""easy""}"',
        ',documentation,low,"{""story_prompt"":\n""two lines, one record""}"',
        ",documentation,,",
    )

    rows = parse(data, CSV)

    assert [row.row for row in rows] == [1, 2, 3, 4, 8, 9, 10]  # blank records are skipped, but counted
    assert [row.ok for row in rows] == [False, False, False, False, False, True, True]
    assert fields(rows[0]) == ["request_data"]
    assert messages(rows[0])[0].startswith("not valid JSON: ")
    assert messages(rows[1]) == ["must be a JSON object"]
    assert messages(rows[2]) == ["row has 3 cells; the header has 4"]
    assert fields(rows[3]) == ["task_type"]
    assert fields(rows[4]) == ["task_id"]
    assert rows[5].task.request_data.story_prompt == "two lines, one record"


def test_a_bad_request_data_cell_is_reported_with_the_other_problems():
    rows = parse(csv_bytes("task_type,priority,request_data", "video,highest,{"), CSV)
    assert sorted(fields(rows[0])) == ["priority", "request_data"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("task_type,colour,story_prompt", "unknown columns: 'colour', 'story_prompt'"),
        ("task_type,request_data.", "unknown columns: 'request_data.'"),
        ("task_type,request_data.a.b", "unknown columns: 'request_data.a.b'"),
        (
            "task_type,request_data,request_data.story_prompt",
            "both as a request_data column and as request_data.<field>",
        ),
        ("task_type,priority,priority", "columns appear more than once: priority"),
        ("task_id,priority", "no task_type column"),
    ],
)
def test_a_bad_header_is_a_file_error(header, expected):
    rows, error = parse_until_invalid(csv_bytes(header, "video,x,y"), CSV)
    assert rows == []
    assert expected in error.message


def test_header_names_may_carry_spaces():
    rows = parse(csv_bytes(" task_type , request_data.story_prompt", "documentation,Prompt"), CSV)
    assert rows[0].task.request_data.story_prompt == "Prompt"


def test_an_empty_file_has_no_header():
    _, error = parse_until_invalid(b"", CSV)
    assert "header row is required" in error.message


def test_a_header_alone_has_no_rows():
    assert parse(csv_bytes("task_type,request_data"), CSV) == []


def test_a_record_over_the_limit_is_a_file_error_after_the_rows_before_it():
    data = csv_bytes("task_type,request_data.story_prompt", "documentation,ok", "documentation," + "x" * MAX_ROW_BYTES)

    rows, error = parse_until_invalid(data, CSV)

    assert [row.ok for row in rows] == [True]
    assert error.message == f"row 2 is longer than {MAX_ROW_BYTES} characters"


def test_an_unterminated_quote_is_a_file_error():
    rows, error = parse_until_invalid(b'task_type,request_data\r\ndocumentation,"{\r\n', CSV)
    assert rows == []
    assert "not valid CSV" in error.message


def test_bytes_that_are_not_utf8_are_a_file_error():
    rows, error = parse_until_invalid(b"task_type,request_data.story_prompt\r\ndocumentation,caf\xe9\r\n", CSV)
    assert rows == []
    assert "not valid UTF-8" in error.message
