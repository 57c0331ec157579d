"""Video engine: a storyboard package a renderer (or a person) can turn into a narrated video.

Files: manifest.json (primary: render settings, branding URLs, timeline), storyboard.json (the
creative content of each segment) and, when include_subtitles is true, subtitles.vtt. Timings are
milliseconds from the start of the narrated content, i.e. after any intro video.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskapi.engines.analysis import Analysis, analyse
from taskapi.engines.base import Artifact, ArtifactFile, ProgressCallback
from taskapi.engines.formats import JSON, VTT, Cue, json_bytes, narration_ms, seconds, timed_cues, webvtt
from taskapi.engines.inputs import is_english, language_of, parse_request
from taskapi.engines.planning import Block, Narrator, block_heading, block_terms, natural_units, plan
from taskapi.models import limits
from taskapi.models.domain import TaskType
from taskapi.models.requests import VideoRequestData

DEFAULT_RESOLUTION = "1920*1080"
DEFAULT_VOICE_RATE = 1.0
MAX_SEGMENTS = limits.MAX_SEGMENTS
_PROGRESS_START, _PROGRESS_END = 15.0, 80.0
_BRANDING = ("logo_url", "intro_video_url", "outro_video_url")


class VideoEngine:
    task_type = TaskType.VIDEO

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(VideoRequestData, request_data)
        language = language_of(data.language)
        rate = float(data.voice_rate) if data.voice_rate is not None else DEFAULT_VOICE_RATE
        resolution = data.resolution or DEFAULT_RESOLUTION
        width, height = (int(part) for part in resolution.split("*"))
        subtitles = bool(data.include_subtitles)

        progress(5, "Reading the prompt")
        analysis = analyse(data.story_prompt, language)
        narrator = Narrator(analysis, "video", is_english(language))
        count = (
            min(MAX_SEGMENTS, len(natural_units(analysis, narrator)))
            if data.segments == "maximum"
            else int(data.segments)
        )

        progress(_PROGRESS_START, f"Planning {count} segments")
        blocks = plan(analysis, narrator, count)
        segments: list[dict[str, Any]] = []
        cues: list[Cue] = []
        cursor = 0
        every = max(1, -(-count // 8))  # about eight progress reports, whatever the count
        for number, block in enumerate(blocks, start=1):
            if number == 1 or number % every == 0:
                share = (number - 1) / count
                progress(
                    round(_PROGRESS_START + 1 + share * (_PROGRESS_END - _PROGRESS_START - 1), 1),
                    f"Segment {number} of {count}",
                )
            duration = narration_ms(block.words, rate)
            terms = block_terms(analysis, block)
            segments.append(
                {
                    "index": number,
                    "title": block_heading(analysis, block, terms, narrator.english),
                    "narration": block.text,
                    "key_terms": terms,
                    "image_prompt": _image_prompt(analysis, block, terms, data.image_style, data.theme, number, count),
                    "word_count": block.words,
                    "start_ms": cursor,
                    "end_ms": cursor + duration,
                    "duration_seconds": seconds(duration),
                    "source_sentences": list(block.sentences),
                }
            )
            if subtitles:
                cues.extend(timed_cues(block.text, cursor, cursor + duration))
            cursor += duration

        files = []
        if subtitles:
            progress(84, "Writing subtitles")
            files.append(ArtifactFile("subtitles.vtt", VTT, webvtt(cues)))

        progress(90, "Writing manifest")
        manifest: dict[str, Any] = {
            "version": 1,
            "task_type": TaskType.VIDEO.value,
            "title": analysis.title,
            "language": language,
            "resolution": resolution,
            "width": width,
            "height": height,
            "theme": data.theme,
            "image_style": data.image_style,
            "voice_name": data.voice_name,
            "voice_rate": rate,
            "include_subtitles": subtitles,
        }
        for name in _BRANDING:
            value = getattr(data, name)
            if value is not None:
                manifest[name] = value
        manifest |= {
            "segment_count": len(segments),
            "total_duration_ms": cursor,
            "total_duration_seconds": seconds(cursor),
            "timing": "milliseconds from the start of the narration (after any intro video)",
            "files": {"storyboard": "storyboard.json", **({"subtitles": "subtitles.vtt"} if subtitles else {})},
            "segments": [
                {
                    key: segment[key]
                    for key in ("index", "start_ms", "end_ms", "duration_seconds", "narration", "image_prompt")
                }
                for segment in segments
            ],
        }
        storyboard = {
            "title": analysis.title,
            "language": language,
            "subject": analysis.subject,
            "segments": segments,
        }
        files = [
            ArtifactFile("manifest.json", JSON, json_bytes(manifest)),
            ArtifactFile("storyboard.json", JSON, json_bytes(storyboard)),
            *files,
        ]
        return Artifact(
            files=tuple(files),
            primary="manifest.json",
            summary={
                "title": analysis.title,
                "segments": len(segments),
                "segments_requested": data.segments,
                "duration_seconds": seconds(cursor),
                "words": sum(s["word_count"] for s in segments),
                "subtitles": subtitles,
                "resolution": resolution,
            },
        )


def _image_prompt(
    analysis: Analysis,
    block: Block,
    terms: list[str],
    style: str | None,
    theme: str | None,
    number: int,
    count: int,
) -> str:
    if block.role == "intro":
        scene = f"an inviting opening scene about {analysis.subject_phrase}"
    elif block.role == "recap":
        scene = f"a closing scene that brings together {', '.join(terms) or analysis.subject_phrase}"
    else:
        scene = " ".join(block.text.split()[:24]).rstrip(" .,;:!?")
        scene += "…" if len(block.text.split()) > 24 else ""
    parts = [
        f"{style.strip() if style and style.strip() else 'Clear educational'} style illustration for a video on "
        f"{analysis.title}, scene {number} of {count}",
        f"depicting: {scene}",
    ]
    if terms:
        parts.append(f"focus on {', '.join(terms)}")
    if theme and theme.strip():
        parts.append(f"theme: {theme.strip()}")
    parts.append("no text in the image")
    return "; ".join(parts) + "."
