"""The video renderer: scenes with synthetic narration (tones: the narration providers are tested on
their own) rendered to MP4 and probed back with PyAV."""

from __future__ import annotations

import array
import io
import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import pytest
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame
from PIL import Image, ImageChops, ImageStat

from taskapi.media import frames
from taskapi.media.render import (
    Audio,
    RenderError,
    RenderOptions,
    RenderResult,
    Scene,
    SubtitleCue,
    parse_resolution,
    render,
    scene_cues,
    webvtt,
)

SMALL = {"width": 320, "height": 180}
RATE = 16_000
TERMS = ["hypotenuse", "right angle", "square"]
NARRATION = "A right triangle has one angle of exactly ninety degrees and its longest side is the hypotenuse."


def tone(seconds: float, frequency: float = 440.0, rate: int = RATE, amplitude: int = 8_000) -> Audio:
    count = round(seconds * rate)
    wave = array.array("h", (round(amplitude * math.sin(2 * math.pi * frequency * i / rate)) for i in range(count)))
    return Audio(wave.tobytes(), rate)


def scene(seconds: float, number: int = 1, **fields: Any) -> Scene:
    return Scene(
        title=fields.pop("title", f"Scene {number}: the Pythagorean theorem"),
        narration=tone(seconds, 300 + 60 * number),
        terms=fields.pop("terms", TERMS),
        text=fields.pop("text", NARRATION),
        **fields,
    )


def png(colour: tuple[int, int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, "PNG")
    return out.getvalue()


@dataclass
class Probe:
    path: Path
    container_seconds: float
    video: dict[str, Any]
    audio: dict[str, Any]

    def frame_at(self, seconds: float) -> Image.Image:
        """The picture shown at `seconds` (the last frame starting at or before it)."""
        with av.open(str(self.path)) as source:
            shown = None
            for frame in source.decode(video=0):
                if frame.time is not None and frame.time > seconds + 1e-6:
                    break
                shown = frame.to_image()
        assert shown is not None
        return shown

    def first_and_last(self) -> tuple[Image.Image, Image.Image]:
        with av.open(str(self.path)) as source:
            decoded = [frame.to_image() for frame in source.decode(video=0)]
        return decoded[0], decoded[-1]


def probe(path: Path) -> Probe:
    """Streams, durations and decoded facts of an MP4."""
    with av.open(str(path)) as source:
        assert len(source.streams.video) == 1
        assert len(source.streams.audio) == 1
        v, a = source.streams.video[0], source.streams.audio[0]
        video = {
            "codec": v.codec_context.name,
            "size": (v.codec_context.width, v.codec_context.height),
            "pix_fmt": v.codec_context.pix_fmt,
            "seconds": float(v.duration * v.time_base) if v.duration else None,
        }
        audio = {
            "codec": a.codec_context.name,
            "rate": a.codec_context.sample_rate,
            "channels": a.codec_context.channels,
            "seconds": float(a.duration * a.time_base) if a.duration else None,
        }
        container_seconds = source.duration / av.time_base
        squares, count = 0.0, 0
        for frame in source.decode(audio=0):
            samples = array.array("f", bytes(frame.planes[0])[: frame.samples * 4])
            squares += sum(x * x for x in samples)
            count += len(samples)
        audio["rms"] = math.sqrt(squares / max(count, 1))
    with av.open(str(path)) as source:
        times = [packet.pts * packet.time_base for packet in source.demux(video=0) if packet.pts is not None]
        video["frame_times"] = sorted(float(t) for t in times)
    return Probe(path, container_seconds, video, audio)


def red_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    region = image.convert("RGB").crop(box)
    return sum(1 for r, g, b in region.get_flattened_data() if r > 180 and g < 80 and b < 80)


def band_difference(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference of the two pictures in box, over the three channels."""
    difference = ImageChops.difference(a.convert("RGB").crop(box), b.convert("RGB").crop(box))
    return sum(ImageStat.Stat(difference).mean) / 3


def make_clip(
    path: Path,
    seconds: float,
    colour: tuple[int, int, int],
    *,
    size: tuple[int, int] = (160, 120),
    sound: bool = True,
) -> Path:
    """A clip of one solid colour at 25 fps, with a stereo tone when sound is True."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        picture = VideoFrame.from_image(Image.new("RGB", size, colour)).reformat(format="yuv420p")
        audio = out.add_stream("aac", rate=44_100, layout="stereo") if sound else None
        for index in range(round(seconds * 25)):
            picture.pts = index
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        if audio is not None:
            pcm = tone(seconds, 660, 44_100)
            frame = AudioFrame(format="s16", layout="mono", samples=len(pcm.samples) // 2)
            frame.planes[0].update(pcm.samples)
            frame.sample_rate = 44_100
            frame.pts, frame.time_base = 0, Fraction(1, 44_100)
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44_100)
            for converted in [*resampler.resample(frame), *resampler.resample(None)]:
                out.mux(audio.encode(converted))
            out.mux(audio.encode(None))
    return path


def is_green(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return g > 150 and r < 80 and b < 80


# ------------------------------------------------------------------ three scenes, probed


SCENE_SECONDS = (1.2, 1.5, 1.8)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> tuple[RenderResult, Probe, list[tuple[str, float]]]:
    """Given three scenes with tone narration, rendered at 320×180 with subtitles and a red logo."""
    path = tmp_path_factory.mktemp("render") / "three.mp4"
    calls: list[tuple[str, float]] = []
    scenes = [scene(seconds, number) for number, seconds in enumerate(SCENE_SECONDS, start=1)]
    options = RenderOptions(**SMALL, theme="ocean", include_subtitles=True, logo=png((255, 0, 0, 255)))
    result = render(scenes, options, path, progress=lambda message, done: calls.append((message, done)))
    return result, probe(path), calls


def test_three_scenes_make_an_h264_aac_mp4_of_their_narrations_length(three):
    result, probed, _ = three
    expected = sum(SCENE_SECONDS)

    assert probed.video["codec"] == "h264"
    assert probed.video["size"] == (320, 180)
    assert probed.video["pix_fmt"] == "yuv420p"
    assert probed.audio["codec"] == "aac"
    assert probed.audio["rate"] == 48_000
    assert probed.container_seconds == pytest.approx(expected, rel=0.01)
    assert probed.video["seconds"] == pytest.approx(probed.audio["seconds"], abs=0.03), "pictures last as the sound"
    assert result.duration_seconds == pytest.approx(expected, abs=0.001)
    assert (result.width, result.height, result.segments) == (320, 180, 3)
    assert result.size_bytes == probed.path.stat().st_size > 0


def test_the_narration_is_heard(three):
    _, probed, _ = three
    # A sine of amplitude 8000/32768 has an RMS of about 0.17; AAC keeps it close.
    assert probed.audio["rms"] > 0.1


def top_level_boxes(data: bytes) -> list[str]:
    """The MP4's top-level box types in file order (32-bit sizes: files this small need no more)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        assert size >= 8, boxes
        offset += size
    return boxes


def test_the_index_comes_before_the_media_data(three):
    _, probed, _ = three
    data = probed.path.read_bytes()
    boxes = top_level_boxes(data)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_frames_follow_the_content_not_a_frame_rate(three):
    result, probed, _ = three
    duration = sum(SCENE_SECONDS)
    assert result.frames_encoded == len(probed.video["frame_times"])
    assert result.frames_encoded <= 0.2 * 30 * duration
    times = probed.video["frame_times"]
    assert max(b - a for a, b in pairwise(times)) <= 2.0 + 1e-3


def test_progress_is_reported_per_scene_and_phase_never_decreasing(three):
    _, _, calls = three
    messages = [message for message, _ in calls]
    assert messages == [
        "Rendered scene 1 of 3",
        "Rendered scene 2 of 3",
        "Rendered scene 3 of 3",
        "Finishing the MP4",
        "Rendered",
    ]
    done = [fraction for _, fraction in calls]
    assert done == sorted(done)
    assert done[-1] == 1.0
    assert 0 < done[0] < 1


def test_result_cues_are_on_the_video_timeline(three):
    result, _, _ = three
    assert result.cues
    assert result.cues[0].start_s == 0
    assert result.cues[-1].end_s == pytest.approx(sum(SCENE_SECONDS), abs=0.002)
    starts = [cue.start_s for cue in result.cues]
    assert starts == sorted(starts)
    assert any(cue.start_s == pytest.approx(SCENE_SECONDS[0], abs=0.002) for cue in result.cues)
    vtt = webvtt(result.cues).decode()
    assert vtt.startswith("WEBVTT\n\n1\n00:00:00.000 --> ")
    assert "right triangle" in vtt


# ------------------------------------------------------------------ picture


def test_the_logo_is_drawn_in_the_top_right_corner_with_its_alpha(tmp_path):
    plain, branded, clear = tmp_path / "plain.mp4", tmp_path / "branded.mp4", tmp_path / "clear.mp4"
    scenes = [scene(0.6, text="")]
    render(scenes, RenderOptions(**SMALL), plain)
    render(scenes, RenderOptions(**SMALL, logo=png((255, 0, 0, 255))), branded)
    render(scenes, RenderOptions(**SMALL, logo=png((255, 0, 0, 0))), clear)

    corner = (240, 0, 320, 45)
    with_logo = probe(branded).frame_at(0)
    assert red_pixels(with_logo, corner) >= 80  # the logo is ~8% of 180 px high: 14×14
    assert red_pixels(with_logo, (0, 45, 320, 180)) == 0, "nowhere else"
    assert red_pixels(probe(plain).frame_at(0), corner) == 0
    assert band_difference(probe(clear).frame_at(0), probe(plain).frame_at(0), corner) < 1, "transparent: unseen"


def test_subtitles_are_burned_into_the_bottom_band_only_when_asked(tmp_path):
    without, burned = tmp_path / "without.mp4", tmp_path / "burned.mp4"
    scenes = [scene(1.0)]
    render(scenes, RenderOptions(**SMALL), without)
    render(scenes, RenderOptions(**SMALL, include_subtitles=True), burned)

    a, b = probe(without).frame_at(0.5), probe(burned).frame_at(0.5)
    assert band_difference(a, b, (0, 135, 320, 180)) > 8
    # above the band only the encoder's rounding differs (the same picture, coded at other QPs)
    assert band_difference(a, b, (0, 0, 320, 100)) < 5


def test_each_cue_change_is_a_new_frame_and_stills_repeat_every_two_seconds(tmp_path):
    path = tmp_path / "cues.mp4"
    cues = [SubtitleCue(0.5, 1.5, "First line"), SubtitleCue(1.5, 2.0, "Second"), SubtitleCue(4.0, 9.0, "Last")]
    result = render([scene(5.0, subtitles=cues)], RenderOptions(**SMALL, include_subtitles=True), path)

    # pictures: [0, 0.5) none, [0.5, 1.5) first, [1.5, 2.0) second, [2.0, 4.0) none (one step),
    # [4.0, 5.0) last (clipped to the scene)
    assert probe(path).video["frame_times"] == pytest.approx([0.0, 0.5, 1.5, 2.0, 4.0], abs=1e-3)
    assert result.frames_encoded == 5
    assert [cue.text for cue in result.cues] == ["First line", "Second", "Last"]
    assert result.cues[-1].end_s == 5.0

    still = tmp_path / "still.mp4"
    assert render([scene(5.0, text="")], RenderOptions(**SMALL), still).frames_encoded == 3
    assert probe(still).video["frame_times"] == pytest.approx([0.0, 5 / 3, 10 / 3], abs=1e-3)


def test_intro_and_outro_are_joined_letterboxed_with_their_sound(tmp_path):
    intro = make_clip(tmp_path / "intro.mp4", 1.0, (0, 200, 0))
    outro = make_clip(tmp_path / "outro.mp4", 1.0, (0, 0, 220), sound=False)
    plain, joined = tmp_path / "plain.mp4", tmp_path / "joined.mp4"
    scenes = [scene(1.0, 1), scene(1.0, 2)]
    render(scenes, RenderOptions(**SMALL), plain)
    result = render(scenes, RenderOptions(**SMALL, intro=intro, outro=outro, include_subtitles=True), joined)

    probed = probe(joined)
    assert probed.container_seconds == pytest.approx(probe(plain).container_seconds + 2.0, abs=0.01)
    assert result.duration_seconds == pytest.approx(4.0, abs=0.01), "the clips' stated lengths, no codec padding"
    assert probed.audio["channels"] == 2, "a stereo intro makes the track stereo"
    first, last = probed.first_and_last()
    assert is_green(first.getpixel((160, 90)))
    # 160×120 (4:3) into 320×180: scaled to 240×180, black bars left and right
    assert max(first.getpixel((10, 90))[:3]) < 30
    assert last.getpixel((160, 90))[2] > 150, "the outro's blue"
    assert result.cues[0].start_s == pytest.approx(1.0, abs=0.01), "cues start after the intro"


def test_without_a_size_the_video_is_1920x1080(tmp_path):
    assert parse_resolution(None) == (1920, 1080)
    assert parse_resolution("1280*720") == (1280, 720)
    options = RenderOptions.from_resolution(None, theme="forest")
    assert (options.width, options.height, options.theme) == (1920, 1080, "forest")

    result = render([scene(0.4)], options, tmp_path / "full.mp4")

    assert probe(tmp_path / "full.mp4").video["size"] == (1920, 1080)
    assert (result.width, result.height) == (1920, 1080)


def test_fifty_scenes_last_as_long_as_their_fifty_narrations(tmp_path):
    lengths = [0.25 + 0.01 * (i % 7) for i in range(50)]
    scenes = [scene(seconds, number) for number, seconds in enumerate(lengths, start=1)]
    seen: list[str] = []

    result = render(
        scenes, RenderOptions(width=160, height=90), tmp_path / "fifty.mp4", progress=lambda m, _: seen.append(m)
    )

    probed = probe(tmp_path / "fifty.mp4")
    assert result.segments == 50
    assert probed.container_seconds == pytest.approx(sum(lengths), rel=0.01)
    assert result.frames_encoded >= 50, "every scene has its picture"
    assert sum(1 for message in seen if message.startswith("Rendered scene")) == 50


# ------------------------------------------------------------------ failures


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("at", ["Rendered scene 2 of 3", "Finishing the MP4", "Rendered"])
def test_an_exception_from_progress_propagates_and_leaves_no_file(tmp_path, at):
    path = tmp_path / "cancelled.mp4"

    def progress(message: str, done: float) -> None:
        if message == at:
            raise Cancelled

    with pytest.raises(Cancelled):
        render([scene(0.3, n) for n in (1, 2, 3)], RenderOptions(**SMALL), path, progress=progress)
    assert not path.exists()


@pytest.mark.parametrize(
    ("width", "height"), [(321, 180), (320, 181), (8, 8), (8192, 4320)], ids=["odd-w", "odd-h", "tiny", "huge"]
)
def test_sizes_h264_cannot_take_are_refused(width, height):
    with pytest.raises(RenderError, match="even number of pixels"):
        RenderOptions(width=width, height=height)


def test_unreadable_inputs_are_render_errors(tmp_path):
    not_video = tmp_path / "intro.mp4"
    not_video.write_bytes(b"not a video at all")
    path = tmp_path / "out.mp4"
    with pytest.raises(RenderError, match="logo"):
        render([scene(0.3)], RenderOptions(**SMALL, logo=b"not an image"), path)
    with pytest.raises(RenderError, match=r"intro\.mp4"):
        render([scene(0.3)], RenderOptions(**SMALL, intro=not_video), path)
    sound_only = tmp_path / "sound.m4a"
    with av.open(str(sound_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=RATE, layout="mono")
        silence = AudioFrame(format="fltp", layout="mono", samples=RATE // 4)
        silence.planes[0].update(bytes(silence.planes[0].buffer_size))
        silence.sample_rate, silence.pts = RATE, 0
        out.mux(stream.encode(silence))
        out.mux(stream.encode(None))
    with pytest.raises(RenderError, match="no video stream"):
        render([scene(0.3)], RenderOptions(**SMALL, outro=sound_only), path)
    with pytest.raises(RenderError, match="no scene"):
        render([], RenderOptions(**SMALL), path)
    with pytest.raises(RenderError, match="no narration"):
        render([Scene("Silent", Audio(b"", RATE))], RenderOptions(**SMALL), path)
    with pytest.raises(RenderError, match="WIDTH"):
        parse_resolution("1280x720")
    assert not path.exists()


# ------------------------------------------------------------------ cues and colours


def test_cues_come_from_the_narration_text_spread_over_the_scene():
    text = " ".join(f"word{i}." for i in range(40))
    cues = scene_cues(Scene("T", tone(0.1), text=text), 8.0)
    assert len(cues) >= 3
    assert cues[0].start_s == 0
    assert cues[-1].end_s == 8.0
    assert all(a.end_s == b.start_s for a, b in pairwise(cues))
    assert " ".join(cue.text for cue in cues) == text


def test_given_cues_are_clipped_to_the_scene_and_sorted():
    given = [SubtitleCue(3.0, 12.0, "late"), SubtitleCue(-1.0, 2.0, "early"), SubtitleCue(11.0, 12.0, "after")]
    cues = scene_cues(Scene("T", tone(0.1), subtitles=given), 10.0)
    assert cues == [SubtitleCue(0.0, 2.0, "early"), SubtitleCue(3.0, 10.0, "late")]


def test_palettes_follow_the_words_and_are_stable():
    assert frames.palette_for("cartoon", "ocean") == frames.palette_for("Cartoon", "OCEAN")
    assert frames.palette_for(None, "blue") != frames.palette_for(None, "orange")
    assert frames.palette_for("realistic", "history") != frames.palette_for("realistic", "biology")
    dark, light = frames.palette_for(None, None), frames.palette_for("minimal", "light")
    assert sum(dark.top) < 200 < sum(light.top)
    assert sum(dark.text) > 600 > sum(light.text)


def test_long_text_wraps_inside_the_width_with_an_ellipsis():
    face = frames.font(20)
    lines = frames.wrap("supercalifragilistic " * 20, face, 200, 3)
    assert len(lines) == 3
    assert lines[-1].endswith("…")
    assert all(face.getlength(line) <= 200 for line in lines)
    balanced = frames.balanced_wrap("one two three four five six seven eight nine", face, 300, 3)
    widths = [face.getlength(line) for line in balanced]
    assert len(balanced) == 2
    assert min(widths) > 0.6 * max(widths)
