"""Video engine: storyboard, manifest and WebVTT subtitles built from the prompt and the options."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from typing import Any

import pytest

from taskapi.engines import Artifact, EngineError
from taskapi.engines.formats import MIN_SEGMENT_MS, WORDS_PER_MINUTE
from taskapi.engines.text import normalize_space, word_count
from taskapi.engines.video import VideoEngine
from tests.unit.engines.conftest import LONG, PYTHAGORAS, REFERENCE, ProgressLog

CUE_TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")
URLS = {
    "logo_url": "https://cdn.example.com/logo.png",
    "intro_video_url": "https://cdn.example.com/intro.mp4",
    "outro_video_url": "https://cdn.example.com/outro.mp4",
}


def run(**request: Any) -> Artifact:
    data = {"story_prompt": REFERENCE, "segments": 3, **request}
    return VideoEngine().generate(data, ProgressLog())


def manifest(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("manifest.json").body)


def storyboard(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("storyboard.json").body)


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


@pytest.mark.parametrize("count", [1, 2, 3, 5, 12, 50])
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


def test_maximum_never_exceeds_fifty():
    artifact = run(story_prompt=LONG, segments="maximum")

    assert manifest(artifact)["segment_count"] == 50


def test_maximum_of_a_one_word_prompt_is_one_segment():
    assert manifest(run(story_prompt="Fractions", segments="maximum"))["segment_count"] == 1


def test_durations_follow_word_count_and_voice_rate():
    for rate in (0.5, 1.0, 2.0):
        for segment in storyboard(run(story_prompt=PYTHAGORAS, segments=3, voice_rate=rate))["segments"]:
            expected = max(MIN_SEGMENT_MS, round(segment["word_count"] * 60_000 / (WORDS_PER_MINUTE * rate)))
            assert segment["end_ms"] - segment["start_ms"] == expected
            assert segment["duration_seconds"] == expected / 1000


def test_faster_voice_shortens_the_video():
    slow = manifest(run(story_prompt=PYTHAGORAS, segments=2, voice_rate=0.75))["total_duration_ms"]
    fast = manifest(run(story_prompt=PYTHAGORAS, segments=2, voice_rate=1.5))["total_duration_ms"]

    assert fast < slow


def test_short_segments_last_at_least_the_minimum():
    segments = storyboard(run(story_prompt="Fractions", segments=4))["segments"]

    assert all(s["end_ms"] - s["start_ms"] >= MIN_SEGMENT_MS for s in segments)


def test_segments_are_back_to_back_and_add_up_to_the_total():
    document = manifest(run(story_prompt=PYTHAGORAS, segments=7))
    segments = document["segments"]

    assert segments[0]["start_ms"] == 0
    assert all(a["end_ms"] == b["start_ms"] for a, b in pairwise(segments))
    assert segments[-1]["end_ms"] == document["total_duration_ms"]
    assert document["total_duration_seconds"] == document["total_duration_ms"] / 1000


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
def test_subtitle_cues_are_consecutive_and_match_the_segments(count):
    artifact = run(story_prompt=PYTHAGORAS, segments=count, include_subtitles=True)
    timeline = cues(artifact.file("subtitles.vtt").body.decode())
    segments = manifest(artifact)["segments"]

    assert timeline[0][0] == 0
    assert all(a[1] == b[0] for a, b in pairwise(timeline))
    assert all(start < end for start, end, _ in timeline)
    assert timeline[-1][1] == manifest(artifact)["total_duration_ms"]
    boundaries = {start for start, _, _ in timeline} | {end for _, end, _ in timeline}
    for segment in segments:
        assert segment["start_ms"] in boundaries
        assert segment["end_ms"] in boundaries
        inside = [text for start, end, text in timeline if segment["start_ms"] <= start and end <= segment["end_ms"]]
        assert " ".join(inside) == segment["narration"]


def test_subtitle_cues_stay_short():
    timeline = cues(run(story_prompt=LONG, segments=5, include_subtitles=True).file("subtitles.vtt").body.decode())

    assert all(len(text.split()) <= 14 for _, _, text in timeline)


def test_subtitle_text_is_escaped():
    prompt = "Use <b> tags & arrows --> carefully. Markup is not text."
    vtt = run(story_prompt=prompt, segments=1, include_subtitles=True).file("subtitles.vtt").body.decode()

    assert cues(vtt)[0][2] == "Use &lt;b&gt; tags &amp; arrows --&gt; carefully. Markup is not text."


def test_manifest_defaults():
    document = manifest(run())

    assert document["resolution"] == "1920*1080"
    assert (document["width"], document["height"]) == (1920, 1080)
    assert document["voice_rate"] == 1.0
    assert document["language"] == "English"
    assert document["voice_name"] is None
    assert document["theme"] is None
    assert not set(URLS) & set(document)


def test_manifest_carries_every_setting_and_url():
    document = manifest(
        run(
            resolution="1280*720",
            voice_name="en-US-JennyNeural",
            voice_rate=1.25,
            theme="chalkboard",
            image_style="cartoon",
            language="English",
            include_subtitles=True,
            **URLS,
        )
    )

    assert (document["resolution"], document["width"], document["height"]) == ("1280*720", 1280, 720)
    assert document["voice_name"] == "en-US-JennyNeural"
    assert document["voice_rate"] == 1.25
    assert document["theme"] == "chalkboard"
    assert document["image_style"] == "cartoon"
    assert document["include_subtitles"] is True
    for name, url in URLS.items():
        assert document[name] == url


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


@pytest.mark.parametrize(
    "change",
    [
        {"segments": 0},
        {"segments": 51},
        {"segments": "max"},
        {"segments": None},
        {"voice_rate": 10},
        {"resolution": "1920x1080"},
        {"include_subtitles": "yes"},
        {"logo_url": "ftp://example.com/logo.png"},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}",
)
def test_invalid_options_are_a_permanent_error(change):
    data = {"story_prompt": REFERENCE, "segments": 3, **change}
    if change.get("segments", 0) is None:
        del data["segments"]

    with pytest.raises(EngineError) as caught:
        VideoEngine().generate(data, ProgressLog())

    assert caught.value.permanent is True
    assert next(iter(change)) in str(caught.value)


def test_progress_names_segments():
    progress = ProgressLog()

    VideoEngine().generate({"story_prompt": PYTHAGORAS, "segments": 12}, progress)

    messages = [message for _, message in progress.calls]
    assert "Segment 1 of 12" in messages
    assert "Segment 12 of 12" in messages
