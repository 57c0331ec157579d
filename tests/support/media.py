"""A video result as a viewer meets it, for the processing, integration and e2e tests: an MP4 probed
with PyAV (codecs, size, duration, how loud the sound is), a picture decoded from it and where a
colour shows in it; and branding the tests make themselves (a logo of one colour, a short clip),
served to the video engine by a fetcher double when there is no network."""

from __future__ import annotations

import array
import io
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame
from PIL import Image, ImageChops

from taskapi.media.fetch import Fetched

RGB = tuple[int, int, int]
LOGO_COLOUR: RGB = (255, 0, 255)
"""Magenta: no theme's palette comes near it, so where it shows, the logo is."""
CLIP_COLOUR: RGB = (0, 200, 0)
OUTRO_COLOUR: RGB = (0, 0, 220)
LOGO_HEIGHT_SHARE = 0.08
"""The logo is drawn this share of the picture's height tall (taskapi.media.frames.LOGO_HEIGHT)."""


@dataclass(frozen=True)
class Mp4:
    brand: bytes
    """The ftyp box's major brand (b"isom" from FFmpeg's muxer)."""
    video_codec: str
    width: int
    height: int
    audio_codec: str
    sample_rate: int
    duration_seconds: float
    audio_peak: float
    """The loudest decoded sample, 0..1 of full scale."""
    audio_rms: float
    """The whole track's RMS level, 0..1 of full scale: speech is around 0.05-0.2, silence 0."""


def probe_mp4(body: bytes) -> Mp4:
    """What a player finds in `body`: it must start with an ftyp box and hold one video and one audio
    stream, all of whose audio decodes."""
    assert body[4:8] == b"ftyp", f"not an MP4 (starts {body[:12]!r})"
    with av.open(io.BytesIO(body)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        peak, squares, samples = 0.0, 0.0, 0
        for frame in container.decode(audio):
            for plane in _float_planes(frame):
                peak = max(peak, max(map(abs, plane), default=0.0))
                squares += math.fsum(s * s for s in plane)
                samples += len(plane)
        return Mp4(
            brand=body[8:12],
            video_codec=video.codec_context.name,
            width=video.codec_context.width,
            height=video.codec_context.height,
            audio_codec=audio.codec_context.name,
            sample_rate=audio.codec_context.sample_rate,
            duration_seconds=(container.duration or 0) / av.time_base,
            audio_peak=peak,
            audio_rms=math.sqrt(squares / samples) if samples else 0.0,
        )


def picture_at(body: bytes, seconds: float) -> Image.Image:
    """The picture shown at `seconds` into the video, as RGB."""
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        shown: VideoFrame | None = None
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time is not None and frame.time > seconds:
                break
            shown = frame
        assert shown is not None, "the video has no picture"
        return shown.to_image().convert("RGB")


def colour_pixels(image: Image.Image, colour: RGB, box: tuple[int, int, int, int] | None = None) -> int:
    """How many pixels of `image` (within `box`: left, top, right, bottom) are close to `colour`
    (compression and the RGB → YUV → RGB round trip move colours a little)."""
    region = image.crop(box) if box else image
    red, green, blue = (
        band.point(lambda v, c=c: 255 if abs(v - c) <= 48 else 0)
        for band, c in zip(region.split(), colour, strict=True)
    )
    both = ImageChops.multiply(ImageChops.multiply(red, green), blue)
    return both.histogram()[255]


def logo_pixels(image: Image.Image, colour: RGB = LOGO_COLOUR) -> tuple[int, int]:
    """(pixels of the colour in the top right quarter, pixels of it anywhere else)."""
    width, height = image.size
    corner = (width * 3 // 4, 0, width, height // 4)
    inside = colour_pixels(image, colour, corner)
    return inside, colour_pixels(image, colour) - inside


def logo_area(height: int) -> int:
    """The pixels a square logo covers in a picture `height` tall."""
    return round(height * LOGO_HEIGHT_SHARE) ** 2


def png(colour: RGB = LOGO_COLOUR, size: tuple[int, int] = (64, 64)) -> bytes:
    """A PNG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def clip(seconds: float = 1.0, colour: RGB = CLIP_COLOUR, size: tuple[int, int] = (160, 90)) -> bytes:
    """An MP4 of `seconds` of one colour with a 440 Hz tone: an intro or outro video."""
    out = io.BytesIO()
    rate, fps = 48_000, 10
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        picture = VideoFrame.from_image(Image.new("RGB", size, colour)).reformat(format="yuv420p")
        for index in range(round(seconds * fps)):
            picture.pts, picture.time_base = index, Fraction(1, fps)
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        sound = tone(440, rate, round(seconds * rate))
        for start in range(0, len(sound), 1024):
            chunk = sound[start : start + 1024]
            frame = AudioFrame(format="s16", layout="mono", samples=len(chunk))
            frame.planes[0].update(chunk.tobytes())
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return out.getvalue()


@dataclass
class ServedMedia:
    """The video engine's fetcher, serving bytes by URL as a download would (written into the
    engine's directory); an unknown URL fails the test. Records (url, kind) of every fetch."""

    files: Mapping[str, tuple[bytes, str]]
    """url → (body, content type)."""
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, url: str, kind: str, directory: Path) -> Fetched:
        self.calls.append((url, kind))
        assert url in self.files, f"the test serves no {url}"
        body, content_type = self.files[url]
        target = directory / f"fetched-{kind}"
        with target.open("wb") as out:
            shutil.copyfileobj(io.BytesIO(body), out)
        return Fetched(url=url, content_type=content_type, path=target, size=len(body))


def tone(hz: float, sample_rate: int, count: int) -> array.array[int]:
    """`count` samples of a sine at `hz`, a quarter of full scale, as 16-bit integers."""
    return array.array("h", (round(8000 * math.sin(2 * math.pi * hz * n / sample_rate)) for n in range(count)))


def _float_planes(frame: AudioFrame) -> list[array.array[float]]:
    """Each channel's samples as floats in -1..1 (AAC decodes to planar float)."""
    assert frame.format.name == "fltp", frame.format.name
    planes = []
    for plane in frame.planes[: len(frame.layout.channels)]:
        samples = array.array("f")
        samples.frombytes(bytes(plane)[: frame.samples * 4])
        planes.append(samples)
    return planes
