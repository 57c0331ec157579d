"""Video engine: a narrated MP4 (read back with PyAV, as a player would), its storyboard, manifest
and WebVTT subtitles, built from the prompt and the options.

The narrator is a tone double (doubles.ToneNarrator: 0.1 s per word at voice_rate 1, the same
bytes every run) except in one test that speaks with the real eSpeak NG. Branding URLs are served by
a fetcher double from files made here; one test goes through taskapi.media.fetch's address rules."""

from __future__ import annotations

import functools
import json
import platform
import re
import socket
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from taskapi.engines import Artifact, EngineError
from taskapi.engines.formats import MIN_SEGMENT_MS
from taskapi.engines.text import normalize_space, word_count
from taskapi.engines.video import LOGO_TYPES, PAUSE_SECONDS, VideoEngine
from taskapi.media.fetch import FetchFailed, FetchRefused, fetch
from taskapi.media.narration import NarrationError
from taskapi.media.speech import Speech
from tests.unit.engines.conftest import LONG, PYTHAGORAS, REFERENCE, Cancelled, ProgressLog
from tests.unit.engines.doubles import ServedFiles, ToneNarrator
from tests.unit.engines.mp4 import loudness, make_clip, picture_at, pictures, pixels, png, probe

SMALL = "320*180"
RED, GREEN, BLUE = (255, 0, 0), (0, 200, 0), (0, 0, 220)
CUE_TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")
URLS = {
    "logo_url": "https://cdn.example.com/logo.png",
    "intro_video_url": "https://cdn.example.com/intro.mp4",
    "outro_video_url": "https://cdn.example.com/outro.mp4",
}
MS_PER_WORD = 100
"""ToneNarrator's default pace at voice_rate 1."""


def run(**request: Any) -> Artifact:
    """The artifact for REFERENCE in 3 segments at 320×180, changed by `request`; each distinct
    request is generated once per test process (the tone narrator makes it deterministic)."""
    return _generated(json.dumps({"story_prompt": REFERENCE, "segments": 3, "resolution": SMALL, **request}))


@functools.cache
def _generated(request: str) -> Artifact:
    return VideoEngine(voice=ToneNarrator(), fetcher=ServedFiles()).generate(json.loads(request), ProgressLog())


def manifest(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("manifest.json").body)


def storyboard(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("storyboard.json").body)


def mp4(artifact: Artifact) -> bytes:
    return artifact.file("video.mp4").body


def ms(h: str, m: str, s: str, milli: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(milli)


def cues(vtt: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of every cue, checking the WebVTT layout on the way."""
    assert vtt.startswith("WEBVTT\n\n")
    parsed = []
    for block in vtt.strip().split("\n\n")[1:]:
        lines = block.split("\n")
        assert lines[0].isdigit()
        timing = CUE_TIMING.match(lines[1])
        assert timing, lines[1]
        text = " ".join(lines[2:])
        assert text.strip()
        assert "-->" not in text
        parsed.append((ms(*timing.groups()[:4]), ms(*timing.groups()[4:]), text))
    return parsed


def segment_ms(spoken_seconds: float) -> int:
    """A segment's length for narration of `spoken_seconds`: the pause after it, and the minimum."""
    return round(max(spoken_seconds + PAUSE_SECONDS, MIN_SEGMENT_MS / 1000) * 1000)


# ------------------------------------------------------------------ planning


@pytest.mark.parametrize("count", [1, 2, 3, 5, 12])
@pytest.mark.parametrize("prompt", [REFERENCE, PYTHAGORAS], ids=["reference", "pythagoras"])
def test_segment_count_is_honoured_and_no_narration_is_empty(prompt, count):
    artifact = run(story_prompt=prompt, segments=count)
    segments = storyboard(artifact)["segments"]

    assert len(segments) == count
    assert manifest(artifact)["segment_count"] == count
    assert [s["index"] for s in segments] == list(range(1, count + 1))
    assert all(word_count(s["narration"]) >= 1 for s in segments)
    assert artifact.summary["segments"] == count


def test_prompt_sentences_are_narrated_in_order_when_segments_are_fewer():
    segments = storyboard(run(story_prompt=PYTHAGORAS, segments=3))["segments"]

    assert " ".join(s["narration"] for s in segments) == normalize_space(PYTHAGORAS)


def test_sentences_are_distributed_with_balanced_word_counts():
    words = [s["word_count"] for s in storyboard(run(story_prompt=PYTHAGORAS, segments=3))["segments"]]

    assert max(words) <= 2 * min(words)


def test_short_prompt_narration_introduces_each_topic():
    narration = [s["narration"] for s in storyboard(run(segments=5))["segments"]]

    assert "basic mathematics concepts including addition and subtraction" in narration[0]
    assert any("addition" in text and "subtraction" not in text for text in narration[1:])
    assert any("subtraction" in text and "addition" not in text for text in narration[1:])
    assert narration[-1].startswith("To sum up")
    assert len(set(narration)) == 5


def test_maximum_derives_the_count_from_the_prompt():
    sentences = run(story_prompt=PYTHAGORAS, segments="maximum")
    reference = run(segments="maximum")

    assert manifest(sentences)["segment_count"] == 6
    assert manifest(reference)["segment_count"] == 5
    assert sentences.summary["segments_requested"] == "maximum"
    assert probe(mp4(sentences)).seconds == pytest.approx(sentences.summary["duration_seconds"], rel=0.01)


def test_maximum_of_a_one_word_prompt_is_one_segment():
    assert manifest(run(story_prompt="Fractions", segments="maximum"))["segment_count"] == 1


def test_image_prompts_carry_style_and_theme():
    for segment in storyboard(run(story_prompt=PYTHAGORAS, segments=4, image_style="watercolor", theme="ocean"))[
        "segments"
    ]:
        assert "watercolor" in segment["image_prompt"]
        assert "ocean" in segment["image_prompt"]


def test_image_prompts_describe_their_own_segment():
    segments = storyboard(run(story_prompt=PYTHAGORAS, segments=6))["segments"]

    assert len({s["image_prompt"] for s in segments}) == 6
    assert "hypotenuse" in segments[3]["image_prompt"]


def test_storyboard_segments_have_titles_and_key_terms():
    segments = storyboard(run(story_prompt=PYTHAGORAS, segments=6))["segments"]

    assert all(s["title"] for s in segments)
    assert "hypotenuse" in segments[3]["key_terms"]
    assert segments[1]["source_sentences"] == [1]


def test_non_english_prompt_is_not_framed_with_english_phrases():
    prompt = "El agua se evapora de los océanos. Las nubes se forman en el cielo. La lluvia cae sobre la tierra."
    segments = storyboard(run(story_prompt=prompt, language="Spanish", segments=6))["segments"]

    narration = " ".join(s["narration"] for s in segments)
    assert "Welcome" not in narration
    assert "To sum up" not in narration
    assert all(s["narration"] for s in segments)


# ------------------------------------------------------------------ fifty segments


@pytest.fixture(scope="module")
def fifty() -> tuple[Artifact, ProgressLog]:
    """Given the longest prompt and segments "maximum", narrated quickly (each segment then lasts
    the 3 s minimum: the cost is the sound, ~150 s of it)."""
    progress = ProgressLog()
    engine = VideoEngine(voice=ToneNarrator(seconds_per_word=0.02), fetcher=ServedFiles())
    artifact = engine.generate({"story_prompt": LONG, "segments": "maximum", "resolution": "64*36"}, progress)
    return artifact, progress


def test_maximum_never_exceeds_fifty_and_fifty_segments_render(fifty):
    artifact, _ = fifty
    document = manifest(artifact)
    video = probe(mp4(artifact))

    assert document["segment_count"] == 50
    assert artifact.summary["segments_requested"] == "maximum"
    assert all(word_count(s["narration"]) >= 1 for s in document["segments"])
    assert video.video == [("h264", 64, 36)]
    assert video.seconds == pytest.approx(document["narration_duration_ms"] / 1000, rel=0.01)
    assert video.seconds >= 50 * MIN_SEGMENT_MS / 1000


def test_a_big_job_reports_progress_a_bounded_number_of_times(fifty):
    _, progress = fifty
    narrating = [p for p, message in progress.calls if message.startswith("Narrating")]
    rendering = [p for p in progress.percents if 40 <= p <= 92]

    assert 1 <= len(narrating) <= 8
    assert 1 <= len(rendering) <= 9
    assert len(progress.calls) == 2 + len(narrating) + len(rendering) + 1  # planning, the stages, packaging
    assert progress.percents == sorted(set(progress.percents))


# ------------------------------------------------------------------ timing from the narration


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0])
def test_segments_last_as_long_as_their_narration(rate):
    narrator = ToneNarrator()
    data = {"story_prompt": PYTHAGORAS, "segments": 2, "voice_rate": rate, "resolution": SMALL}

    segments = manifest(VideoEngine(voice=narrator).generate(data, ProgressLog()))["segments"]

    assert [text for text, *_ in narrator.calls] == [s["narration"] for s in segments], "each narrated once"
    for segment in segments:
        spoken = narrator.speak(segment["narration"], rate=rate).duration_seconds
        assert segment["end_ms"] - segment["start_ms"] == segment_ms(spoken)
        assert segment["duration_seconds"] == segment_ms(spoken) / 1000


def test_segment_length_is_proportional_to_its_words():
    for rate in (0.5, 1.0, 2.0):
        (segment,) = manifest(run(story_prompt=PYTHAGORAS, segments=1, voice_rate=rate))["segments"]
        words = len(segment["narration"].split())  # as the double counts them
        assert segment["end_ms"] - segment["start_ms"] == round(words * MS_PER_WORD / rate + 1000 * PAUSE_SECONDS)


def test_faster_voice_shortens_the_video():
    slow = run(story_prompt=PYTHAGORAS, segments=2, voice_rate=0.75)
    fast = run(story_prompt=PYTHAGORAS, segments=2, voice_rate=1.5)

    assert manifest(fast)["narration_duration_ms"] < manifest(slow)["narration_duration_ms"]
    assert probe(mp4(fast)).seconds < probe(mp4(slow)).seconds


def test_the_narrator_is_given_the_language_voice_and_rate():
    narrator = ToneNarrator()
    data = {"story_prompt": PYTHAGORAS, "segments": 2, "resolution": SMALL}

    VideoEngine(voice=narrator).generate(data | {"voice_name": "en-gb+f3", "voice_rate": 1.25}, ProgressLog())
    VideoEngine(voice=narrator).generate(data, ProgressLog())

    assert {call[1:] for call in narrator.calls} == {("English", "en-gb+f3", 1.25), ("English", None, 1.0)}


def test_short_segments_last_at_least_the_minimum():
    segments = storyboard(run(story_prompt="Fractions", segments=4))["segments"]

    assert all(s["end_ms"] - s["start_ms"] == MIN_SEGMENT_MS for s in segments)


def test_segments_are_back_to_back_and_add_up_to_the_narration():
    artifact = run(story_prompt=PYTHAGORAS, segments=7)
    document = manifest(artifact)
    segments = document["segments"]

    assert segments[0]["start_ms"] == 0
    assert all(a["end_ms"] == b["start_ms"] for a, b in pairwise(segments))
    assert segments[-1]["end_ms"] == document["narration_duration_ms"]
    assert document["total_duration_seconds"] == pytest.approx(document["narration_duration_ms"] / 1000, abs=0.002)
    assert artifact.summary["duration_seconds"] == document["total_duration_seconds"]


# ------------------------------------------------------------------ subtitles


def test_subtitles_only_when_asked():
    for flag in (None, False):
        request = {} if flag is None else {"include_subtitles": flag}
        artifact = run(**request)
        assert "subtitles.vtt" not in [f.name for f in artifact.files]
        assert "subtitles" not in manifest(artifact)["files"]
        assert artifact.summary["subtitles"] is False

    artifact = run(include_subtitles=True)
    assert artifact.file("subtitles.vtt").content_type.startswith("text/vtt")
    assert manifest(artifact)["files"]["subtitles"] == "subtitles.vtt"


@pytest.mark.parametrize("count", [1, 4, 12])
def test_subtitle_cues_are_consecutive_and_inside_the_video(count):
    artifact = run(story_prompt=PYTHAGORAS, segments=count, include_subtitles=True)
    timeline = cues(artifact.file("subtitles.vtt").body.decode())
    document = manifest(artifact)
    video_ms = probe(mp4(artifact)).seconds * 1000

    assert timeline[0][0] == 0
    assert all(a[1] == b[0] for a, b in pairwise(timeline))
    assert all(start < end for start, end, _ in timeline)
    assert timeline[-1][1] == pytest.approx(document["narration_duration_ms"], abs=1)
    assert timeline[-1][1] <= video_ms + 1
    boundaries = sorted({start for start, _, _ in timeline} | {end for _, end, _ in timeline})
    for segment in document["segments"]:
        assert min(abs(b - segment["start_ms"]) for b in boundaries) <= 1
        assert min(abs(b - segment["end_ms"]) for b in boundaries) <= 1
        inside = [
            text for start, end, text in timeline if segment["start_ms"] - 1 <= start and end <= segment["end_ms"] + 1
        ]
        assert " ".join(inside) == segment["narration"]


def test_subtitle_cues_stay_short():
    timeline = cues(
        run(story_prompt=PYTHAGORAS, segments=2, include_subtitles=True).file("subtitles.vtt").body.decode()
    )

    assert all(len(text.split()) <= 14 for _, _, text in timeline)


def test_subtitle_text_is_escaped():
    prompt = "Use <b> tags & arrows --> carefully. Markup is not text."
    vtt = run(story_prompt=prompt, segments=1, include_subtitles=True).file("subtitles.vtt").body.decode()

    assert cues(vtt)[0][2] == "Use &lt;b&gt; tags &amp; arrows --&gt; carefully. Markup is not text."


# ------------------------------------------------------------------ the MP4


@pytest.mark.parametrize("resolution", [SMALL, "180*320"])
def test_the_video_is_h264_at_the_requested_size_with_one_aac_track(resolution):
    artifact = run(story_prompt=PYTHAGORAS, segments=2, resolution=resolution)
    width, height = (int(side) for side in resolution.split("*"))
    video = probe(mp4(artifact))

    assert artifact.primary == "video.mp4"
    assert artifact.primary_file.content_type == "video/mp4"
    assert video.video == [("h264", width, height)]
    assert [codec for codec, _ in video.audio] == ["aac"]
    assert (manifest(artifact)["width"], manifest(artifact)["height"]) == (width, height)
    assert artifact.summary["resolution"] == resolution
    assert artifact.summary["size_bytes"] == manifest(artifact)["size_bytes"] == len(mp4(artifact))


def test_the_video_lasts_as_long_as_its_narration():
    artifact = run(story_prompt=PYTHAGORAS, segments=3, include_subtitles=True)
    document = manifest(artifact)
    seconds = probe(mp4(artifact)).seconds

    assert seconds == pytest.approx(document["total_duration_seconds"], rel=0.01)
    assert seconds == pytest.approx(document["narration_duration_ms"] / 1000, rel=0.01)
    assert seconds == pytest.approx(sum(s["duration_seconds"] for s in document["segments"]), rel=0.01)


def test_the_narration_is_heard():
    artifact = run(story_prompt=PYTHAGORAS, segments=3)
    rms, heard_seconds = loudness(mp4(artifact))

    # The tone (a triangle wave peaking at 8000/32768) sounds 3/4 of each word: an RMS near 0.1.
    assert rms > 0.05
    assert heard_seconds == pytest.approx(manifest(artifact)["total_duration_seconds"], rel=0.01)


def test_the_index_comes_before_the_media_data():
    boxes = probe(mp4(run())).boxes

    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_without_a_resolution_the_video_is_1920x1080_and_the_manifest_shows_the_defaults():
    artifact = VideoEngine(voice=ToneNarrator()).generate({"story_prompt": REFERENCE, "segments": 1}, ProgressLog())
    document = manifest(artifact)

    assert probe(mp4(artifact)).video == [("h264", 1920, 1080)]
    assert document["resolution"] == "1920*1080"
    assert (document["width"], document["height"]) == (1920, 1080)
    assert document["version"] == 2
    assert document["voice_rate"] == 1.0
    assert document["language"] == "English"
    assert document["voice_name"] is None
    assert document["theme"] is None
    assert not set(URLS) & set(document)
    assert artifact.summary["narration"] == "tone"


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="eSpeak NG's wheel is x86_64 only")
def test_the_configured_espeak_narration_is_heard_and_sets_the_timeline(monkeypatch):
    from taskapi.media.espeak import EspeakNarrator

    monkeypatch.setenv("TASKAPI_NARRATION_PROVIDER", "espeak")
    data = {"story_prompt": PYTHAGORAS, "segments": 2, "resolution": SMALL}

    artifact = VideoEngine().generate(data, ProgressLog())

    document = manifest(artifact)
    assert artifact.summary["narration"] == "espeak"
    espeak = EspeakNarrator()
    for segment in document["segments"]:
        # eSpeak's output varies by a few milliseconds from run to run.
        spoken = espeak.speak(segment["narration"], language="English", rate=1.0).duration_seconds
        assert segment["end_ms"] - segment["start_ms"] == pytest.approx(segment_ms(spoken), abs=100)
        assert segment["duration_seconds"] > MIN_SEGMENT_MS / 1000, "long sentences, not the minimum"
    rms, heard_seconds = loudness(mp4(artifact))
    assert rms > 0.01, "speech, not silence"
    assert heard_seconds == pytest.approx(document["narration_duration_ms"] / 1000, rel=0.01)
    assert probe(mp4(artifact)).seconds == pytest.approx(document["total_duration_seconds"], rel=0.01)


# ------------------------------------------------------------------ branding


@pytest.fixture(scope="module")
def branding(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """A red PNG logo, a green 1 s intro and a blue 1 s outro, by URL."""
    folder = tmp_path_factory.mktemp("branding")
    logo = folder / "logo.png"
    logo.write_bytes(png((*RED, 255)))
    return {
        URLS["logo_url"]: (logo, "image/png"),
        URLS["intro_video_url"]: (make_clip(folder / "intro.mp4", 1.0, GREEN), "video/mp4"),
        URLS["outro_video_url"]: (make_clip(folder / "outro.mp4", 1.0, BLUE), "video/mp4"),
    }


SETTINGS = {
    "story_prompt": REFERENCE,
    "segments": 2,
    "resolution": SMALL,
    "voice_name": "en-US-JennyNeural",
    "voice_rate": 1.25,
    "theme": "chalkboard",
    "image_style": "cartoon",
    "language": "English",
    "include_subtitles": True,
}


@pytest.fixture(scope="module")
def branded(branding) -> tuple[Artifact, Artifact, ServedFiles]:
    """The same request rendered plain, and with the logo, intro and outro URLs."""
    fetcher = ServedFiles(branding)
    plain = VideoEngine(voice=ToneNarrator(), fetcher=ServedFiles()).generate(SETTINGS, ProgressLog())
    with_urls = VideoEngine(voice=ToneNarrator(), fetcher=fetcher).generate(SETTINGS | URLS, ProgressLog())
    return plain, with_urls, fetcher


def test_manifest_carries_every_setting_and_url(branded):
    _, artifact, fetcher = branded
    document = manifest(artifact)

    assert (document["resolution"], document["width"], document["height"]) == (SMALL, 320, 180)
    assert document["voice_name"] == "en-US-JennyNeural"
    assert document["voice_rate"] == 1.25
    assert document["theme"] == "chalkboard"
    assert document["image_style"] == "cartoon"
    assert document["include_subtitles"] is True
    for name, url in URLS.items():
        assert document[name] == url
    assert fetcher.calls == [
        (URLS["logo_url"], "logo"),
        (URLS["intro_video_url"], "intro"),
        (URLS["outro_video_url"], "outro"),
    ]


def test_the_logo_shows_in_the_top_right_corner(branded):
    plain, artifact, _ = branded
    corner = (240, 0, 320, 45)
    during_the_first_scene = 1.0 + 1.5  # after the 1 s intro

    assert pixels(picture_at(mp4(artifact), during_the_first_scene), corner, RED) >= 50
    assert pixels(picture_at(mp4(plain), 1.5), corner, RED) == 0


def test_the_intro_opens_and_the_outro_closes_the_video(branded):
    plain, artifact, _ = branded
    shown = pictures(mp4(artifact))

    assert probe(mp4(artifact)).seconds == pytest.approx(probe(mp4(plain)).seconds + 2.0, abs=0.1)
    assert manifest(artifact)["total_duration_seconds"] == pytest.approx(
        manifest(artifact)["narration_duration_ms"] / 1000 + 2.0, abs=0.05
    )
    assert pixels(shown[0][1], (140, 70, 180, 110), GREEN) == 40 * 40, "the first picture is the intro's"
    assert pixels(shown[-1][1], (140, 70, 180, 110), BLUE) == 40 * 40, "the last picture is the outro's"


def test_subtitles_follow_the_video_timeline_after_the_intro(branded):
    _, artifact, _ = branded
    timeline = cues(artifact.file("subtitles.vtt").body.decode())
    document = manifest(artifact)

    assert document["segments"][0]["start_ms"] == 0, "segments count from the start of the narration"
    assert timeline[0][0] == pytest.approx(1000, abs=20), "cues count from the start of the MP4"
    assert timeline[-1][1] <= probe(mp4(artifact)).seconds * 1000 - 900, "and end before the outro"


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (FetchRefused("http://169.254.169.254/x", "it resolves to the cloud metadata address"), True),
        (FetchFailed("http://169.254.169.254/x", "the server answered 503", retryable=True), False),
        (FetchFailed("http://169.254.169.254/x", "the server answered 404", retryable=False), True),
    ],
    ids=["refused", "retryable", "not-found"],
)
def test_a_failed_fetch_fails_the_task_naming_the_url(error, permanent):
    url = "http://169.254.169.254/x"
    engine = VideoEngine(voice=ToneNarrator(), fetcher=ServedFiles(errors={url: error}))

    with pytest.raises(EngineError) as caught:
        engine.generate({"story_prompt": REFERENCE, "segments": 1, "resolution": SMALL, "logo_url": url}, ProgressLog())

    assert caught.value.permanent is permanent
    assert "logo" in str(caught.value)
    assert url in str(caught.value)
    assert error.reason in str(caught.value)


def test_the_media_fetcher_refuses_a_private_address_without_connecting():
    def private(*_: Any, **__: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))]

    def fetcher(url: str, kind: str, directory: Path) -> Any:
        # What MediaFetch does, with a resolver that answers an internal address (sockets are off).
        return fetch(url, max_bytes=1024, timeout_seconds=5, accept=LOGO_TYPES, resolver=private, directory=directory)

    engine = VideoEngine(voice=ToneNarrator(), fetcher=fetcher)
    data = {
        "story_prompt": REFERENCE,
        "segments": 1,
        "resolution": SMALL,
        "logo_url": "https://internal.example/logo.png",
    }

    with pytest.raises(EngineError) as caught:
        engine.generate(data, ProgressLog())

    assert caught.value.permanent is True
    assert "https://internal.example/logo.png" in str(caught.value)
    assert "private" in str(caught.value)


def test_a_logo_that_is_not_an_image_is_a_permanent_render_error(tmp_path):
    fake = tmp_path / "logo.png"
    fake.write_bytes(b"<html>not a picture</html>")
    engine = VideoEngine(voice=ToneNarrator(), fetcher=ServedFiles({URLS["logo_url"]: (fake, "image/png")}))

    with pytest.raises(EngineError) as caught:
        engine.generate(
            {"story_prompt": REFERENCE, "segments": 1, "resolution": SMALL, "logo_url": URLS["logo_url"]}, ProgressLog()
        )

    assert caught.value.permanent is True
    assert "rendered" in str(caught.value)
    assert "logo" in str(caught.value)


# ------------------------------------------------------------------ narration failures


class FailingNarrator:
    name = "failing"

    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable

    def speak(self, text: str, **_: Any) -> Speech:
        raise NarrationError("the voice service is unavailable", retryable=self.retryable)


@pytest.mark.parametrize("retryable", [True, False])
def test_a_narration_failure_fails_the_task_retryable_as_the_narrator_says(retryable):
    engine = VideoEngine(voice=FailingNarrator(retryable), fetcher=ServedFiles())

    with pytest.raises(EngineError) as caught:
        engine.generate({"story_prompt": REFERENCE, "segments": 2, "resolution": SMALL}, ProgressLog())

    assert caught.value.permanent is not retryable
    assert "the voice service is unavailable" in str(caught.value)


def test_a_configured_narrator_that_cannot_start_is_a_permanent_error(monkeypatch):
    from taskapi.media import espeak

    def unavailable() -> tuple[str, str]:
        raise NarrationError(espeak.ESPEAK_UNAVAILABLE, retryable=False)

    # As on arm64, where there is no eSpeak NG wheel: the narrator fails when it is made.
    monkeypatch.setattr(espeak, "_espeak", None)
    monkeypatch.setattr(espeak, "espeak_files", unavailable)
    monkeypatch.setenv("TASKAPI_NARRATION_PROVIDER", "espeak")

    with pytest.raises(EngineError) as caught:
        VideoEngine().generate({"story_prompt": REFERENCE, "segments": 1, "resolution": SMALL}, ProgressLog())

    assert caught.value.permanent is True
    assert "polly" in str(caught.value).lower()


# ------------------------------------------------------------------ input and progress


@pytest.mark.parametrize(
    "change",
    [
        {"segments": 0},
        {"segments": 51},
        {"segments": "max"},
        {"segments": None},
        {"voice_rate": 10},
        {"resolution": "1920x1080"},
        {"resolution": "321*180"},
        {"include_subtitles": "yes"},
        {"logo_url": "ftp://example.com/logo.png"},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}",
)
def test_invalid_options_are_a_permanent_error(change):
    data = {"story_prompt": REFERENCE, "segments": 3, **change}
    if change.get("segments", 0) is None:
        del data["segments"]
    narrator, fetcher = ToneNarrator(), ServedFiles()

    with pytest.raises(EngineError) as caught:
        VideoEngine(voice=narrator, fetcher=fetcher).generate(data, ProgressLog())

    assert caught.value.permanent is True
    assert next(iter(change)) in str(caught.value)
    assert narrator.calls == fetcher.calls == [], "nothing narrated or fetched"


def test_progress_goes_through_the_stages(branding):
    progress = ProgressLog()
    fetcher = ServedFiles(branding)
    data = {"story_prompt": PYTHAGORAS, "segments": 12, "resolution": SMALL, "logo_url": URLS["logo_url"]}

    VideoEngine(voice=ToneNarrator(), fetcher=fetcher).generate(data, progress)

    stages = [(percent, message.split()[0]) for percent, message in progress.calls]
    assert progress.calls[:3] == [
        (2, "Reading the prompt"),
        (5, "Planning 12 segments"),
        (6.0, "Fetching the logo and intro/outro videos"),
    ]
    assert progress.calls[3] == (8.0, "Narrating segment 1 of 12")
    assert all(8 <= p <= 38 for p, word in stages if word == "Narrating")
    rendering = [(p, m) for p, m in progress.calls if 40 <= p <= 92]
    assert 2 <= len(rendering) <= 9
    assert rendering[-1] == (92.0, "Rendered 12 segments")
    assert progress.calls[-1] == (94, "Packaging the video")
    assert progress.percents == sorted(set(progress.percents))


def test_cancelling_while_rendering_stops_and_leaves_no_temporary_files(branding, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the engine's TemporaryDirectory goes

    class CancelWhenRendering(ProgressLog):
        def __call__(self, percent: float, message: str) -> None:
            self.calls.append((percent, message))
            if percent >= 40:
                raise Cancelled("the task was cancelled")

    progress = CancelWhenRendering()
    engine = VideoEngine(voice=ToneNarrator(), fetcher=ServedFiles(branding))
    data = {"story_prompt": PYTHAGORAS, "segments": 3, "resolution": SMALL, **URLS}

    with pytest.raises(Cancelled):
        engine.generate(data, progress)

    assert 40 <= progress.calls[-1][0] < 92, "stopped at the first rendering report"
    assert list(scratch.iterdir()) == [], "the fetched clips and the partial MP4 are gone"
