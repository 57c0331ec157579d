"""The video renderer: narrated scenes (and an optional intro and outro clip) into an MP4 that
browsers play: H.264 yuv420p + AAC, the index before the media data (faststart).

    result = render(scenes, RenderOptions.from_resolution("1280*720", theme="ocean"), path)

Each scene lasts as long as its narration. Its picture (frames.scene_picture) is drawn once, the
subtitle band over it once per cue; the encoder gets a frame only when the picture changes, plus a
repeat every couple of seconds (encode.Mp4Writer), so the cost follows the content. Narration is
streamed into the encoder scene by scene; no more than a scene's pictures are held at a time.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, UnidentifiedImageError

from taskapi.media import frames
from taskapi.media.encode import AUDIO_RATE, TICKS, Mp4Writer, RenderError, probe_clip

__all__ = [
    "Audio",
    "Pcm",
    "RenderError",
    "RenderOptions",
    "RenderResult",
    "Scene",
    "SubtitleCue",
    "parse_resolution",
    "render",
    "scene_cues",
    "webvtt",
]

DEFAULT_WIDTH, DEFAULT_HEIGHT = 1920, 1080
MIN_SIDE, MAX_SIDE = 16, 4096
"""Picture sides the renderer takes (even numbers only: yuv420p halves both for colour)."""
MAX_LOGO_PIXELS = 40_000_000

Progress = Callable[[str, float], None]
"""progress(message, fraction done 0..1). It may raise (a cancelled task): the file is closed and
removed, and the exception propagates."""


class Pcm(Protocol):
    """Narration as signed 16-bit little-endian mono PCM (narration.Speech has this shape)."""

    @property
    def samples(self) -> bytes: ...

    @property
    def sample_rate(self) -> int: ...


@dataclass(frozen=True)
class Audio:
    samples: bytes
    sample_rate: int


@dataclass(frozen=True)
class SubtitleCue:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Scene:
    title: str
    narration: Pcm
    terms: Sequence[str] = ()
    text: str = ""
    """The narration's words: cut into subtitle cues over its duration when subtitles is None."""
    subtitles: Sequence[SubtitleCue] | None = None
    """Cues relative to the scene's start (they are clipped to its duration)."""


@dataclass(frozen=True)
class RenderOptions:
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    image_style: str | None = None
    theme: str | None = None
    include_subtitles: bool = False
    logo: bytes | None = None
    """An image file's bytes (PNG, JPEG, ...), drawn in the top right corner, transparency kept."""
    intro: Path | None = None
    outro: Path | None = None
    """Video files played before and after the scenes, letterboxed to the size, with their sound."""

    def __post_init__(self) -> None:
        for side in (self.width, self.height):
            if not MIN_SIDE <= side <= MAX_SIDE or side % 2:
                raise RenderError(
                    f"cannot render {self.width}x{self.height}: each side must be an even number of pixels "
                    f"from {MIN_SIDE} to {MAX_SIDE}"
                )

    @classmethod
    def from_resolution(cls, resolution: str | None, **options: Any) -> RenderOptions:
        """Options for a request's "WIDTH*HEIGHT" (None: 1920*1080); the other fields by name."""
        width, height = parse_resolution(resolution)
        return cls(width, height, **options)


@dataclass(frozen=True)
class RenderResult:
    duration_seconds: float
    width: int
    height: int
    size_bytes: int
    segments: int
    """Scenes rendered (the intro and outro not counted)."""
    frames_encoded: int
    cues: tuple[SubtitleCue, ...] = field(default=())
    """Every scene's subtitle cues on the video's own timeline (after any intro), burned in or not:
    webvtt(result.cues) is a track for the MP4."""


def parse_resolution(resolution: str | None) -> tuple[int, int]:
    """ "1280*720" → (1280, 720); None → the default 1920×1080."""
    if resolution is None:
        return DEFAULT_WIDTH, DEFAULT_HEIGHT
    width, sep, height = resolution.partition("*")
    if not (sep and width.isdigit() and height.isdigit()):
        raise RenderError(f'resolution {resolution!r} is not "WIDTH*HEIGHT"')
    return int(width), int(height)


def render(
    scenes: Sequence[Scene],
    options: RenderOptions,
    out_path: Path,
    *,
    progress: Progress | None = None,
) -> RenderResult:
    """Write the MP4 to out_path. Raises RenderError for input that cannot be rendered."""
    if not scenes:
        raise RenderError("there is no scene to render")
    lengths = [_samples(scene.narration, number) for number, scene in enumerate(scenes, start=1)]
    size = (options.width, options.height)
    logo = _logo(options.logo, size)
    palette = frames.palette_for(options.image_style, options.theme)
    clips = [probe_clip(path) if path is not None else None for path in (options.intro, options.outro)]
    channels = max((clip.channels for clip in clips if clip is not None), default=1)
    planned = sum(Fraction(n, s.narration.sample_rate) for n, s in zip(lengths, scenes, strict=True))
    total = float(planned) + sum(clip.seconds for clip in clips if clip is not None) or 1.0
    report = progress or _ignore

    cues: list[SubtitleCue] = []
    writer = Mp4Writer(out_path, options.width, options.height, channels=channels)
    try:
        intro, outro = clips
        if intro is not None:
            report("Encoding the intro", 0.0)
            writer.append_clip(intro)
        origin, elapsed = writer.audio_samples, Fraction(0)
        for number, (scene, length) in enumerate(zip(scenes, lengths, strict=True), start=1):
            start = origin + round(elapsed * TICKS)
            elapsed += Fraction(length, scene.narration.sample_rate)
            end = origin + round(elapsed * TICKS)
            picture = frames.scene_picture(
                size, palette, scene.title, scene.terms, logo=logo, number=number, count=len(scenes)
            )
            timed = scene_cues(scene, (end - start) / TICKS)
            _show_scene(writer, picture, timed if options.include_subtitles else [], start, end)
            writer.append_pcm(scene.narration.samples, scene.narration.sample_rate, until=end)
            cues.extend(_shifted(timed, start / TICKS))
            report(f"Rendered scene {number} of {len(scenes)}", min(0.97, writer.audio_samples / TICKS / total))
        if outro is not None:
            report("Encoding the outro", min(0.97, writer.audio_samples / TICKS / total))
            writer.append_clip(outro)
        report("Finishing the MP4", 0.98)
        writer.close()
        report("Rendered", 1.0)
    except BaseException:
        writer.abort()
        raise
    return RenderResult(
        duration_seconds=round(writer.audio_samples / AUDIO_RATE, 3),
        width=options.width,
        height=options.height,
        size_bytes=out_path.stat().st_size,
        segments=len(scenes),
        frames_encoded=writer.frames_encoded,
        cues=tuple(cues),
    )


def scene_cues(scene: Scene, duration_s: float) -> list[SubtitleCue]:
    """The scene's cues within [0, duration_s): its own, else its narration text cut into cue-sized
    pieces spread over the duration in proportion to their words (as the video engine's VTT)."""
    if scene.subtitles is not None:
        clipped = (SubtitleCue(max(0.0, c.start_s), min(duration_s, c.end_s), c.text.strip()) for c in scene.subtitles)
        return sorted((c for c in clipped if c.text and c.end_s > c.start_s), key=lambda c: c.start_s)
    if not scene.text.strip():
        return []
    # Imported here: the engines package loads every engine, and the video engine uses this module.
    from taskapi.engines.formats import timed_cues

    duration_ms = round(duration_s * 1000)
    return [
        SubtitleCue(cue.start_ms / 1000, cue.end_ms / 1000, cue.text)
        for cue in timed_cues(scene.text, 0, duration_ms)
        if cue.text and cue.end_ms > cue.start_ms
    ]


def webvtt(cues: Sequence[SubtitleCue]) -> bytes:
    """The cues as a WebVTT file (the same writer as the video engine's subtitles.vtt)."""
    from taskapi.engines.formats import Cue
    from taskapi.engines.formats import webvtt as write_vtt

    return write_vtt([Cue(round(c.start_s * 1000), round(c.end_s * 1000), c.text) for c in cues])


def _show_scene(writer: Mp4Writer, picture: Image.Image, cues: Sequence[SubtitleCue], start: int, end: int) -> None:
    """The picture from start to end, with each cue's band over it while the cue runs; a new frame
    only where the text changes."""
    spans: list[tuple[int, str]] = [(start, "")]  # (tick, subtitle shown from then on)
    for cue in cues:
        cue_start, cue_end = start + round(cue.start_s * TICKS), start + round(cue.end_s * TICKS)
        spans = [s for s in spans if s[0] < cue_start] + [(cue_start, cue.text), (cue_end, "")]
    spans = [s for s in spans if start <= s[0] < end]
    merged = [span for i, span in enumerate(spans) if i == 0 or span[1] != spans[i - 1][1]]
    bounds = [tick for tick, _ in merged[1:]] + [end]
    for (tick, text), until in zip(merged, bounds, strict=True):
        shown = frames.with_subtitle(picture, text) if text else picture
        writer.show(writer.picture(shown), tick, until, key=tick == start)


def _shifted(cues: Sequence[SubtitleCue], offset_s: float) -> list[SubtitleCue]:
    return [SubtitleCue(round(c.start_s + offset_s, 3), round(c.end_s + offset_s, 3), c.text) for c in cues]


def _samples(narration: Pcm, number: int) -> int:
    if not 8_000 <= narration.sample_rate <= 192_000:
        raise RenderError(f"scene {number}: narration sample rate {narration.sample_rate} Hz is not supported")
    count = len(narration.samples) // 2
    if count == 0:
        raise RenderError(f"scene {number} has no narration")
    return count


def _logo(data: bytes | None, size: tuple[int, int]) -> Image.Image | None:
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_LOGO_PIXELS:
                raise RenderError(f"the logo is too large ({image.width}x{image.height} pixels)")
            return frames.fit_logo(image, size)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise RenderError(f"the logo is not an image Pillow can read: {exc}") from exc


def _ignore(message: str, fraction: float) -> None:
    return None
