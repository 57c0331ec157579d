"""Animated-lesson engine: a scene timeline (timeline.json) an animation tool can play.

A title scene opens the lesson and a recap scene closes it; in between, one scene per sentence of the
prompt (long sentences split, neighbours grouped when there are more than MAX_SCENES). Each scene has
its narration, a short on-screen text (its key term), an animation hint and back-to-back timings.

The built-in engine has no model and says nothing of its own about a topic: a prompt that only names
topics (no complete sentence) gets an outline timeline, a title scene and one scene per topic whose
narration is the topic's name, no recap, with `outline` and `notes` in the timeline and the summary
saying so and how to get a narrated lesson. A prompt that names nothing is a permanent error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskapi.engines.analysis import Analysis, analyse, outline_notes
from taskapi.engines.base import Artifact, ArtifactFile, EngineError, ProgressCallback
from taskapi.engines.formats import JSON, json_bytes, narration_ms, seconds, timeline_document
from taskapi.engines.inputs import is_english, language_of, parse_request
from taskapi.engines.planning import Block, Narrator, block_heading, block_terms, framed_plan
from taskapi.engines.text import ensure_period
from taskapi.models.domain import TaskType
from taskapi.models.requests import AnimatedLessonRequestData

MAX_SCENES = 40
PROVIDER_HINT = "configure a model provider (e.g. AnimatedLessonProvider=bedrock)"
_ANIMATION = {
    "intro": "title-card",
    "recap": "summary-list",
    "topic": "key-term-reveal",
    "review": "key-term-reveal",
    "prompt": "narrated-illustration",
}


class AnimatedLessonEngine:
    task_type = TaskType.ANIMATED_LESSON

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(AnimatedLessonRequestData, request_data)
        language = language_of(data.language)
        english = is_english(language)

        progress(10, "Reading the prompt")
        analysis = analyse(data.prompt, language)
        if not analysis.has_text:
            return _outline(analysis, language, progress)
        narrator = Narrator(analysis, "lesson", english)

        progress(30, "Planning scenes")
        blocks = framed_plan(analysis, narrator, MAX_SCENES)

        progress(60, f"Timing {len(blocks)} scenes")
        scenes, cursor = [], 0
        for number, block in enumerate(blocks, start=1):
            duration = narration_ms(block.words)
            terms = block_terms(analysis, block)
            scenes.append(
                {
                    "index": number,
                    "kind": _kind(block),
                    "start_ms": cursor,
                    "end_ms": cursor + duration,
                    "duration_seconds": seconds(duration),
                    "narration": block.text,
                    "on_screen_text": _on_screen_text(analysis, block, terms, english),
                    "key_terms": terms,
                    "animation": _ANIMATION[block.role],
                    "visual": _visual(analysis, block, terms),
                }
            )
            cursor += duration

        progress(85, "Writing timeline")
        timeline = timeline_document(analysis.title, language, scenes, cursor)
        return Artifact(
            files=(ArtifactFile("timeline.json", JSON, json_bytes(timeline)),),
            primary="timeline.json",
            summary={
                "title": analysis.title,
                "scenes": len(scenes),
                "duration_seconds": seconds(cursor),
                "words": sum(block.words for block in blocks),
            },
        )


def _outline(analysis: Analysis, language: str, progress: ProgressCallback) -> Artifact:
    """What a prompt without complete sentences honestly supports: a title scene and a scene per
    topic it names, each narrating only that name."""
    title, topics = analysis.outline()
    if not title:
        raise EngineError(
            "the built-in animated-lesson engine only narrates text it is given, and this prompt names no "
            f"topic and gives no text; send the content itself as story_prompt, or {PROVIDER_HINT}",
            permanent=True,
        )
    progress(50, "Outlining scenes")
    notes = outline_notes(topics, "lesson", "scene", "a narrated lesson", PROVIDER_HINT)
    scenes, cursor = [], 0
    for number, (kind, text) in enumerate([("title", title), *(("topic", topic) for topic in topics)], start=1):
        narration = ensure_period(text)
        duration = narration_ms(len(narration.split()))
        scenes.append(
            {
                "index": number,
                "kind": kind,
                "start_ms": cursor,
                "end_ms": cursor + duration,
                "duration_seconds": seconds(duration),
                "narration": narration,
                "on_screen_text": text,
                "key_terms": [] if kind == "title" else [text],
                "animation": "title-card" if kind == "title" else "key-term-reveal",
                "visual": f"Title card: {text}" if kind == "title" else f"Heading card: {text}",
            }
        )
        cursor += duration
    timeline = timeline_document(title, language, scenes, cursor, outline=True, notes=notes)
    return Artifact(
        files=(ArtifactFile("timeline.json", JSON, json_bytes(timeline)),),
        primary="timeline.json",
        summary={
            "title": title,
            "scenes": len(scenes),
            "duration_seconds": seconds(cursor),
            "words": sum(len(str(scene["narration"]).split()) for scene in scenes),
            "outline": True,
            "notes": notes,
        },
    )


def _kind(block: Block) -> str:
    return {"intro": "title", "recap": "recap"}.get(block.role, "explanation")


def _on_screen_text(analysis: Analysis, block: Block, terms: list[str], english: bool) -> str:
    if block.role == "recap" and terms:
        return " · ".join(terms)
    if block.role != "intro" and not terms:
        caption = block.text.split()
        return " ".join(caption[:6]) + ("…" if len(caption) > 6 else "")
    return block_heading(analysis, block, terms, english)


def _visual(analysis: Analysis, block: Block, terms: list[str]) -> str:
    if block.role == "intro":
        return f"Title card: {analysis.title}"
    if block.role == "recap":
        return f"Checklist of {', '.join(terms) or analysis.subject_phrase} appearing one by one"
    if terms:
        return f"Animated diagram of {', '.join(terms)}, with {terms[0]} highlighted as it is spoken"
    return "Animated illustration of the narration"
