"""Animated-lesson engine: a timeline of scenes with narration, on-screen text and timings."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest

from taskapi.engines import EngineError
from taskapi.engines.animated_lesson import MAX_SCENES, AnimatedLessonEngine
from taskapi.engines.formats import MIN_SEGMENT_MS
from taskapi.engines.text import normalize_space
from tests.unit.engines.conftest import LONG, PYTHAGORAS, REFERENCE, ProgressLog


def timeline(**request: Any) -> dict[str, Any]:
    artifact = AnimatedLessonEngine().generate({"story_prompt": PYTHAGORAS, **request}, ProgressLog())
    return json.loads(artifact.file("timeline.json").body)


def test_lesson_opens_with_a_title_scene_and_closes_with_a_recap():
    scenes = timeline()["scenes"]

    assert scenes[0]["kind"] == "title"
    assert scenes[0]["on_screen_text"] == "Pythagorean Theorem and Right Triangle"
    assert scenes[-1]["kind"] == "recap"
    assert {s["kind"] for s in scenes[1:-1]} == {"explanation"}


def test_one_scene_per_prompt_sentence_in_order():
    scenes = timeline()["scenes"]

    assert len(scenes) == 8
    assert " ".join(s["narration"] for s in scenes[1:-1]) == normalize_space(PYTHAGORAS)


def test_scenes_are_back_to_back_and_add_up_to_the_total():
    document = timeline()
    scenes = document["scenes"]

    assert scenes[0]["start_ms"] == 0
    assert all(a["end_ms"] == b["start_ms"] for a, b in pairwise(scenes))
    assert all(s["end_ms"] - s["start_ms"] >= MIN_SEGMENT_MS for s in scenes)
    assert scenes[-1]["end_ms"] == document["total_duration_ms"]
    assert document["scene_count"] == len(scenes)


def test_every_scene_has_narration_and_short_on_screen_text():
    for scene in timeline()["scenes"]:
        assert scene["narration"].strip()
        assert 0 < len(scene["on_screen_text"]) <= 80
        assert scene["animation"]
        assert scene["visual"]


def test_on_screen_text_is_a_key_term_of_the_scene():
    scenes = timeline()["scenes"]

    for scene in scenes[1:-1]:
        assert scene["on_screen_text"].lower() in scene["narration"].lower()


def test_instruction_prompt_gets_an_outline_of_a_scene_per_topic_that_says_so():
    artifact = AnimatedLessonEngine().generate({"story_prompt": REFERENCE}, ProgressLog())
    document = json.loads(artifact.file("timeline.json").body)
    scenes = document["scenes"]

    assert [s["kind"] for s in scenes] == ["title", "topic", "topic", "topic"]
    assert [s["on_screen_text"] for s in scenes[1:]] == ["Basic mathematics concepts", "Addition", "Subtraction"]
    # Each scene narrates only the name it shows: no framing, no invented statement.
    assert [s["narration"] for s in scenes[1:]] == ["Basic mathematics concepts.", "Addition.", "Subtraction."]
    assert document["outline"] is True
    assert document["notes"] == artifact.summary["notes"]
    assert artifact.summary["notes"][0].startswith("Outline only: the prompt names 3 topics but gives no text")
    assert "AnimatedLessonProvider=bedrock" in artifact.summary["notes"][1]
    text = json.dumps(document)
    assert not [p for p in ("Welcome!", "Let us", "Next,", "To sum up", "we explore") if p in text]


def test_topic_title_gets_a_scene_per_part():
    scenes = timeline(story_prompt="Pythagoras and right triangles")["scenes"]

    assert [s["narration"] for s in scenes] == ["Pythagoras and right triangles.", "Pythagoras.", "Right triangles."]


def test_one_word_prompt_makes_a_title_scene_and_says_it_is_an_outline():
    document = timeline(story_prompt="Fractions")

    assert [s["narration"] for s in document["scenes"]] == ["Fractions."]
    assert document["scenes"][0]["end_ms"] == document["total_duration_ms"] >= MIN_SEGMENT_MS
    assert document["notes"][0].startswith("Outline only: the prompt gives a title but no text")


def test_prompt_that_names_nothing_is_a_permanent_error():
    with pytest.raises(EngineError) as caught:
        timeline(story_prompt="The the the and of a.")

    assert caught.value.permanent is True
    assert "AnimatedLessonProvider=bedrock" in str(caught.value)


def test_prompt_with_text_has_no_outline_notes():
    document = timeline()

    assert "outline" not in document
    assert "notes" not in document


def test_long_prompt_is_capped():
    scenes = timeline(story_prompt=LONG)["scenes"]

    assert len(scenes) == MAX_SCENES
    assert scenes[0]["kind"] == "title"
    assert scenes[-1]["kind"] == "recap"
