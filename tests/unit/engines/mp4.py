"""What a viewer of a video.mp4 would notice, read back with PyAV: its streams, its length, whether
it is heard, where its index sits, and its pictures. Also the media a task's branding URLs serve
(a logo PNG, intro and outro clips), made here."""

from __future__ import annotations

import array
import io
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame
from PIL import Image


@dataclass(frozen=True)
class Mp4:
    seconds: float
    """The container's duration."""
    video: list[tuple[str, int, int]]
    """(codec, width, height) of each video stream."""
    audio: list[tuple[str, int]]
    """(codec, sample rate) of each audio stream."""
    boxes: list[str]
    """Top-level ISO-BMFF box types, in file order."""


def probe(body: bytes) -> Mp4:
    with av.open(io.BytesIO(body)) as source:
        video = [(s.codec_context.name, s.codec_context.width, s.codec_context.height) for s in source.streams.video]
        audio = [(s.codec_context.name, s.codec_context.sample_rate) for s in source.streams.audio]
        seconds = source.duration / av.time_base
    return Mp4(seconds, video, audio, top_level_boxes(body))


def top_level_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - offset
        assert size >= 8, (boxes, kind, size)
        boxes.append(kind)
        offset += size
    return boxes


def loudness(body: bytes) -> tuple[float, float]:
    """(RMS of the decoded sound, from 0 to 1 full scale; seconds of sound decoded), first channel."""
    squares, count, seconds = 0.0, 0, 0.0
    with av.open(io.BytesIO(body)) as source:
        for frame in source.decode(audio=0):
            seconds += frame.samples / frame.sample_rate
            values = _first_channel(frame)
            squares += math.fsum(x * x for x in values)
            count += len(values)
    return math.sqrt(squares / max(count, 1)), seconds


def _first_channel(frame: AudioFrame) -> array.array[float]:
    assert frame.format.name in ("fltp", "flt"), frame.format.name  # FFmpeg's AAC decoder: planar float
    values = array.array("f", bytes(frame.planes[0]))
    if sys.byteorder == "big":
        values.byteswap()
    step = 1 if frame.format.is_planar else len(frame.layout.channels)
    return values[: frame.samples * step : step]


def pictures(body: bytes) -> list[tuple[float, Image.Image]]:
    """Every decoded picture with the time it is shown from, in order."""
    with av.open(io.BytesIO(body)) as source:
        return [(float(frame.time or 0.0), frame.to_image()) for frame in source.decode(video=0)]


def picture_at(body: bytes, seconds: float) -> Image.Image:
    shown = [image for time, image in pictures(body) if time <= seconds + 1e-6]
    assert shown, f"no picture at {seconds} s"
    return shown[-1]


def pixels(image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> int:
    """How many pixels in `box` are close to `colour` (video coding shifts colours a little)."""
    data = image.convert("RGB").crop(box).tobytes()
    return sum(1 for i in range(0, len(data), 3) if all(abs(data[i + c] - colour[c]) < 70 for c in range(3)))


def png(colour: tuple[int, int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, "PNG")
    return out.getvalue()


def make_clip(path: Path, seconds: float, colour: tuple[int, int, int], *, size: tuple[int, int] = (160, 90)) -> Path:
    """An H.264 clip of one solid colour at 25 fps with a quiet stereo tone, as an intro or outro."""
    rate = 44_100
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=rate)
        picture = VideoFrame.from_image(Image.new("RGB", size, colour)).reformat(format="yuv420p")
        for index in range(round(seconds * 25)):
            picture.pts = index
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        count = round(seconds * rate)
        wave = array.array("h", (round(3_000 * math.sin(2 * math.pi * 660 * i / rate)) for i in range(count)))
        if sys.byteorder == "big":
            wave.byteswap()
        frame = AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(wave.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(audio.encode(converted))
        out.mux(audio.encode(None))
    return path
