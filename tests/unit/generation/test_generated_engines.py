"""Engines whose content a generation provider writes (taskapi.engines.generated, and the video
engine with a script writer): the files a user downloads are the model's validated document in the
built-in engines' shapes, result_summary says who wrote it and what it cost, the request tells the
model the task's settings and its checks hold the answer to them, and a provider's failure is the
task's, with the same permanence and details.

The provider is tests.unit.generation.doubles.ScriptedGenerator; the video is narrated by the tone
double of the video tests at 320×180 (no eSpeak, quick)."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from pydantic import ValidationError

from taskapi.engines import EngineError
from taskapi.engines.generated import (
    GeneratedDocumentationEngine,
    GeneratedLessonEngine,
    GeneratedQuizEngine,
    generated_engine,
)
from taskapi.engines.video import VideoEngine
from taskapi.generation import GenerationError, Generator
from taskapi.generation.documents import (
    DocumentationDocument,
    LessonTimeline,
    QuizDocument,
    ScriptSegment,
    VideoScript,
)
from taskapi.generation.instructions import is_text
from taskapi.models import limits
from taskapi.models.domain import TaskType
from tests.unit.engines.doubles import ServedFiles, ToneNarrator
from tests.unit.engines.mp4 import probe
from tests.unit.generation.doubles import QUESTIONS, TEXT, USAGE, ProgressRecorder, ScriptedGenerator, quiz_document, tf

TOPIC = "Photosynthesis for beginners"
SMALL = "320*180"
GENERATED = {
    "provider": "bedrock",
    "model_id": "test-model",
    "usage": {"input_tokens": USAGE.input_tokens, "output_tokens": USAGE.output_tokens},
    "model_calls": 1,
    "repaired": False,
}
"""What result_summary records about a generation by the double."""


def test_the_prompts_are_a_text_and_a_topic():
    assert is_text(TEXT)
    assert not is_text(TOPIC)


def test_the_double_is_a_generator():
    assert isinstance(ScriptedGenerator(quiz_document()), Generator)


# ------------------------------------------------------------------ quiz
def true_false_questions(count: int) -> list[dict[str, Any]]:
    return [tf(f"Statement number {n} about photosynthesis is true.", n % 2 == 0, f"Reason {n}.") for n in range(count)]


def run_quiz(generator: ScriptedGenerator, progress: ProgressRecorder | None = None, **request: Any):
    data = {"story_prompt": TEXT, "difficulty": "medium", "num_questions": 3, **request}
    return GeneratedQuizEngine(generator).generate(data, progress or ProgressRecorder())


def test_the_quiz_files_are_the_models_questions_with_explanations_and_sources():
    artifact = run_quiz(ScriptedGenerator(quiz_document()))

    assert artifact.primary == "quiz.json"
    assert [f.name for f in artifact.files] == ["quiz.json", "quiz.md"]
    document = json.loads(artifact.file("quiz.json").body)
    assert document["title"] == "Photosynthesis quiz"
    assert (document["language"], document["difficulty"]) == ("English", "medium")
    assert document["question_types"] == ["multiple_choice", "true_false"]
    questions = document["questions"]
    assert [q["id"] for q in questions] == ["q1", "q2", "q3"]
    assert [q["question"] for q in questions] == [q["question"] for q in QUESTIONS]
    for question, written in zip(questions, QUESTIONS, strict=True):
        assert question["explanation"] == written["explanation"]
        assert question["source_sentence"] == written["source_sentence"]
        assert question["source_sentence"] in TEXT
        if question["type"] == "multiple_choice":
            assert len(question["options"]) == 4
            assert question["answer"] in question["options"]
        else:
            assert "options" not in question
            assert question["answer"] is True


def test_quiz_md_lists_the_questions_then_the_answer_key_with_explanations():
    markdown = run_quiz(ScriptedGenerator(quiz_document())).file("quiz.md").body.decode()

    assert markdown.startswith("# Photosynthesis quiz\n")
    assert "Difficulty: medium · 3 questions · English" in markdown
    questions, key = markdown.split("## Answer key")
    assert "## Questions" in questions
    assert "1. Where in the plant does photosynthesis mostly take place?" in questions
    assert "   - B) The leaves" in questions
    assert "3. True or false: Oxygen is released as a by-product of photosynthesis." in questions
    assert "1. B) The leaves — The text says it takes place mostly in the leaves." in key
    assert "2. C) Carbon dioxide — Carbon dioxide comes from the air; water comes from the soil." in key
    assert "3. True — The last sentence says oxygen is released as a by-product." in key


def test_the_quiz_summary_says_who_wrote_it_what_it_cost_and_how_many_questions():
    summary = run_quiz(ScriptedGenerator(quiz_document())).summary

    assert summary == {
        "title": "Photosynthesis quiz",
        "difficulty": "medium",
        "requested_questions": 3,
        "produced_questions": 3,
        "question_types": {"multiple_choice": 2, "true_false": 1},
        **GENERATED,
    }


def test_the_quiz_request_tells_the_model_the_tasks_settings():
    generator = ScriptedGenerator(quiz_document(true_false_questions(7)))

    summary = run_quiz(
        generator,
        story_prompt=TOPIC,
        num_questions=7,
        question_types=["true_false"],
        difficulty="hard",
        language="French",
    ).summary

    (request,) = generator.requests
    assert request.kind == "quiz"
    assert request.output is QuizDocument
    assert request.prompt == TOPIC
    assert "Write in French." in request.instructions
    assert "Write exactly 7 questions." in request.instructions
    assert "Difficulty hard:" in request.instructions
    assert "Question types allowed: true_false; use no other type." in request.instructions
    assert "Leave source_sentence out." in request.instructions  # a topic, not a text
    assert (summary["requested_questions"], summary["question_types"]) == (7, {"true_false": 7})


def test_the_default_question_count_follows_the_difficulty():
    generator = ScriptedGenerator(quiz_document(true_false_questions(5)))

    summary = run_quiz(generator, story_prompt=TOPIC, difficulty="easy", num_questions=None).summary

    assert "Write exactly 5 questions." in generator.request.instructions
    assert summary["requested_questions"] == summary["produced_questions"] == 5


def test_a_text_prompt_asks_for_the_source_sentences():
    generator = ScriptedGenerator(quiz_document())
    run_quiz(generator)

    assert "copy into source_sentence the sentence of the prompt" in generator.request.instructions


def test_the_quiz_check_refuses_a_wrong_count_a_disallowed_type_and_an_invented_source():
    generator = ScriptedGenerator(quiz_document(QUESTIONS[:2]))
    run_quiz(generator, num_questions=2, question_types=["multiple_choice"])
    check = generator.request.check

    assert check(quiz_document(QUESTIONS[:2])) == []
    assert check(quiz_document(QUESTIONS[:1])) == ["write exactly 2 questions (this answer has 1)"]
    assert check(quiz_document([QUESTIONS[0], QUESTIONS[2]])) == [
        "question 2 is true_false; only multiple_choice questions are allowed"
    ]
    invented = {**QUESTIONS[1], "source_sentence": "Plants breathe through their roots at night."}
    assert check(quiz_document([QUESTIONS[0], invented])) == [
        "question 2's source_sentence is not a sentence of the prompt, word for word"
    ]
    unsourced = {key: value for key, value in QUESTIONS[1].items() if key != "source_sentence"}
    assert check(quiz_document([QUESTIONS[0], unsourced])) == ["question 2 needs the source_sentence it is drawn from"]


def test_the_source_sentence_check_ignores_spacing_and_case_but_not_words():
    generator = ScriptedGenerator(quiz_document())
    run_quiz(generator)
    respaced = {
        **QUESTIONS[0],
        "source_sentence": "it takes place  mostly in the LEAVES, inside small structures called",
    }

    assert generator.request.check(quiz_document([respaced, *QUESTIONS[1:]])) == []


def test_a_topic_prompt_does_not_need_source_sentences():
    generator = ScriptedGenerator(quiz_document(true_false_questions(2)))
    run_quiz(generator, story_prompt=TOPIC, num_questions=2)

    assert generator.request.check(quiz_document(true_false_questions(2))) == []


def test_a_model_answer_that_breaks_the_rules_fails_the_task_permanently_naming_the_problems():
    generator = ScriptedGenerator(quiz_document(QUESTIONS[:2]))

    with pytest.raises(EngineError) as caught:
        run_quiz(generator, num_questions=3)

    assert caught.value.permanent is True
    assert caught.value.details == {
        "provider": "bedrock",
        "model_id": "test-model",
        "validation_errors": ["write exactly 3 questions (this answer has 2)"],
    }
    assert "bedrock (test-model)" in caught.value.detail


@pytest.mark.parametrize("permanent", [True, False])
def test_a_generation_error_is_the_engines_with_the_same_permanence_and_details(permanent):
    failure = GenerationError(
        "the model stopped at its output limit",
        permanent=permanent,
        details={"stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 4096}},
    )
    progress = ProgressRecorder()

    with pytest.raises(EngineError) as caught:
        run_quiz(ScriptedGenerator(failure), progress)

    error = caught.value
    assert error.permanent is permanent
    assert error.details == {
        "provider": "bedrock",
        "model_id": "test-model",
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 10, "output_tokens": 4096},
    }
    assert error.detail == "bedrock (test-model): the model stopped at its output limit"
    assert error.__cause__ is failure
    assert progress.calls == [(10.0, "Asking test-model to write the quiz")]


def test_the_quiz_reports_progress_around_the_model_call():
    progress = ProgressRecorder()
    run_quiz(ScriptedGenerator(quiz_document()), progress)

    assert progress.calls == [
        (10.0, "Asking test-model to write the quiz"),
        (80.0, "The quiz is written (1 model call)"),
    ]


def test_bad_request_data_fails_before_the_model_is_asked():
    generator = ScriptedGenerator(quiz_document())

    with pytest.raises(EngineError) as caught:
        GeneratedQuizEngine(generator).generate({"story_prompt": TEXT}, ProgressRecorder())

    assert caught.value.permanent is True
    assert generator.requests == []


# ------------------------------------------------------------------ documentation
DOCUMENTATION = DocumentationDocument.model_validate(
    {
        "title": "Photosynthesis",
        "overview": "How plants make their food from light. This document covers where it happens and what it uses.",
        "sections": [
            {"heading": "Where it happens", "markdown": "Mostly in the **leaves**.\n\n### Chloroplasts\n\nTiny parts."},
            {"heading": "What it uses", "markdown": "- carbon dioxide\n- water\n- light"},
        ],
        "key_terms": [
            {"term": "Chloroplast", "definition": "The part of a plant cell where photosynthesis takes place."},
            {"term": "By-product", "definition": "Something made besides the main product."},
        ],
    }
)


def test_document_md_has_the_title_overview_sections_and_key_terms():
    generator = ScriptedGenerator(DOCUMENTATION)

    artifact = GeneratedDocumentationEngine(generator).generate({"story_prompt": TEXT}, ProgressRecorder())

    assert [f.name for f in artifact.files] == ["document.md"]
    text = artifact.file("document.md").body.decode()
    lines = text.splitlines()
    assert lines[0] == "# Photosynthesis"
    assert lines[2] == DOCUMENTATION.overview
    assert [line for line in lines if line.startswith("## ")] == [
        "## Where it happens",
        "## What it uses",
        "## Key terms",
    ]
    assert "### Chloroplasts" in lines
    assert "- **Chloroplast** — The part of a plant cell where photosynthesis takes place." in lines
    assert "- **By-product** — Something made besides the main product." in lines
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    summary = artifact.summary
    assert (summary["title"], summary["sections"], summary["key_terms"]) == ("Photosynthesis", 2, 2)
    assert summary["headings"] == ["Where it happens", "What it uses"]
    assert summary["language"] == "English"
    assert summary.items() >= GENERATED.items()
    assert generator.request.kind == "documentation"
    assert generator.request.prompt == TEXT


def test_documentation_takes_content_as_its_prompt_and_the_language():
    generator = ScriptedGenerator(DOCUMENTATION)

    GeneratedDocumentationEngine(generator).generate({"content": TOPIC, "language": "German"}, ProgressRecorder())

    assert generator.request.prompt == TOPIC
    assert "Write in German." in generator.request.instructions


def test_the_documentation_check_refuses_repeated_headings_and_level_two_headings_in_a_body():
    generator = ScriptedGenerator(DOCUMENTATION)
    GeneratedDocumentationEngine(generator).generate({"story_prompt": TOPIC}, ProgressRecorder())
    bad = DOCUMENTATION.model_copy(
        update={
            "sections": [DOCUMENTATION.sections[0], DOCUMENTATION.sections[0].model_copy(update={"markdown": "## X"})]
        }
    )

    assert generator.request.check(bad) == [
        "section headings must be distinct",
        "section 2 uses a level-1 or level-2 heading inside its markdown",
    ]


# ------------------------------------------------------------------ animated lesson
def scene(kind: str, title: str, narration: str, animation: str, terms: list[str] | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "title": title,
        "narration": narration,
        "on_screen_text": title,
        "visual": f"An animation about {title.lower()}.",
        "animation": animation,
        "key_terms": terms or [],
    }


SCENES = [
    scene("title", "Photosynthesis", "Welcome to a short lesson on how plants make food.", "title-card"),
    scene(
        "explanation",
        "Light to energy",
        "Green plants turn light into chemical energy inside their leaves, in small parts called chloroplasts.",
        "key-term-reveal",
        ["chloroplast"],
    ),
    scene(
        "example",
        "A leaf at noon",
        "Think of a leaf in the midday sun: it takes in carbon dioxide and gives off oxygen.",
        "narrated-illustration",
    ),
    scene("recap", "Recap", "Plants use light, water and carbon dioxide, and release oxygen.", "summary-list"),
]


def test_timeline_json_has_the_models_scenes_back_to_back():
    generator = ScriptedGenerator(LessonTimeline.model_validate({"title": "How plants eat", "scenes": SCENES}))

    artifact = GeneratedLessonEngine(generator).generate({"story_prompt": TEXT}, ProgressRecorder())

    assert artifact.primary == "timeline.json"
    timeline = json.loads(artifact.file("timeline.json").body)
    assert (timeline["title"], timeline["task_type"], timeline["scene_count"]) == (
        "How plants eat",
        "animated_lesson",
        4,
    )
    scenes = timeline["scenes"]
    assert [s["index"] for s in scenes] == [1, 2, 3, 4]
    assert [s["kind"] for s in scenes] == ["title", "explanation", "example", "recap"]
    assert [s["narration"] for s in scenes] == [s["narration"] for s in SCENES]
    assert [s["animation"] for s in scenes] == [s["animation"] for s in SCENES]
    assert scenes[1]["key_terms"] == ["chloroplast"]
    assert scenes[0]["start_ms"] == 0
    for earlier, later in pairwise(scenes):
        assert earlier["end_ms"] == later["start_ms"]
    for s in scenes:
        assert s["end_ms"] > s["start_ms"]
        assert s["duration_seconds"] == pytest.approx((s["end_ms"] - s["start_ms"]) / 1000, abs=0.001)
    assert timeline["total_duration_ms"] == scenes[-1]["end_ms"]
    # A longer narration lasts longer.
    assert scenes[1]["end_ms"] - scenes[1]["start_ms"] > scenes[0]["end_ms"] - scenes[0]["start_ms"]
    summary = artifact.summary
    assert (summary["title"], summary["scenes"]) == ("How plants eat", 4)
    assert summary["words"] == sum(len(s["narration"].split()) for s in SCENES)
    assert summary.items() >= GENERATED.items()


def test_the_lesson_check_refuses_a_timeline_not_opening_with_a_title_scene():
    good = LessonTimeline.model_validate({"title": "How plants eat", "scenes": SCENES})
    generator = ScriptedGenerator(good)
    GeneratedLessonEngine(generator).generate({"story_prompt": TOPIC}, ProgressRecorder())
    check = generator.request.check

    assert check(good) == []
    untitled = LessonTimeline.model_validate({"title": "How plants eat", "scenes": SCENES[1:]})
    assert check(untitled) == ['the first scene must be the title scene (kind "title")']
    no_recap = LessonTimeline.model_validate({"title": "How plants eat", "scenes": SCENES[:-1]})
    assert check(no_recap) == ['the last scene must be a recap (kind "recap")']


def test_a_lesson_without_a_title_scene_fails_the_task_permanently():
    untitled = LessonTimeline.model_validate({"title": "How plants eat", "scenes": SCENES[1:]})

    with pytest.raises(EngineError) as caught:
        GeneratedLessonEngine(ScriptedGenerator(untitled)).generate({"story_prompt": TOPIC}, ProgressRecorder())

    assert caught.value.permanent is True
    assert caught.value.details["validation_errors"] == ['the first scene must be the title scene (kind "title")']


# ------------------------------------------------------------------ video
def video_script(count: int) -> VideoScript:
    return VideoScript(
        title="Photosynthesis in three minutes",
        segments=[
            ScriptSegment(
                title=f"Part {n}",
                narration=f"In part {n} we look at how green leaves turn sunlight into food for the plant.",
                key_terms=["sunlight", "leaves"] if n % 2 else ["food"],
                image_prompt=f"A watercolour of a green leaf in the sun, scene {n}, no text.",
            )
            for n in range(1, count + 1)
        ],
    )


def run_video(script: VideoScript | GenerationError, progress: ProgressRecorder | None = None, **request: Any):
    narrator = ToneNarrator(seconds_per_word=0.02)
    generator = ScriptedGenerator(script)
    engine = VideoEngine(voice=narrator, fetcher=ServedFiles(), script_writer=generator)
    data = {"story_prompt": TOPIC, "segments": 3, "resolution": SMALL, **request}
    artifact = engine.generate(data, progress or ProgressRecorder())
    return artifact, generator, narrator


def test_the_video_is_the_models_script_narrated_and_rendered():
    script = video_script(3)
    progress = ProgressRecorder()

    artifact, generator, narrator = run_video(script, progress)

    assert artifact.primary == "video.mp4"
    mp4 = probe(artifact.file("video.mp4").body)
    assert [codec for codec, *_ in mp4.video] == ["h264"]
    assert mp4.video[0][1:] == (320, 180)
    assert mp4.seconds > 0
    storyboard = json.loads(artifact.file("storyboard.json").body)
    assert storyboard["title"] == script.title
    segments = storyboard["segments"]
    assert len(segments) == 3
    assert [(s["title"], s["narration"], s["key_terms"], s["image_prompt"]) for s in segments] == [
        (s.title, s.narration, list(s.key_terms), s.image_prompt) for s in script.segments
    ]
    assert [text for text, *_ in narrator.calls] == [s.narration for s in script.segments]
    manifest = json.loads(artifact.file("manifest.json").body)
    assert manifest["title"] == script.title
    assert manifest["segment_count"] == 3
    summary = artifact.summary
    assert (summary["title"], summary["segments"], summary["segments_requested"]) == (script.title, 3, 3)
    assert summary.items() >= GENERATED.items()
    (request,) = generator.requests
    assert request.kind == "video_script"
    assert request.output is VideoScript
    assert "Write exactly 3 segments" in request.instructions


def test_the_video_reports_progress_that_never_goes_back():
    progress = ProgressRecorder()

    run_video(video_script(3), progress)

    percents = progress.percents
    assert percents == sorted(percents), progress.calls
    assert all(0 < p < 100 for p in percents)
    messages = [message for _, message in progress.calls]
    assert "Asking test-model to write the video script" in messages
    assert messages.index("Asking test-model to write the video script") < messages.index(
        "The video script is written (1 model call)"
    )
    assert any(message.startswith("Narrating segment") for message in messages)


def test_a_script_with_another_segment_count_fails_before_any_narration():
    narrator = ToneNarrator()
    engine = VideoEngine(voice=narrator, fetcher=ServedFiles(), script_writer=ScriptedGenerator(video_script(2)))

    with pytest.raises(EngineError) as caught:
        engine.generate({"story_prompt": TOPIC, "segments": 3, "resolution": SMALL}, ProgressRecorder())

    assert caught.value.permanent is True
    assert caught.value.details["validation_errors"] == ["write exactly 3 segments (this answer has 2)"]
    assert caught.value.details["model_id"] == "test-model"
    assert narrator.calls == []


def test_maximum_lets_the_model_choose_the_count_up_to_fifty():
    artifact, generator, _ = run_video(video_script(4), segments="maximum")

    assert len(json.loads(artifact.file("storyboard.json").body)["segments"]) == 4
    assert (artifact.summary["segments"], artifact.summary["segments_requested"]) == (4, "maximum")
    request = generator.request
    assert "as many segments as the content needs, at most 50" in request.instructions
    for count in (1, 17, limits.MAX_SEGMENTS):
        assert request.check(video_script(count)) == []
    with pytest.raises(ValidationError):
        request.output.model_validate(video_script(limits.MAX_SEGMENTS + 1).model_dump())


def test_the_video_request_carries_style_theme_and_language():
    _, generator, narrator = run_video(
        video_script(3), image_style="watercolour", theme="spring garden", language="Spanish"
    )

    instructions = generator.request.instructions
    assert "Write in Spanish." in instructions
    assert "Illustration style: watercolour." in instructions
    assert "Theme: spring garden." in instructions
    assert {language for _, language, *_ in narrator.calls} == {"Spanish"}


def test_a_transient_script_failure_is_retryable_and_nothing_is_narrated():
    narrator = ToneNarrator()
    failure = GenerationError("throttled for too long", permanent=False, details={"throttled": 5})
    engine = VideoEngine(voice=narrator, fetcher=ServedFiles(), script_writer=ScriptedGenerator(failure))

    with pytest.raises(EngineError) as caught:
        engine.generate({"story_prompt": TOPIC, "segments": 3, "resolution": SMALL}, ProgressRecorder())

    assert caught.value.permanent is False
    assert caught.value.details == {"provider": "bedrock", "model_id": "test-model", "throttled": 5}
    assert narrator.calls == []


# ------------------------------------------------------------------ the factory
def test_generated_engine_builds_each_types_engine_around_the_generator():
    generator = ScriptedGenerator(quiz_document())

    engines = {kind: generated_engine(kind, generator) for kind in ("quiz", "documentation", "animated_lesson")}

    assert isinstance(engines["quiz"], GeneratedQuizEngine)
    assert isinstance(engines["documentation"], GeneratedDocumentationEngine)
    assert isinstance(engines["animated_lesson"], GeneratedLessonEngine)
    assert all(engine.generator is generator for engine in engines.values())  # type: ignore[attr-defined]
    video = generated_engine("video", generator)
    assert isinstance(video, VideoEngine)
    assert video.task_type is TaskType.VIDEO
    with pytest.raises(KeyError, match="podcast"):
        generated_engine("podcast", generator)
