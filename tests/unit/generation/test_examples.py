"""The example documents (tests/support/generation_examples.py) are answers the engines would accept:
valid against their model as a provider's JSON answer, and passing the checks of the request the
engine builds for EXAMPLE_PROMPT. The README shows them and the cost benchmark counts their tokens."""

from __future__ import annotations

import json

import pytest

from taskapi.generation.documents import LessonTimeline, QuizDocument, VideoScript
from taskapi.generation.instructions import is_text, quiz_request
from tests.support.generation_examples import (
    EXAMPLE_DOCUMENTATION,
    EXAMPLE_LESSON,
    EXAMPLE_PROMPT,
    EXAMPLE_QUIZ,
    EXAMPLE_SCRIPT,
    Example,
    examples,
)


def test_the_prompt_is_a_text_so_answers_must_be_grounded_in_it() -> None:
    assert is_text(EXAMPLE_PROMPT)


def test_the_quiz_passes_its_check() -> None:
    request = quiz_request(EXAMPLE_PROMPT, "English", "easy", 5, ["multiple_choice", "true_false"])
    assert request.check(EXAMPLE_QUIZ) == []


@pytest.mark.parametrize("example", examples(), ids=lambda example: example.task_type)
def test_each_example_passes_its_requests_check(example: Example) -> None:
    assert isinstance(example.document, example.request.output)
    assert example.request.check(example.document) == []


@pytest.mark.parametrize("example", examples(), ids=lambda example: example.task_type)
def test_each_example_is_valid_as_a_models_json_answer(example: Example) -> None:
    """What the tool call would carry: the document as JSON, validated by the request's model."""
    answer = json.loads(example.document.model_dump_json(exclude_none=True))
    assert example.request.output.model_validate(answer) == example.document


def test_the_quiz_mixes_its_types_and_quotes_the_prompt() -> None:
    assert isinstance(EXAMPLE_QUIZ, QuizDocument)
    types = [question.type for question in EXAMPLE_QUIZ.questions]
    assert len(types) == 5
    assert set(types) == {"multiple_choice", "true_false"}
    true_false = [question.answer for question in EXAMPLE_QUIZ.questions if question.type == "true_false"]
    assert set(true_false) == {True, False}
    for question in EXAMPLE_QUIZ.questions:
        assert question.explanation
        assert question.source_sentence is not None
        assert question.source_sentence in EXAMPLE_PROMPT


def test_the_documentation_has_an_overview_sections_and_key_terms() -> None:
    assert EXAMPLE_DOCUMENTATION.overview
    assert 3 <= len(EXAMPLE_DOCUMENTATION.sections) <= 4
    assert EXAMPLE_DOCUMENTATION.key_terms


def test_the_lesson_runs_from_a_title_through_explanations_and_examples_to_a_recap() -> None:
    assert isinstance(EXAMPLE_LESSON, LessonTimeline)
    kinds = [scene.kind for scene in EXAMPLE_LESSON.scenes]
    assert kinds[0] == "title"
    assert kinds[-1] == "recap"
    assert len(kinds[1:-1]) >= 4
    assert set(kinds[1:-1]) == {"explanation", "example"}
    for scene in EXAMPLE_LESSON.scenes:
        assert 15 <= len(scene.narration.split()) <= 80


def test_the_script_has_five_segments_whose_key_terms_are_spoken() -> None:
    assert isinstance(EXAMPLE_SCRIPT, VideoScript)
    assert len(EXAMPLE_SCRIPT.segments) == 5
    for segment in EXAMPLE_SCRIPT.segments:
        assert 20 <= len(segment.narration.split()) <= 120
        assert len(segment.key_terms) <= 5
        for term in segment.key_terms:
            assert term.casefold() in segment.narration.casefold()
