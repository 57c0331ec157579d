"""What a client may send when creating tasks: the rules by task type and the bulk limits."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from taskapi.models.requests import TOO_MANY_TASKS, BulkCreateRequest, TaskCreate
from tests import factories

task_adapter: TypeAdapter = TypeAdapter(TaskCreate)


def errors_of(body: dict, model=BulkCreateRequest) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return caught.value.errors()


def locs(errors: list[dict]) -> list[tuple]:
    return [tuple(e["loc"]) for e in errors]


def test_video_needs_story_prompt_and_segments():
    errors = errors_of(factories.bulk(factories.video(request_data={"content": "Lesson about mathematics"})))
    assert ("tasks", 0, "video", "request_data", "story_prompt") in locs(errors)
    assert ("tasks", 0, "video", "request_data", "segments") in locs(errors)


def test_the_reference_video_example_is_refused_naming_both_fields_in_words():
    """The reference's authentication example: a video whose request_data is {"content": ...}."""
    errors = errors_of(
        {"tasks": [{"task_id": "task_001", "task_type": "video", "priority": "high", "request_data": {"content": "x"}}]}
    )
    by_field = {e["loc"][-1]: e for e in errors}
    assert set(by_field) == {"story_prompt", "segments"}
    assert all(e["type"] == "missing" for e in errors)
    assert by_field["story_prompt"]["msg"] == (
        "Field required: a video task's request_data needs story_prompt, the text or topic to narrate; "
        "content is read as the prompt only for documentation and animated_lesson tasks"
    )
    assert by_field["segments"]["msg"] == (
        'Field required: a video task\'s request_data needs segments, an integer from 1 to 50 or "maximum"'
    )


def test_a_missing_video_field_is_reported_beside_every_other_error():
    errors = errors_of(factories.bulk(factories.video(request_data={"story_prompt": "x", "language": 7})))
    assert sorted(e["loc"][-1] for e in errors) == ["language", "segments"]


@pytest.mark.parametrize("task_type", ["documentation", "animated_lesson"])
def test_documentation_and_lessons_take_content_as_the_prompt_and_store_it_as_given(task_type):
    task = task_adapter.validate_python({"task_type": task_type, "request_data": {"content": "Lesson about maths"}})
    assert task.request_data_dict() == {"content": "Lesson about maths"}
    assert task.request_data.prompt == "Lesson about maths"
    both = task_adapter.validate_python(
        {"task_type": task_type, "request_data": {"story_prompt": "the prompt", "content": "extra"}}
    )
    assert both.request_data.prompt == "the prompt"


@pytest.mark.parametrize("task_type", ["documentation", "animated_lesson"])
def test_documentation_and_lessons_without_a_prompt_say_what_to_send(task_type):
    errors = errors_of(factories.bulk({"task_type": task_type, "request_data": {"language": "fr"}}))
    assert [(e["loc"][-1], e["type"], e["msg"]) for e in errors] == [
        ("story_prompt", "missing", "Field required: send the prompt as story_prompt (or as content)")
    ]
    blank = errors_of(factories.bulk({"task_type": task_type, "request_data": {"content": "  "}}))
    assert [e["loc"][-1] for e in blank] == ["content"]


@pytest.mark.parametrize("task_type", ["video", "quiz"])
def test_video_and_quiz_do_not_take_content_for_their_prompt(task_type):
    request_data = {"content": "x", "segments": 2} if task_type == "video" else {"content": "x", "difficulty": "easy"}
    errors = errors_of(factories.bulk({"task_type": task_type, "request_data": request_data}))
    assert [e["loc"][-1] for e in errors] == ["story_prompt"]


@pytest.mark.parametrize("segments", [1, 50, "maximum"])
def test_segments_accepts_1_to_50_or_maximum(segments):
    body = factories.video(request_data={"story_prompt": "x", "segments": segments})
    assert task_adapter.validate_python(body).request_data.segments == segments


@pytest.mark.parametrize("segments", [0, 51, "3", 2.5, True, "max", None])
def test_segments_rejects_everything_else(segments):
    errors = errors_of(factories.bulk(factories.video(request_data={"story_prompt": "x", "segments": segments})))
    assert locs(errors) == [("tasks", 0, "video", "request_data", "segments")]


def test_blank_prompt_is_rejected():
    errors = errors_of(factories.bulk(factories.documentation(request_data={"story_prompt": "   "})))
    assert locs(errors) == [("tasks", 0, "documentation", "request_data", "story_prompt")]


def test_quiz_rules():
    ok = task_adapter.validate_python(
        factories.quiz(
            request_data={
                "story_prompt": "text",
                "difficulty": "hard",
                "num_questions": 50,
                "question_types": ["true_false", "multiple_choice"],
            }
        )
    )
    assert ok.request_data.num_questions == 50
    for bad in (
        {"difficulty": "extreme"},
        {"num_questions": 0},
        {"num_questions": 51},
        {"question_types": ["essay"]},
        {"question_types": []},
    ):
        body = factories.quiz(request_data={"story_prompt": "text", "difficulty": "easy", **bad})
        field = next(iter(bad))
        assert [loc[:5] for loc in locs(errors_of(factories.bulk(body)))] == [
            ("tasks", 0, "quiz", "request_data", field)
        ], bad


def test_unknown_request_data_keys_pass_through_to_the_generator():
    body = factories.video(request_data={"story_prompt": "x", "segments": 2, "music": {"track": "calm"}})
    assert task_adapter.validate_python(body).request_data_dict() == {
        "story_prompt": "x",
        "segments": 2,
        "music": {"track": "calm"},
    }


def test_optional_fields_are_type_checked():
    body = factories.video(request_data={"story_prompt": "x", "segments": 2, "include_subtitles": "yes"})
    assert locs(errors_of(factories.bulk(body))) == [("tasks", 0, "video", "request_data", "include_subtitles")]
    body = factories.video(request_data={"story_prompt": "x", "segments": 2, "logo_url": "ftp://host/logo"})
    assert locs(errors_of(factories.bulk(body))) == [("tasks", 0, "video", "request_data", "logo_url")]


def test_unknown_task_type_and_unknown_task_fields_are_rejected():
    assert locs(errors_of(factories.bulk({"task_type": "podcast"}))) == [("tasks", 0)]
    errors = errors_of(factories.bulk(factories.video(task_source_group="batch")))
    assert locs(errors) == [("tasks", 0, "video", "task_source_group")]


def test_request_data_size_is_bounded():
    body = factories.documentation(request_data={"story_prompt": "x", "notes": "y" * 30_000})
    errors = errors_of(factories.bulk(body))
    assert errors[0]["type"] == "request_data_too_large"
    assert errors[0]["loc"][:2] == ("tasks", 0)


def test_empty_task_id_and_source_fields_mean_missing():
    task = task_adapter.validate_python(factories.video(task_id="", task_source_id="", task_source_group_id=""))
    assert task.task_id is None
    assert task.task_source_id is None
    assert task.task_source_group_id is None


@pytest.mark.parametrize("task_id", ["a/b", "a,b", "a b", "a#b", "x" * 129, "abc\n"])
def test_task_ids_that_could_not_be_addressed_are_rejected(task_id):
    errors = errors_of(factories.bulk(factories.video(task_id=task_id)))
    assert locs(errors) == [("tasks", 0, "video", "task_id")]
    if len(task_id) <= 128:
        assert errors[0]["msg"] == "a task_id may contain only letters, digits and . _ : @ ~ + = -"


@pytest.mark.parametrize("task_id", ["bulk", "bulk-cancel", "bulk-regenerate", "requeue-pending"])
def test_task_ids_that_name_an_endpoint_are_refused(task_id):
    errors = errors_of(factories.bulk(factories.video(task_id=task_id)))
    assert locs(errors) == [("tasks", 0, "video", "task_id")]
    assert errors[0]["msg"] == f"'{task_id}' names an endpoint (/api/tasks/{task_id}); choose another task_id"


@pytest.mark.parametrize(
    "value", ["Math 101", "Cours d'été", "数学 – 1", "a/b#c,d", "x" * 256, "  spaced  ", "emoji 📐"]
)
def test_source_fields_take_any_text_without_control_characters(value):
    task = task_adapter.validate_python(
        factories.video(task_source_id=value, task_source_group_id=value, task_source_name=value)
    )
    assert (task.task_source_id, task.task_source_group_id, task.task_source_name) == (value, value, value)


@pytest.mark.parametrize("value", ["tab\there", "line\nbreak", "nul\x00", "del\x7f", "c1\x85", "x" * 257])
@pytest.mark.parametrize("field", ["task_source_id", "task_source_group_id", "task_source_name"])
def test_source_fields_refuse_control_characters_and_more_than_256_characters(field, value):
    errors = errors_of(factories.bulk(factories.video(**{field: value})))
    assert locs(errors) == [("tasks", 0, "video", field)]
    if len(value) <= 256:
        assert errors[0]["msg"] == "must not contain control characters (tabs, line breaks...)"


def test_duplicate_ids_in_one_request_name_both_indexes():
    errors = errors_of(factories.bulk(factories.video("t1"), factories.quiz("t2"), factories.quiz("t1")))
    assert errors[0]["type"] == "duplicate_task_id"
    assert "tasks[2]" in errors[0]["msg"]
    assert "tasks[0]" in errors[0]["msg"]


def test_more_than_100_tasks_is_its_own_error_type():
    errors = errors_of(factories.bulk(*[factories.video()] * 101))
    assert [e["type"] for e in errors] == [TOO_MANY_TASKS]
    assert errors[0]["msg"] == "Cannot create more than 100 tasks at once"


def test_empty_task_list_is_rejected():
    assert locs(errors_of({"tasks": []})) == [("tasks",)]


def test_a_question_type_named_twice_counts_once():
    body = factories.quiz(
        request_data={"story_prompt": "t", "difficulty": "easy", "question_types": ["true_false"] * 2}
    )
    assert task_adapter.validate_python(body).request_data.question_types == ["true_false"]


@pytest.mark.parametrize("resolution", ["1920*1080", "1280*720", "1080*1920", "16*16", "4096*4096", "320*180"])
def test_a_resolution_of_even_sides_from_16_to_4096_is_accepted(resolution):
    body = factories.video(request_data={"story_prompt": "x", "segments": 1, "resolution": resolution})
    assert task_adapter.validate_python(body).request_data.resolution == resolution


@pytest.mark.parametrize("resolution", ["1921*1080", "1920x1080", "14*14", "4098*720", "0016*16", "1920*"])
def test_a_resolution_a_browser_video_cannot_have_is_refused_in_words(resolution):
    errors = errors_of(
        factories.bulk(factories.video(request_data={"story_prompt": "x", "segments": 1, "resolution": resolution}))
    )
    assert locs(errors) == [("tasks", 0, "video", "request_data", "resolution")]
    assert "even number of pixels from 16 to 4096" in errors[0]["msg"]
