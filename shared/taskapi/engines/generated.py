"""Engines whose content a generation provider writes (a model through Amazon Bedrock): the quiz,
the documentation and the lesson timeline come back as validated documents and are written to the
same files, in the same shapes, as the built-in engines write. (The video engine takes a provider
for its script itself: taskapi.engines.video.)

A provider's failure is the task's: a GenerationError becomes an EngineError with the same
permanence and its details (validation errors, stop reason, usage) in the task's error_details."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from taskapi.engines.base import Artifact, ArtifactFile, ContentEngine, EngineError, ProgressCallback
from taskapi.engines.formats import (
    JSON,
    MARKDOWN,
    json_bytes,
    md_escape,
    narration_ms,
    quiz_markdown,
    seconds,
    timeline_document,
)
from taskapi.engines.inputs import language_of, parse_request
from taskapi.generation.base import Generated, GenerationError, GenerationRequest, Generator
from taskapi.generation.documents import DocumentationDocument, LessonTimeline, QuizDocument
from taskapi.generation.instructions import documentation_request, lesson_request, quiz_request
from taskapi.models.domain import TaskType
from taskapi.models.requests import (
    DEFAULT_NUM_QUESTIONS,
    QUESTION_TYPES,
    AnimatedLessonRequestData,
    DocumentationRequestData,
    QuizRequestData,
)

Document = TypeVar("Document", bound=BaseModel)


def written_by(
    generator: Generator,
    request: GenerationRequest[Document],
    progress: ProgressCallback,
    *,
    asking: float = 10.0,
    writing: float = 80.0,
) -> Generated[Document]:
    """Ask the provider, reporting progress before (at `asking` percent) and after (`writing`) the
    call; its errors as the engine's."""
    progress(asking, f"Asking {generator.model_id} to write the {request.kind.replace('_', ' ')}")
    try:
        generated = generator.generate(request)
    except GenerationError as exc:
        raise EngineError(
            f"{generator.provider} ({generator.model_id}): {exc.detail}",
            permanent=exc.permanent,
            details={"provider": generator.provider, "model_id": generator.model_id, **exc.details},
        ) from exc
    calls = "1 model call" if generated.calls == 1 else f"{generated.calls} model calls"
    progress(writing, f"The {request.kind.replace('_', ' ')} is written ({calls})")
    return generated


class GeneratedQuizEngine:
    task_type = TaskType.QUIZ

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(QuizRequestData, request_data)
        language = language_of(data.language)
        count = data.num_questions or DEFAULT_NUM_QUESTIONS[data.difficulty]
        types = [kind for kind in QUESTION_TYPES if kind in (data.question_types or QUESTION_TYPES)]
        generated = written_by(
            self.generator, quiz_request(data.story_prompt, language, data.difficulty, count, types), progress
        )
        quiz: QuizDocument = generated.document
        questions = []
        for number, question in enumerate(quiz.questions, start=1):
            entry: dict[str, Any] = {"id": f"q{number}", "type": question.type, "question": question.question}
            if question.options is not None:
                entry["options"] = list(question.options)
            entry["answer"] = question.answer
            entry["explanation"] = question.explanation
            if question.source_sentence is not None:
                entry["source_sentence"] = question.source_sentence
            questions.append(entry)
        document = {
            "title": quiz.title,
            "language": language,
            "difficulty": data.difficulty,
            "question_types": types,
            "questions": questions,
        }
        summary = {
            "title": quiz.title,
            "difficulty": data.difficulty,
            "requested_questions": count,
            "produced_questions": len(questions),
            "question_types": {kind: sum(1 for q in questions if q["type"] == kind) for kind in types},
            **generated.summary(),
        }
        return Artifact(
            files=(
                ArtifactFile("quiz.json", JSON, json_bytes(document)),
                ArtifactFile("quiz.md", MARKDOWN, quiz_markdown(document)),
            ),
            primary="quiz.json",
            summary=summary,
        )


class GeneratedDocumentationEngine:
    task_type = TaskType.DOCUMENTATION

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(DocumentationRequestData, request_data)
        language = language_of(data.language)
        generated = written_by(self.generator, documentation_request(data.prompt, language), progress)
        doc: DocumentationDocument = generated.document
        lines = [f"# {md_escape(doc.title)}", "", doc.overview, ""]
        for section in doc.sections:
            lines += [f"## {md_escape(section.heading)}", "", section.markdown, ""]
        if doc.key_terms:
            lines += ["## Key terms", ""]
            lines += [f"- **{md_escape(term.term)}** — {md_escape(term.definition)}" for term in doc.key_terms]
            lines.append("")
        text = "\n".join(lines).rstrip("\n") + "\n"
        return Artifact(
            files=(ArtifactFile("document.md", MARKDOWN, text.encode()),),
            primary="document.md",
            summary={
                "title": doc.title,
                "language": language,
                "sections": len(doc.sections),
                "headings": [section.heading for section in doc.sections],
                "key_terms": len(doc.key_terms),
                "words": len(text.split()),
                **generated.summary(),
            },
        )


class GeneratedLessonEngine:
    task_type = TaskType.ANIMATED_LESSON

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(AnimatedLessonRequestData, request_data)
        language = language_of(data.language)
        generated = written_by(self.generator, lesson_request(data.prompt, language), progress)
        lesson: LessonTimeline = generated.document
        scenes, cursor = [], 0
        for number, scene in enumerate(lesson.scenes, start=1):
            duration = narration_ms(len(scene.narration.split()))
            scenes.append(
                {
                    "index": number,
                    "kind": scene.kind,
                    "title": scene.title,
                    "start_ms": cursor,
                    "end_ms": cursor + duration,
                    "duration_seconds": seconds(duration),
                    "narration": scene.narration,
                    "on_screen_text": scene.on_screen_text,
                    "key_terms": list(scene.key_terms),
                    "animation": scene.animation,
                    "visual": scene.visual,
                }
            )
            cursor += duration
        timeline = timeline_document(lesson.title, language, scenes, cursor)
        return Artifact(
            files=(ArtifactFile("timeline.json", JSON, json_bytes(timeline)),),
            primary="timeline.json",
            summary={
                "title": lesson.title,
                "scenes": len(scenes),
                "duration_seconds": seconds(cursor),
                "words": sum(len(scene.narration.split()) for scene in lesson.scenes),
                **generated.summary(),
            },
        )


def generated_engine(task_type: str, generator: Generator) -> ContentEngine:
    """The engine of `task_type` whose content `generator` writes."""
    if task_type == TaskType.VIDEO.value:
        from taskapi.engines.video import VideoEngine

        return VideoEngine(script_writer=generator)
    engines: dict[str, type[GeneratedQuizEngine | GeneratedDocumentationEngine | GeneratedLessonEngine]] = {
        TaskType.QUIZ.value: GeneratedQuizEngine,
        TaskType.DOCUMENTATION.value: GeneratedDocumentationEngine,
        TaskType.ANIMATED_LESSON.value: GeneratedLessonEngine,
    }
    if task_type not in engines:
        raise KeyError(f"no generated engine for task type {task_type!r}")
    return engines[task_type](generator)
