"""Video engine: a narrated MP4, with its storyboard.

Files: video.mp4 (primary: H.264 + AAC, faststart, at the requested resolution), manifest.json
(render settings, branding URLs, timeline), storyboard.json (the creative content of each segment)
and, when include_subtitles is true, subtitles.vtt (on the MP4's timeline; the subtitles are burned
in too). Each segment lasts as long as its narration really takes, spoken by the configured
narrator (eSpeak NG offline, Amazon Polly in AWS). The logo and intro/outro videos a task names are
fetched under the media fetcher's rules (https, no private addresses, size and time limits).

Progress moves through planning, branding (fetched first, so a refused URL costs no narration),
narration (per segment), rendering (per segment) and the final packaging; a cancel stops the run
at its next progress report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskapi.engines.analysis import Analysis, analyse
from taskapi.engines.base import Artifact, ArtifactFile, EngineError, ProgressCallback
from taskapi.engines.formats import JSON, MIN_SEGMENT_MS, VTT, json_bytes, seconds
from taskapi.engines.inputs import is_english, language_of, parse_request
from taskapi.engines.planning import Block, Narrator, block_heading, block_terms, natural_units, plan
from taskapi.engines.text import word_count
from taskapi.media.fetch import Fetched, FetchError, fetch
from taskapi.media.narration import NarrationError
from taskapi.media.narration import Narrator as Voice
from taskapi.models import limits
from taskapi.models.domain import TaskType
from taskapi.models.requests import VideoRequestData

if TYPE_CHECKING:
    from taskapi.generation.base import Generator
    from taskapi.media.speech import Speech

DEFAULT_RESOLUTION = "1920*1080"
DEFAULT_VOICE_RATE = 1.0
MAX_SEGMENTS = limits.MAX_SEGMENTS
MP4 = "video/mp4"
PAUSE_SECONDS = 0.4
"""Silence after each segment's narration, so one segment does not run into the next."""
_BRANDING = ("logo_url", "intro_video_url", "outro_video_url")
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
CLIP_TYPES = ("video/",)
# Progress bands of the stages (percent): planning, branding, narration, rendering, packaging.
_BRANDING_AT = 6.0
_NARRATION = (8.0, 38.0)
_RENDERING = (40.0, 92.0)
_MANIFEST_SEGMENT_KEYS = ("index", "start_ms", "end_ms", "duration_seconds", "narration", "image_prompt")
_REPORTS = 8
"""About this many progress reports per stage, whatever the segment count: each is a write."""


@dataclass(frozen=True)
class MediaFetch:
    """How the engine fetches what a task names: limits, and whether loopback http is allowed (the
    local stack's own servers)."""

    timeout_seconds: float = 20.0
    logo_max_bytes: int = 5 * 1024 * 1024
    clip_max_bytes: int = 200 * 1024 * 1024
    allow_loopback_http: bool = False

    def __call__(self, url: str, kind: str, directory: Path) -> Fetched:
        logo = kind == "logo"
        return fetch(
            url,
            max_bytes=self.logo_max_bytes if logo else self.clip_max_bytes,
            timeout_seconds=self.timeout_seconds,
            accept=LOGO_TYPES if logo else CLIP_TYPES,
            allow_loopback_http=self.allow_loopback_http,
            directory=directory,
        )


@dataclass(frozen=True)
class Planned:
    """One segment as written, before it is narrated: by the built-in planner or a model."""

    title: str
    narration: str
    key_terms: tuple[str, ...]
    image_prompt: str
    source_sentences: tuple[int, ...] = ()
    """Indexes of the prompt sentences the narration comes from (built-in planner only)."""

    @property
    def words(self) -> int:
        return word_count(self.narration)


@dataclass(frozen=True)
class Script:
    title: str
    subject: str | None
    segments: list[Planned]
    generation: dict[str, Any]
    """What result_summary records about a model-written script (empty for the built-in planner)."""


Fetcher = Callable[[str, str, Path], Fetched]
"""fetcher(url, kind: "logo" | "intro" | "outro", directory) -> the fetched file."""


def configured_voice() -> Voice:
    """The narrator the settings name (TASKAPI_NARRATION_PROVIDER)."""
    from taskapi.media.narration import narrator_for
    from taskapi.settings import get_settings

    return narrator_for(get_settings().narration_provider)


def configured_fetch() -> MediaFetch:
    from taskapi.settings import get_settings

    settings = get_settings()
    return MediaFetch(
        timeout_seconds=settings.media_fetch_timeout_seconds,
        logo_max_bytes=settings.media_logo_max_bytes,
        clip_max_bytes=settings.media_clip_max_bytes,
        allow_loopback_http=settings.environment == "local",
    )


class VideoEngine:
    task_type = TaskType.VIDEO

    def __init__(
        self, voice: Voice | None = None, fetcher: Fetcher | None = None, script_writer: Generator | None = None
    ) -> None:
        """The narrator and the fetcher, by default the configured ones, made at the first video (the
        settings are read then, not at import); and who writes the script: the built-in planner
        (the prompt's own sentences) or a generation provider."""
        self._voice = voice
        self._fetcher = fetcher
        self._script_writer = script_writer

    def _narrator(self) -> Voice:
        if self._voice is None:
            self._voice = configured_voice()
        return self._voice

    def _fetch(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = configured_fetch()
        return self._fetcher

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(VideoRequestData, request_data)
        language = language_of(data.language)
        rate = float(data.voice_rate) if data.voice_rate is not None else DEFAULT_VOICE_RATE
        resolution = data.resolution or DEFAULT_RESOLUTION
        subtitles = bool(data.include_subtitles)

        progress(2, "Reading the prompt")
        if self._script_writer is None:
            script = _planned_script(data, language, progress)
        else:
            script = _written_script(self._script_writer, data, language, progress)
        planned = script.segments
        count = len(planned)

        # The renderer (PyAV, Pillow) loads with the first video, not at import: functions that
        # import the engines but never render (the dead-letter function) ship without it.
        from taskapi.media.render import RenderError, RenderOptions, Scene, render, webvtt

        with tempfile.TemporaryDirectory(prefix="taskapi-video-") as scratch:
            directory = Path(scratch)
            # Branding first: a refused URL fails the task before any narration is paid for.
            if any(getattr(data, name) for name in _BRANDING):
                progress(_BRANDING_AT, "Fetching the logo and intro/outro videos")
            branding = self._branding(data, directory)
            speeches = self._narrate(planned, language, data.voice_name, rate, progress)
            segments, cursor = _segments(planned, speeches)
            options = RenderOptions.from_resolution(
                resolution,
                image_style=data.image_style,
                theme=data.theme,
                include_subtitles=subtitles,
                logo=branding["logo"].read_bytes() if branding["logo"] else None,
                intro=branding["intro"].path if branding["intro"] else None,
                outro=branding["outro"].path if branding["outro"] else None,
            )
            scenes = [
                Scene(title=segment["title"], narration=speech, terms=segment["key_terms"], text=segment["narration"])
                for segment, speech in zip(segments, speeches, strict=True)
            ]
            out = directory / "video.mp4"
            try:
                result = render(scenes, options, out, progress=_render_progress(progress, count))
            except RenderError as exc:
                raise EngineError(f"the video could not be rendered: {exc.detail}", permanent=True) from exc
            progress(94, "Packaging the video")
            video = out.read_bytes()

        files = [ArtifactFile("video.mp4", MP4, video)]
        if subtitles:
            files.append(ArtifactFile("subtitles.vtt", VTT, webvtt(list(result.cues))))
        listed = {
            "video": "video.mp4",
            "storyboard": "storyboard.json",
            **({"subtitles": "subtitles.vtt"} if subtitles else {}),
        }
        manifest = _manifest(
            script.title, language, resolution, data, rate, subtitles, segments, cursor, result, listed
        )
        storyboard = {"title": script.title, "language": language, "subject": script.subject, "segments": segments}
        files += [
            ArtifactFile("manifest.json", JSON, json_bytes(manifest)),
            ArtifactFile("storyboard.json", JSON, json_bytes(storyboard)),
        ]
        return Artifact(
            files=tuple(files),
            primary="video.mp4",
            summary={
                "title": script.title,
                "segments": len(segments),
                "segments_requested": data.segments,
                "duration_seconds": result.duration_seconds,
                "resolution": f"{result.width}*{result.height}",
                "size_bytes": result.size_bytes,
                "words": sum(s["word_count"] for s in segments),
                "subtitles": subtitles,
                "narration": self._narrator().name,
                "files": [f.name for f in files],
                **script.generation,
            },
        )

    # ------------------------------------------------------------------ stages
    def _narrate(
        self, blocks: list[Planned], language: str, voice_name: str | None, rate: float, progress: ProgressCallback
    ) -> list[Speech]:
        try:
            narrator = self._narrator()
        except NarrationError as exc:  # e.g. eSpeak configured where its library is not installed
            raise EngineError(f"narration is not available: {exc}", permanent=not exc.retryable) from exc
        speeches = []
        every = max(1, -(-len(blocks) // _REPORTS))
        low, high = _NARRATION
        for number, block in enumerate(blocks, start=1):
            if (number - 1) % every == 0:
                share = (number - 1) / len(blocks)
                progress(round(low + share * (high - low), 1), f"Narrating segment {number} of {len(blocks)}")
            try:
                speech = narrator.speak(block.narration, language=language, voice_name=voice_name, rate=rate)
            except NarrationError as exc:
                raise EngineError(f"narration failed: {exc}", permanent=not exc.retryable) from exc
            # Viewers need time to look, whatever the segment's words: at least MIN_SEGMENT_MS.
            short = max(0.0, MIN_SEGMENT_MS / 1000 - speech.duration_seconds - PAUSE_SECONDS)
            speeches.append(speech.padded(after=PAUSE_SECONDS + short))
        return speeches

    def _branding(self, data: VideoRequestData, directory: Path) -> dict[str, Fetched | None]:
        fetcher = self._fetch()
        fetched: dict[str, Fetched | None] = {}
        for kind, url in (("logo", data.logo_url), ("intro", data.intro_video_url), ("outro", data.outro_video_url)):
            if url is None:
                fetched[kind] = None
                continue
            try:
                fetched[kind] = fetcher(url, kind, directory)
            except FetchError as exc:
                # A refused address or type fails at once; a network failure after the type's retries.
                raise EngineError(f"the {kind} could not be fetched: {exc.detail}", permanent=exc.permanent) from exc
        return fetched


def _planned_script(data: VideoRequestData, language: str, progress: ProgressCallback) -> Script:
    """The built-in planner: the prompt's own sentences, grouped or split into the segments asked for."""
    analysis = analyse(data.story_prompt, language)
    narrator = Narrator(analysis, "video", is_english(language))
    count = (
        min(MAX_SEGMENTS, len(natural_units(analysis, narrator))) if data.segments == "maximum" else int(data.segments)
    )
    progress(5, f"Planning {count} segments")
    planned = []
    for number, block in enumerate(plan(analysis, narrator, count), start=1):
        terms = block_terms(analysis, block)
        planned.append(
            Planned(
                title=block_heading(analysis, block, terms, narrator.english),
                narration=block.text,
                key_terms=tuple(terms),
                image_prompt=_image_prompt(analysis, block, terms, data.image_style, data.theme, number, count),
                source_sentences=block.sentences,
            )
        )
    return Script(analysis.title, analysis.subject, planned, {})


def _written_script(writer: Generator, data: VideoRequestData, language: str, progress: ProgressCallback) -> Script:
    """A generation provider writes the script: exactly the segments asked for, or as many as the
    content needs when the task says "maximum"."""
    from taskapi.engines.generated import written_by
    from taskapi.generation.instructions import script_request

    segments = None if data.segments == "maximum" else int(data.segments)
    request = script_request(data.story_prompt, language, segments, data.image_style, data.theme)
    generated = written_by(writer, request, progress, asking=3.0, writing=5.0)
    script = generated.document
    planned = [
        Planned(segment.title, segment.narration, tuple(segment.key_terms), segment.image_prompt)
        for segment in script.segments
    ]
    return Script(script.title, None, planned, generated.summary())


def _render_progress(progress: ProgressCallback, count: int) -> Callable[[str, float], None]:
    """The renderer's progress(message, fraction) as the engine's, at most about _REPORTS reports."""
    low, high = _RENDERING
    step = 1 / _REPORTS
    reported = [-1.0]

    def report(message: str, fraction: float) -> None:
        if fraction < 1.0 and fraction - reported[0] < step:
            return
        reported[0] = fraction
        progress(
            round(low + min(fraction, 1.0) * (high - low), 1),
            message if fraction < 1.0 else f"Rendered {count} segments",
        )

    return report


def _segments(planned: list[Planned], speeches: list[Speech]) -> tuple[list[dict[str, Any]], int]:
    segments: list[dict[str, Any]] = []
    elapsed = Fraction(0)
    cursor = 0
    for number, (segment, speech) in enumerate(zip(planned, speeches, strict=True), start=1):
        # Exact sums of samples, rounded once per boundary: the timeline ends where the MP4 does.
        elapsed += Fraction(speech.sample_count, speech.sample_rate)
        end = round(elapsed * 1000)
        duration = end - cursor
        segments.append(
            {
                "index": number,
                "title": segment.title,
                "narration": segment.narration,
                "key_terms": list(segment.key_terms),
                "image_prompt": segment.image_prompt,
                "word_count": segment.words,
                "start_ms": cursor,
                "end_ms": end,
                "duration_seconds": seconds(duration),
                "source_sentences": list(segment.source_sentences),
            }
        )
        cursor = end
    return segments, cursor


def _manifest(
    title: str,
    language: str,
    resolution: str,
    data: VideoRequestData,
    rate: float,
    subtitles: bool,
    segments: list[dict[str, Any]],
    cursor: int,
    result: Any,
    listed: dict[str, str],
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "version": 2,
        "task_type": TaskType.VIDEO.value,
        "title": title,
        "language": language,
        "resolution": resolution,
        "width": result.width,
        "height": result.height,
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
    return manifest | {
        "segment_count": len(segments),
        "narration_duration_ms": cursor,
        "total_duration_seconds": result.duration_seconds,
        "size_bytes": result.size_bytes,
        "timing": "segments: milliseconds from the start of the narration (after any intro video); "
        "subtitles.vtt: the MP4's own timeline",
        "files": listed,
        "segments": [{key: segment[key] for key in _MANIFEST_SEGMENT_KEYS} for segment in segments],
    }


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
