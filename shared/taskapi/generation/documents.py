"""What a model is asked to write, as pydantic models. Each model's JSON schema becomes the input
schema of the tool the model must call (so the descriptions here are instructions to the model),
and the same model validates the answer. Rules that depend on the task (how many questions, which
types, how many segments) are checks built from the request, in the `*_checks` functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from taskapi.models import limits

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Paragraph = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]
Terms = Annotated[list[Line], Field(max_length=8)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ----------------------------------------------------------------------------- quiz
class QuizQuestion(_Strict):
    type: Literal["multiple_choice", "true_false"]
    question: Paragraph = Field(description="The question, or for true_false the statement to judge.")
    options: list[Line] | None = Field(
        default=None,
        description="multiple_choice: exactly 4 distinct options, one of them the answer. true_false: omit.",
    )
    answer: Line | bool = Field(
        description="multiple_choice: the correct option, written exactly as in options. true_false: true or false."
    )
    explanation: Paragraph = Field(description="One or two sentences on why the answer is right.")
    source_sentence: Paragraph | None = Field(
        default=None,
        description="When the prompt is a text: the sentence of the prompt the question is drawn from, "
        "copied word for word. Omit when the prompt is only a topic.",
    )

    @model_validator(mode="after")
    def _answer_fits_type(self) -> QuizQuestion:
        if self.type == "multiple_choice":
            if self.options is None or len(self.options) != 4:
                raise ValueError("a multiple_choice question needs exactly 4 options")
            if len({option.casefold() for option in self.options}) != 4:
                raise ValueError("the 4 options must be distinct")
            if not isinstance(self.answer, str) or self.answer not in self.options:
                raise ValueError("a multiple_choice answer must be one of its options, written exactly the same")
        else:
            if self.options is not None:
                raise ValueError("a true_false question has no options")
            if not isinstance(self.answer, bool):
                raise ValueError("a true_false answer must be true or false")
        return self


class QuizDocument(_Strict):
    """A quiz on the prompt."""

    title: Line
    questions: list[QuizQuestion] = Field(min_length=1, max_length=limits.MAX_QUESTIONS)


def quiz_checks(
    num_questions: int, question_types: list[str], source_text: str | None
) -> Callable[[QuizDocument], list[str]]:
    """Exactly `num_questions` questions, of the allowed types only, no question twice, and (when
    the prompt is a text) each source_sentence found in it."""
    allowed = set(question_types)
    text = _normal(source_text) if source_text else None

    def check(document: QuizDocument) -> list[str]:
        problems: list[str] = []
        if len(document.questions) != num_questions:
            problems.append(f"write exactly {num_questions} questions (this answer has {len(document.questions)})")
        seen: set[str] = set()
        for number, question in enumerate(document.questions, start=1):
            if question.type not in allowed:
                problems.append(
                    f"question {number} is {question.type}; only {', '.join(sorted(allowed))} questions are allowed"
                )
            key = _normal(question.question)
            if key in seen:
                problems.append(f"question {number} repeats an earlier question")
            seen.add(key)
            if text is not None:
                if question.source_sentence is None:
                    problems.append(f"question {number} needs the source_sentence it is drawn from")
                elif _normal(question.source_sentence) not in text:
                    problems.append(
                        f"question {number}'s source_sentence is not a sentence of the prompt, word for word"
                    )
        return problems

    return check


# ----------------------------------------------------------------------------- documentation
class DocumentationSection(_Strict):
    heading: Line = Field(description="The section's heading, without '#'.")
    markdown: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=12_000)] = Field(
        description="The section's body in Markdown: paragraphs, lists, tables, code blocks. "
        "No level-1 or level-2 headings (use ### and below)."
    )


class KeyTerm(_Strict):
    term: Line
    definition: Paragraph


class DocumentationDocument(_Strict):
    """Documentation on the prompt, in sections."""

    title: Line
    overview: Paragraph = Field(description="Two to four sentences saying what the document covers.")
    sections: list[DocumentationSection] = Field(min_length=1, max_length=30)
    key_terms: list[KeyTerm] = Field(default_factory=list, max_length=20)


def documentation_checks() -> Callable[[DocumentationDocument], list[str]]:
    def check(document: DocumentationDocument) -> list[str]:
        problems: list[str] = []
        headings = [_normal(section.heading) for section in document.sections]
        if len(set(headings)) != len(headings):
            problems.append("section headings must be distinct")
        for number, section in enumerate(document.sections, start=1):
            if any(line.startswith(("# ", "## ")) for line in section.markdown.splitlines()):
                problems.append(f"section {number} uses a level-1 or level-2 heading inside its markdown")
        return problems

    return check


# ----------------------------------------------------------------------------- animated lesson
class LessonScene(_Strict):
    kind: Literal["title", "explanation", "example", "recap"]
    title: Line
    narration: Paragraph = Field(description="What the narrator says in this scene (about 15-80 words).")
    on_screen_text: Line = Field(description="Short text shown on screen (a few words).")
    visual: Paragraph = Field(description="What the animation shows, for an animator.")
    animation: Literal["title-card", "key-term-reveal", "narrated-illustration", "diagram-build", "summary-list"]
    key_terms: Terms = Field(default_factory=list)


class LessonTimeline(_Strict):
    """An animated lesson: a title scene, then explanations and examples, then a recap."""

    title: Line
    scenes: list[LessonScene] = Field(min_length=2, max_length=40)


def lesson_checks() -> Callable[[LessonTimeline], list[str]]:
    def check(timeline: LessonTimeline) -> list[str]:
        problems: list[str] = []
        if timeline.scenes[0].kind != "title":
            problems.append('the first scene must be the title scene (kind "title")')
        if timeline.scenes[-1].kind != "recap":
            problems.append('the last scene must be a recap (kind "recap")')
        return problems

    return check


# ----------------------------------------------------------------------------- video script
class ScriptSegment(_Strict):
    title: Line = Field(description="The segment's on-screen title (a few words).")
    narration: Paragraph = Field(description="What the narrator says in this segment (about 20-120 words).")
    key_terms: Terms = Field(default_factory=list, description="Terms shown on screen as they are spoken.")
    image_prompt: Paragraph = Field(description="A description of the illustration for this segment, no text in it.")


class VideoScript(_Strict):
    """A narrated video's script, one entry per segment, in order."""

    title: Line
    segments: list[ScriptSegment] = Field(min_length=1, max_length=limits.MAX_SEGMENTS)


def script_checks(segments: int | None) -> Callable[[VideoScript], list[str]]:
    """Exactly `segments` segments (None: as many as the content needs, within the schema's limit)."""

    def check(script: VideoScript) -> list[str]:
        if segments is not None and len(script.segments) != segments:
            return [f"write exactly {segments} segments (this answer has {len(script.segments)})"]
        return []

    return check


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())
