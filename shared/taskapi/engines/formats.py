"""Byte-exact writers for the artifact formats: JSON, Markdown text, WebVTT, and the timing rules the
video and lesson engines share."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskapi.engines.text import normalize_space, split_clauses, split_sentences, split_words_evenly

JSON = "application/json"
MARKDOWN = "text/markdown; charset=utf-8"
VTT = "text/vtt; charset=utf-8"

WORDS_PER_MINUTE = 150
"""Narration speed at voice_rate 1.0."""
MIN_SEGMENT_MS = 3_000
"""No segment or scene is shorter than this, however few its words: viewers need time to look."""

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])(?=\s)")
_VTT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def json_bytes(document: Any) -> bytes:
    """Stable JSON: insertion-ordered keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode()


def md_escape(text: str) -> str:
    """Make prompt text inert inside Markdown (no stray emphasis, links, tables or HTML)."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    escaped = _MD_ORDERED.sub(r"\1\\\2", escaped)
    return "\\" + escaped if escaped[:1] in ("#", "+", "-", "=") else escaped


def narration_ms(words: int, voice_rate: float = 1.0) -> int:
    """Spoken duration of `words` at WORDS_PER_MINUTE × voice_rate, never below MIN_SEGMENT_MS."""
    spoken = round(words * 60_000 / (WORDS_PER_MINUTE * voice_rate))
    return max(MIN_SEGMENT_MS, spoken)


def seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def vtt_timestamp(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def wrap(text: str, width: int = 42) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def timed_cues(text: str, start_ms: int, end_ms: int, max_words: int = 14) -> list[Cue]:
    """Cut one segment's narration into subtitle cues of at most max_words words (two short lines),
    sharing [start_ms, end_ms) in proportion to their words, back to back."""
    chunks = cue_texts(text, max_words)
    total = sum(len(chunk.split()) for chunk in chunks) or 1
    cues, done, cursor = [], 0, start_ms
    for index, chunk in enumerate(chunks):
        done += len(chunk.split())
        cue_end = end_ms if index == len(chunks) - 1 else start_ms + (end_ms - start_ms) * done // total
        cues.append(Cue(cursor, cue_end, chunk))
        cursor = cue_end
    return cues


def cue_texts(text: str, max_words: int = 14) -> list[str]:
    """Subtitle-sized pieces: sentences, long ones cut at clauses and then between words, short
    neighbours joined while they fit."""
    pieces: list[str] = []
    for sentence in split_sentences(normalize_space(text)) or [text]:
        for clause in split_clauses(sentence) if len(sentence.split()) > max_words else [sentence]:
            size = len(clause.split())
            pieces.extend(split_words_evenly(clause, -(-size // max_words)) if size > max_words else [clause])
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1].split()) + len(piece.split()) <= max_words:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged or [""]


def webvtt(cues: Sequence[Cue]) -> bytes:
    blocks = ["WEBVTT"]
    for number, cue in enumerate(cues, start=1):
        text = "".join(_VTT_ESCAPES.get(ch, ch) for ch in cue.text)
        lines = "\n".join(wrap(text))
        blocks.append(f"{number}\n{vtt_timestamp(cue.start_ms)} --> {vtt_timestamp(cue.end_ms)}\n{lines}")
    return ("\n\n".join(blocks) + "\n").encode()


def quiz_markdown(document: dict[str, Any]) -> bytes:
    """quiz.md: the questions, then the answer key (with each answer's explanation or source)."""
    lines = [
        f"# {md_escape(document['title'])}",
        "",
        f"Difficulty: {document['difficulty']} · {len(document['questions'])} questions · {document['language']}",
        "",
        "## Questions",
        "",
    ]
    for number, question in enumerate(document["questions"], start=1):
        prefix = "True or false: " if question["type"] == "true_false" else ""
        lines.append(f"{number}. {prefix}{md_escape(question['question'])}")
        for letter, option in zip("ABCD", question.get("options", []), strict=False):
            lines.append(f"   - {letter}) {md_escape(option)}")
        lines.append("")
    lines += ["## Answer key", ""]
    for number, question in enumerate(document["questions"], start=1):
        answer = question["answer"]
        if isinstance(answer, bool):
            shown = "True" if answer else "False"
        else:
            shown = f"{'ABCD'[question['options'].index(answer)]}) {md_escape(answer)}"
        why = question.get("explanation") or question.get("source_sentence")
        lines.append(f"{number}. {shown}" + (f" — {md_escape(why)}" if why else ""))
    return ("\n".join(lines) + "\n").encode()


def timeline_document(
    title: str, language: str, scenes: list[dict[str, Any]], total_ms: int, **extra: Any
) -> dict[str, Any]:
    """timeline.json of an animated lesson: its scenes back to back, with the totals (and `extra`
    facts before the scenes)."""
    return {
        "version": 1,
        "task_type": "animated_lesson",
        "title": title,
        "language": language,
        "scene_count": len(scenes),
        "total_duration_ms": total_ms,
        "total_duration_seconds": seconds(total_ms),
        **extra,
        "scenes": scenes,
    }
