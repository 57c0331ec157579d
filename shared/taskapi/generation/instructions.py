"""What a model is told for each task type: the task's settings in words, and the rules the answer
is checked against afterwards (the checks in taskapi.generation.documents say the same things, so a
repair request quotes rules the model was given)."""

from __future__ import annotations

from taskapi.engines.text import split_sentences, word_count
from taskapi.generation.base import GenerationRequest
from taskapi.generation.documents import (
    DocumentationDocument,
    LessonTimeline,
    QuizDocument,
    VideoScript,
    documentation_checks,
    lesson_checks,
    quiz_checks,
    script_checks,
)

TEXT_SENTENCES = 2
"""A prompt with at least this many complete sentences is a text to draw from; fewer, a topic."""
_DIFFICULTY = {
    "easy": "easy: the main ideas, plainly worded; distractors clearly wrong to someone who read the material",
    "medium": "medium: the main ideas and their relations; plausible distractors",
    "hard": "hard: details, exceptions and applications; distractors close to the answer",
}
_GROUNDING_TEXT = (
    "The prompt is a text. Use only what it says: every fact must come from it, and nothing it does not say "
    "may be stated as true."
)
_GROUNDING_TOPIC = (
    "The prompt names a topic. Write accurate, well-established material at the level of an introductory "
    "course; never invent figures, quotations or references."
)


def is_text(prompt: str) -> bool:
    """A text (complete sentences to draw from) rather than a topic or a title."""
    sentences = [s for s in split_sentences(prompt) if word_count(s) >= 5 and s.rstrip()[-1:] in ".!?…"]
    return len(sentences) >= TEXT_SENTENCES


def _common(language: str, prompt: str) -> list[str]:
    return [
        f"Write in {language}.",
        _GROUNDING_TEXT if is_text(prompt) else _GROUNDING_TOPIC,
        "Answer only by calling the tool, with every required field.",
    ]


def quiz_request(
    prompt: str, language: str, difficulty: str, count: int, types: list[str]
) -> GenerationRequest[QuizDocument]:
    text = is_text(prompt)
    lines = [
        "You write quiz questions for an online course.",
        *_common(language, prompt),
        f"Write exactly {count} questions. Difficulty {_DIFFICULTY[difficulty]}.",
        f"Question types allowed: {', '.join(types)}"
        + ("; mix them about evenly." if len(types) > 1 else "; use no other type."),
        "multiple_choice: exactly 4 distinct options, one correct; the answer is that option written exactly "
        "as in the options. true_false: a statement; the answer is true or false; about half of them false.",
        "Every question has a short explanation of its answer. No two questions ask the same thing.",
        "For each question, copy into source_sentence the sentence of the prompt it is drawn from, word for word."
        if text
        else "Leave source_sentence out.",
    ]
    return GenerationRequest(
        kind="quiz",
        instructions="\n".join(lines),
        prompt=prompt,
        output=QuizDocument,
        check=quiz_checks(count, types, prompt if text else None),
        max_output_tokens=min(8192, 600 + 250 * count),
    )


def documentation_request(prompt: str, language: str) -> GenerationRequest[DocumentationDocument]:
    lines = [
        "You write course documentation: clear, structured reference material for learners.",
        *_common(language, prompt),
        "Give a title, a short overview, then sections in a logical order (usually 3 to 8), each with a heading "
        "and a Markdown body (paragraphs, lists, tables or code blocks where they help; headings inside a body "
        "start at ###). Close with the key terms and their definitions.",
    ]
    return GenerationRequest(
        kind="documentation",
        instructions="\n".join(lines),
        prompt=prompt,
        output=DocumentationDocument,
        check=documentation_checks(),
        max_output_tokens=8192,
    )


def lesson_request(prompt: str, language: str) -> GenerationRequest[LessonTimeline]:
    lines = [
        "You script short animated lessons: scenes an animator builds and a narrator reads.",
        *_common(language, prompt),
        "Start with one title scene (kind title, animation title-card) and end with one recap scene (kind recap, "
        "animation summary-list); between them, explanation and example scenes in teaching order (usually 4 to "
        "12). Each scene: narration of about 15 to 80 words, a few words of on-screen text, what the animation "
        "shows, and the key terms it introduces.",
    ]
    return GenerationRequest(
        kind="animated_lesson",
        instructions="\n".join(lines),
        prompt=prompt,
        output=LessonTimeline,
        check=lesson_checks(),
        max_output_tokens=8192,
    )


def script_request(
    prompt: str, language: str, segments: int | None, image_style: str | None, theme: str | None
) -> GenerationRequest[VideoScript]:
    count = (
        f"exactly {segments} segments" if segments is not None else "as many segments as the content needs, at most 50"
    )
    lines = [
        "You script narrated educational videos: each segment is a slide with a title and key terms on screen "
        "while the narrator speaks.",
        *_common(language, prompt),
        f"Write {count}, in order: an opening, the explanation, a closing recap.",
        "Each segment: a short title, narration of about 20 to 120 words (spoken text only, no stage directions), "
        "up to 5 key terms that appear in its narration, and an image prompt describing an illustration with no "
        "text in it.",
    ]
    if image_style:
        lines.append(f"Illustration style: {image_style}.")
    if theme:
        lines.append(f"Theme: {theme}.")
    return GenerationRequest(
        kind="video_script",
        instructions="\n".join(lines),
        prompt=prompt,
        output=VideoScript,
        check=script_checks(segments),
        max_output_tokens=min(8192, 500 + 300 * (segments or 20)),
    )
