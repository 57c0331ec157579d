"""JSON: the bulk body without its limit, streamed; settings read in a pass of their own."""

from __future__ import annotations

import io
import json

import pytest

from taskapi.ingest.formats import UploadFormat
from taskapi.ingest.json_document import read_json_settings
from taskapi.ingest.rows import MAX_ROW_BYTES, FileInvalid, derived_task_id
from taskapi.models.requests import SharedVideoSettings

from .support import UPLOAD, fields, messages, parse, parse_until_invalid, quiz, video

JSON = UploadFormat.JSON
SETTINGS = {
    "logo_url": "https://example.com/logo.png",
    "intro_video_url": "https://example.com/intro.mp4",
    "outro_video_url": "https://example.com/outro.mp4",
}


def document(tasks: list, settings_first: bool = True, **settings: object) -> bytes:
    body = {**settings, "tasks": tasks} if settings_first else {"tasks": tasks, **settings}
    return json.dumps(body, indent=2).encode()


def settings_of(data: bytes) -> SharedVideoSettings:
    return read_json_settings(io.BytesIO(data))


def test_every_task_is_a_row_numbered_by_its_index():
    tasks = [video(task_id="v-1"), quiz(), {"task_type": "documentation"}, *[quiz() for _ in range(200)]]
    data = document(tasks, **SETTINGS)

    rows = parse(data, JSON)

    assert len(rows) == 203  # no limit of 100
    assert [row.row for row in rows[:3]] == [1, 2, 3]
    assert all(row.ok for row in rows)
    assert rows[0].task_id == "v-1"
    assert rows[1].task_id == derived_task_id(UPLOAD, 2)
    assert rows[1].task.request_data.difficulty == "easy"
    assert settings_of(data) == SharedVideoSettings(**SETTINGS)


def test_settings_after_the_tasks_array_are_found():
    data = document([video(), video()], settings_first=False, **SETTINGS)
    assert data.index(b'"tasks"') < data.index(b'"logo_url"')

    assert settings_of(data) == SharedVideoSettings(**SETTINGS)
    assert [row.ok for row in parse(data, JSON)] == [True, True]


def test_no_settings_are_no_settings():
    assert settings_of(document([video()])) == SharedVideoSettings()
    assert settings_of(document([], logo_url=None)) == SharedVideoSettings()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"logo_url": "ftp://example.com/logo.png"}, "logo_url: String should match pattern"),
        ({"intro_video_url": {"url": "https://example.com/i.mp4"}}, "intro_video_url: Input should be a valid string"),
        ({"outro_video_url": [1, 2]}, "outro_video_url: Input should be a valid string"),
    ],
)
def test_invalid_settings_are_a_file_error(settings, expected):
    with pytest.raises(FileInvalid) as caught:
        settings_of(document([video()], settings_first=False, **settings))
    assert expected in caught.value.message


def test_numbers_keep_their_json_types():
    task = video()
    task["request_data"]["voice_rate"] = 1.5
    rows = parse(document([task]), JSON)
    assert rows[0].task.request_data.voice_rate == 1.5


def test_invalid_tasks_are_invalid_rows_and_later_tasks_still_parse():
    tasks = [
        {"task_type": "video", "request_data": {"story_prompt": "x"}},
        5,
        ["a", {"b": 1}],
        {"task_type": "quiz", "unknown": 1, "request_data": {"story_prompt": "x", "difficulty": "easy"}},
        quiz(),
    ]

    rows = parse(document(tasks), JSON)

    assert [row.ok for row in rows] == [False, False, False, False, True]
    assert fields(rows[0]) == ["request_data.segments"]
    assert messages(rows[1]) == ["task is not a JSON object"]
    assert messages(rows[2]) == ["task is not a JSON object"]
    assert fields(rows[3]) == ["unknown"]
    assert rows[4].row == 5


def test_a_task_over_the_limit_is_an_invalid_row_and_the_next_one_parses():
    huge = {"task_type": "documentation", "pad": ["x" * 1000] * (2 * MAX_ROW_BYTES // 1000)}
    fits = {"task_type": "documentation", "pad": "y" * (MAX_ROW_BYTES - 100)}  # invalid, but not too large

    rows = parse(document([video(), huge, fits, quiz()]), JSON)

    assert [row.ok for row in rows] == [True, False, False, True]
    assert messages(rows[1]) == [f"task is larger than {MAX_ROW_BYTES} bytes"]
    assert fields(rows[2]) == ["pad"]


def test_a_truncated_document_fails_after_the_rows_before_the_cut():
    data = document([video(), quiz(), video(), quiz()], settings_first=False, **SETTINGS)
    cut = data[: data.index(b'"task_type"', data.index(b'"quiz"') + 300)]  # inside the fourth task

    rows, error = parse_until_invalid(cut, JSON)

    assert [row.row for row in rows] == [1, 2, 3]
    assert all(row.ok for row in rows)
    assert error.message.startswith("the document is not valid JSON: ")
    with pytest.raises(FileInvalid):
        settings_of(cut)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[]", 'not a JSON object with a "tasks" array'),
        (b'"tasks"', 'not a JSON object with a "tasks" array'),
        (b'{"logo_url": null}', 'not a JSON object with a "tasks" array'),
        (b'{"tasks": {"task_type": "video"}}', 'not a JSON object with a "tasks" array'),
        (b'{"tasks": [], "tasks": []}', 'the key "tasks" twice'),
        (b'{"tasks": [], "priority": "high"}', 'unknown key "priority"'),
        (b'{"tasks": []} {"tasks": []}', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"tasks": [{"task_type": "documentation", "request_data": {"story_prompt": "\xff"}}]}', "not valid JSON"),
    ],
)
def test_a_document_of_another_shape_is_a_file_error(data, expected):
    with pytest.raises(FileInvalid) as caught:
        parse(data, JSON)
    assert expected in caught.value.message
    with pytest.raises(FileInvalid):
        settings_of(data)


def test_rows_before_a_shape_error_stay_yielded():
    data = b'{"tasks": [{"task_type": "documentation"}], "colour": "red"}'

    rows, error = parse_until_invalid(data, JSON)

    assert [row.ok for row in rows] == [True]
    assert 'unknown key "colour"' in error.message


def test_empty_tasks_array_has_no_rows():
    assert parse(b'{"tasks": []}', JSON) == []
