"""PyAV side of the renderer: an MP4 writer (H.264 by libx264, AAC by FFmpeg's native encoder,
moov before mdat) on one timeline counted in audio samples, and the decoding of intro and outro
clips onto it.

Pictures are sent only when they change, then repeated at most every MAX_STILL_SECONDS so that
players and seeking find frames; each frame's packet carries the frame's real duration. So encoding
costs follow the content, not 30 stills a second, and the video ends exactly where the audio does.

Written for PyAV 14 (the newest with manylinux2014 wheels, what `sam build` installs for the
python3.11 runtime): its frames have no duration, so durations travel on packets, by pts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.filter import Graph
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import ColorRange, Colorspace
from av.video.stream import VideoStream
from PIL import Image

from taskapi.errors import TaskApiError

AVCOL_PRI_BT709 = 1
AVCOL_TRC_BT709 = 1
"""FFmpeg's AVCOL_PRI_BT709 and AVCOL_TRC_BT709 (libavutil/pixfmt.h): PyAV 14 takes colour
primaries and transfer characteristics as plain integers, with no enum for them."""

TICKS = 48_000
"""Timeline units per second: the output's audio sample rate, and the video's time base, so a scene
boundary is the same instant in both streams."""
AUDIO_RATE = TICKS
MAX_STILL_SECONDS = 2
"""A still picture is sent again at least this often."""
X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "23",
    # Text on flat colour: keep edges sharp rather than smoothing them away.
    "tune": "stillimage",
    # A forced keyframe (each scene's first picture) becomes a seek point.
    "x264-params": "forced-idr=1",
    # No B-frames: decode order is presentation order, so with pictures of uneven durations the
    # track's length (counted in decode timestamps) is the pictures' own.
    "bf": "0",
}
GOP_FRAMES = 12
"""Keyframe distance in frames: at most ~24 s of stills between seek points inside a long scene."""
AUDIO_BIT_RATES = {1: 96_000, 2: 128_000}
_AUDIO_CHUNK = 1_024 * 8
_TIME_BASE = Fraction(1, TICKS)


class RenderError(TaskApiError):
    """The input cannot be rendered (a size H.264 cannot take, an unreadable logo or clip): the same
    input will fail again."""


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    seconds: float
    """The container's stated duration (0 when it states none): for progress only."""
    channels: int
    """Audio channels of the clip's first audio stream, 0 without one."""


def probe_clip(path: Path) -> ClipInfo:
    """What the render needs to know about an intro or outro before encoding starts."""
    with _open(path) as source:
        if not source.streams.video:
            raise RenderError(f"{path.name} has no video stream")
        audio = source.streams.audio[0] if source.streams.audio else None
        channels = audio.codec_context.channels if audio is not None else 0
        seconds = source.duration / av.time_base if source.duration else 0.0
    return ClipInfo(path, seconds, channels)


class Mp4Writer:
    """One H.264 + AAC MP4, written by appending segments: each starts where both streams end."""

    def __init__(self, path: Path, width: int, height: int, *, channels: int) -> None:
        self.path = path
        self.width, self.height = width, height
        self.layout = "stereo" if channels > 1 else "mono"
        self.frames_encoded = 0
        self.audio_samples = 0
        """End of the audio written so far, in ticks."""
        self.video_end = 0
        """End of the last picture shown, in ticks."""
        self._durations: dict[int, int] = {}
        """Each picture sent and not yet muxed: its duration in ticks, by its pts."""
        self._container: OutputContainer = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            self._video = self._add_video()
            self._audio = self._add_audio(channels)
        except BaseException:
            self._container.close()
            raise

    def _add_video(self) -> VideoStream:
        stream = self._container.add_stream("libx264", options=dict(X264_OPTIONS))
        if not isinstance(stream, VideoStream):  # add_stream's typing: any kind of stream
            raise TypeError(f"libx264 gave a {type(stream).__name__}")
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = _TIME_BASE
        context = stream.codec_context
        context.time_base = _TIME_BASE
        context.gop_size = GOP_FRAMES
        context.colorspace = Colorspace.ITU709
        context.color_primaries = AVCOL_PRI_BT709
        context.color_trc = AVCOL_TRC_BT709
        context.color_range = ColorRange.MPEG
        return stream

    def _add_audio(self, channels: int) -> AudioStream:
        stream = self._container.add_stream("aac", rate=AUDIO_RATE, layout=self.layout)
        stream.bit_rate = AUDIO_BIT_RATES[2 if channels > 1 else 1]
        stream.time_base = _TIME_BASE
        return stream

    # ------------------------------------------------------------------ pictures

    def picture(self, image: Image.Image) -> VideoFrame:
        """A Pillow RGB picture as a frame the encoder takes (BT.709, limited range, as tagged)."""
        return VideoFrame.from_image(image).reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )

    def show(self, frame: VideoFrame, start: int, end: int, *, key: bool = False) -> None:
        """Show `frame` (yuv420p, the output size) from tick `start` to `end`: sent at start, then
        again at even steps no longer than MAX_STILL_SECONDS. key=True makes the first a keyframe."""
        if end <= start:
            return
        steps = math.ceil((end - start) / (MAX_STILL_SECONDS * TICKS))
        for step in range(steps):
            at = start + (end - start) * step // steps
            until = start + (end - start) * (step + 1) // steps
            frame.pts = at
            frame.time_base = _TIME_BASE
            frame.pict_type = PictureType.I if key and step == 0 else PictureType.NONE
            self._durations[at] = until - at
            self._mux_video(self._video.encode(frame))
            self.frames_encoded += 1
        self.video_end = end

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            # The muxer takes the last sample's duration from its packet: it is the picture's. No
            # B-frames, so the encoder returns packets in the order (and with the pts) sent.
            if packet.pts is not None and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            self._container.mux(packet)

    # ------------------------------------------------------------------ sound

    def audio_feed(self, limit: int | None = None) -> AudioFeed:
        """Append audio from the current end of the audio track, cut at tick `limit`."""
        return AudioFeed(self, limit)

    def append_pcm(self, samples: bytes, sample_rate: int, *, until: int) -> None:
        """Mono s16le PCM from the end of the audio track, cut or padded with silence to end at
        tick `until`."""
        feed = AudioFeed(self, until)
        feed.push_pcm(samples, sample_rate)
        feed.close()
        self.pad_audio(until)

    def _append_audio(self, frame: AudioFrame, limit: int | None) -> None:
        count = frame.samples if limit is None else min(frame.samples, limit - self.audio_samples)
        if count <= 0:
            return
        if count < frame.samples:
            frame = _head(frame, count)
        frame.pts = self.audio_samples
        frame.time_base = _TIME_BASE
        self._container.mux(self._audio.encode(frame))
        self.audio_samples += count

    def pad_audio(self, until: int) -> None:
        """Silence from the end of the audio track to tick `until`."""
        while self.audio_samples < until:
            count = min(until - self.audio_samples, _AUDIO_CHUNK)
            silence = AudioFrame(format="fltp", layout=self.layout, samples=count)
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            silence.sample_rate = AUDIO_RATE
            self._append_audio(silence, None)

    # ------------------------------------------------------------------ clips

    def append_clip(self, clip: ClipInfo) -> None:
        """The clip's pictures scaled into the output size (letterboxed, never stretched) and its
        sound (silence without one) from the current end of both streams; the shorter is held or
        padded to the longer."""
        start = self.audio_samples
        scaler = _Scaler(self.width, self.height)
        held: tuple[VideoFrame, int, int] | None = None  # frame, its tick, its own duration in ticks
        first: float | None = None
        with _open(clip.path) as source:
            streams = _clip_streams(source)
            # Decoding ignores the end of an MP4's edit list: without this limit the encoder's
            # padding of the last AAC frame would be heard (and lengthen the clip).
            stated = streams[-1].duration if len(streams) > 1 else None
            feed = self.audio_feed(None if not stated else start + round(stated * streams[-1].time_base * TICKS))
            for decoded, duration in _decoded(source, streams, clip.path):
                if isinstance(decoded, AudioFrame):
                    feed.push(decoded)
                    continue
                if not isinstance(decoded, VideoFrame) or decoded.time is None:
                    continue
                first = decoded.time if first is None else first
                tick = start + round((decoded.time - first) * TICKS)
                if held is not None:
                    if tick <= held[1]:
                        continue  # a timestamp going back or repeated: keep the earlier picture
                    self.show(held[0], held[1], tick, key=held[1] == start)
                held = (scaler.scale(decoded), tick, _frame_ticks(duration, streams[0]))
            feed.close()
        if held is None:
            raise RenderError(f"{clip.path.name} has no picture")
        end = max(held[1] + held[2], self.audio_samples)
        self.show(held[0], held[1], end, key=held[1] == start)
        self.pad_audio(end)

    # ------------------------------------------------------------------ the file

    def close(self) -> None:
        """Flush both encoders and write the index (moved before the media data: faststart)."""
        self._mux_video(self._video.encode(None))
        self._container.mux(self._audio.encode(None))
        self._container.close()

    def abort(self) -> None:
        """Close the file after a failure or a cancellation, and remove it: it is no video."""
        with contextlib.suppress(av.FFmpegError, OSError, ValueError):
            self._container.close()
        self.path.unlink(missing_ok=True)


class AudioFeed:
    """Audio frames of any format, rate or layout, resampled to the track's and appended. close()
    flushes the resampler's tail."""

    def __init__(self, writer: Mp4Writer, limit: int | None) -> None:
        self._writer = writer
        self._limit = limit
        self._resampler: AudioResampler | None = None
        self._source: tuple[Any, ...] | None = None

    def push(self, frame: AudioFrame) -> None:
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or source != self._source:
            self.close()
            self._resampler = AudioResampler(format="fltp", layout=self._writer.layout, rate=AUDIO_RATE)
            self._source = source
        for out in self._resampler.resample(frame):
            self._writer._append_audio(out, self._limit)

    def push_pcm(self, samples: bytes, sample_rate: int) -> None:
        """Signed 16-bit little-endian mono PCM, in chunks (so no second copy of a long narration)."""
        view = memoryview(samples)
        usable = len(view) - len(view) % 2  # a stray odd byte is half a sample: dropped
        for offset in range(0, usable, _AUDIO_CHUNK * 2):
            chunk = bytes(view[offset : min(offset + _AUDIO_CHUNK * 2, usable)])
            frame = AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            frame.planes[0].update(chunk)
            frame.sample_rate = sample_rate
            frame.pts = offset // 2
            frame.time_base = Fraction(1, sample_rate)
            self.push(frame)

    def close(self) -> None:
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._writer._append_audio(out, self._limit)
        self._resampler = None


class _Scaler:
    """Any decoded picture → yuv420p at the output size, aspect kept, black bars around it."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._graph: Graph | None = None
        self._input: tuple[int, int, str] | None = None

    def scale(self, frame: VideoFrame) -> VideoFrame:
        shape = (frame.width, frame.height, frame.format.name)
        if self._graph is None or shape != self._input:
            self._graph = self._build(frame)
            self._input = shape
        self._graph.vpush(frame)
        return self._graph.vpull()  # its pts and time base are set again by show()

    def _build(self, frame: VideoFrame) -> Graph:
        graph = Graph()
        width, height = self.width, self.height
        graph.link_nodes(
            graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format,
                time_base=frame.time_base or Fraction(1, TICKS),
            ),
            graph.add(
                "scale",
                f"{width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2",
            ),
            graph.add("pad", f"{width}:{height}:(ow-iw)/2:(oh-ih)/2:black"),
            graph.add("setsar", "1"),
            graph.add("format", "yuv420p"),
            graph.add("buffersink"),
        ).configure()
        return graph


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise RenderError(f"{path.name} cannot be read as a video: {exc}") from exc


def _decoded(source: InputContainer, streams: tuple[Any, ...], path: Path) -> Iterator[tuple[Any, int | None]]:
    """The clip's frames in decoding order, each with its duration in its stream's time base when
    known (a picture's is its packet's: PyAV 14 frames carry none; found by pts, which decoding
    keeps through any reordering). Only the clip's own faults become RenderError (what the caller
    does with a frame raises at the caller, not in here)."""
    durations: dict[int, int] = {}
    try:
        for packet in source.demux(*streams):
            if packet.stream.type == "video" and packet.pts is not None and packet.duration:
                durations[packet.pts] = packet.duration
            for frame in packet.decode():
                known = isinstance(frame, VideoFrame) and frame.pts is not None
                yield frame, durations.pop(frame.pts, None) if known else None
    except av.FFmpegError as exc:
        raise RenderError(f"{path.name} cannot be decoded: {exc}") from exc


def _clip_streams(source: InputContainer) -> tuple[Any, ...]:
    video = source.streams.video[0]
    video.thread_type = "AUTO"
    return (video, source.streams.audio[0]) if source.streams.audio else (video,)


def _frame_ticks(duration: int | None, stream: Any) -> int:
    """How long a decoded picture lasts: its duration (in the stream's time base), else one frame at
    the stream's rate."""
    if duration and stream.time_base:
        return max(1, round(duration * stream.time_base * TICKS))
    rate = stream.average_rate or stream.guessed_rate or 25
    return max(1, round(TICKS / rate))


def _head(frame: AudioFrame, count: int) -> AudioFrame:
    """The first `count` samples of a planar float frame."""
    head = AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=count)
    size = count * frame.format.bytes
    for source, target in zip(frame.planes, head.planes, strict=True):
        target.update(bytes(source)[:size])
    head.sample_rate = frame.sample_rate
    return head
