"""Offline narration through eSpeak NG's C library (taskapi.media.espeak.EspeakNarrator): real
speech, measured. eSpeak NG comes from the espeakng-loader wheel, built for x86_64 only; elsewhere
these tests are skipped (narration there is Polly's), except the one that checks what a machine
without eSpeak is told."""

from __future__ import annotations

import itertools
import platform
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskapi.media import espeak as espeak_module
from taskapi.media.espeak import ESPEAK_UNAVAILABLE, EspeakNarrator, espeak_words_per_minute
from taskapi.media.narration import NarrationError, narrator_for
from taskapi.media.speech import Speech, pcm_values

needs_espeak = pytest.mark.skipif(
    platform.machine() != "x86_64",
    reason="eSpeak NG's wheel (espeakng-loader) is built for x86_64 only; on this machine narration is Polly's",
)

SENTENCE = "Pythagoras discovered a theorem about right triangles."
MORE = " The square of the hypotenuse is equal to the sum of the squares of the other two sides."
FRENCH = (
    "Pythagore a découvert un théorème sur les triangles rectangles. Le carré de l'hypoténuse est égal à la "
    "somme des carrés des deux autres côtés."
)


@pytest.fixture(scope="module")
def espeak() -> EspeakNarrator:
    return EspeakNarrator()


def rms(speech: Speech) -> float:
    values = pcm_values(speech.samples)
    return (sum(v * v for v in values) / len(values)) ** 0.5


def zero_crossings(speech: Speech) -> int:
    values = [v for v in pcm_values(speech.samples) if abs(v) > 100]  # ignore the noise around silence
    return sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))


@needs_espeak
def test_a_sentence_is_more_than_a_second_of_audible_speech(espeak):
    speech = espeak.speak(SENTENCE)

    assert speech.sample_rate == espeak.sample_rate == 22050
    assert speech.duration_seconds > 1
    assert rms(speech) > 500, "not silence"
    assert zero_crossings(speech) > 200, "a waveform that swings, not a constant"


@needs_espeak
def test_longer_text_is_longer_audio(espeak):
    short, long = espeak.speak(SENTENCE), espeak.speak(SENTENCE + MORE)

    assert long.duration_seconds > short.duration_seconds + 2


@needs_espeak
def test_a_faster_rate_is_shorter_audio(espeak):
    durations = {rate: espeak.speak(SENTENCE + MORE, rate=rate).duration_seconds for rate in (0.5, 1, 2)}

    assert durations[2] < 0.7 * durations[1]
    assert durations[0.5] > 1.4 * durations[1]


@pytest.mark.parametrize(
    ("rate", "words_per_minute"), [(None, 175), (1, 175), (1.5, 262), (2, 350), (0.25, 80), (0.3, 80), (4, 450)]
)
def test_the_rate_is_175_words_a_minute_times_voice_rate_within_espeak_range(rate, words_per_minute):
    assert espeak_words_per_minute(rate) == words_per_minute


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_rate_is_a_positive_multiple(rate):
    with pytest.raises(ValueError, match="positive"):
        espeak_words_per_minute(rate)


@needs_espeak
@pytest.mark.parametrize(
    ("language", "voice_name", "voice"),
    [
        (None, None, "en"),
        ("English", None, "en"),
        ("en-US", None, "en-us"),
        ("French", None, "fr"),
        ("fr-FR", None, "fr"),
        ("Español", None, "es"),
        ("pt_BR", None, "pt-br"),
        ("zh-CN", None, "cmn"),
        ("Klingon", None, "en"),
        ("en", "Joanna", "en"),  # a Polly voice means nothing to eSpeak: the language decides
        ("fr", "en-us", "en-us"),  # an eSpeak voice wins over the language
        ("English", "f3", "en+f3"),  # a variant of the language's voice
        ("French", "KLATT", "fr+klatt"),
        ("de", "en-us+m3", "en-us+m3"),
    ],
)
def test_language_and_voice_name_choose_the_espeak_voice(espeak, language, voice_name, voice):
    assert espeak.voice_for(language, voice_name) == voice


@needs_espeak
def test_french_is_spoken_by_the_french_voice(espeak):
    french = espeak.speak(FRENCH, language="French")
    english = espeak.speak(FRENCH, language="English")

    assert french.duration_seconds > 3
    assert rms(french) > 500
    assert zero_crossings(french) > 200
    # English rules read French spelling letter by letter far more: the voices differ by about a fifth
    assert french.duration_seconds < 0.9 * english.duration_seconds
    assert espeak.speak(FRENCH, language="fr-FR").duration_seconds == pytest.approx(french.duration_seconds, rel=0.03)


@needs_espeak
def test_a_variant_voice_speaks(espeak):
    speech = espeak.speak(SENTENCE, voice_name="f3")

    assert speech.duration_seconds > 1
    assert rms(speech) > 500


@needs_espeak
@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\x00"])
def test_no_text_is_an_error(espeak, text):
    with pytest.raises(NarrationError, match="no text") as raised:
        espeak.speak(text)

    assert raised.value.retryable is False


@needs_espeak
def test_text_that_yields_only_silence_is_an_error_not_narration(espeak):
    with pytest.raises(NarrationError, match="no audible speech") as raised:
        espeak.speak("...")

    assert raised.value.retryable is False


@needs_espeak
def test_concurrent_narrations_each_keep_their_own_voice_and_rate(espeak):
    """eSpeak keeps one voice and one rate per process: without the lock, one call's settings leak into another's."""
    jobs = [(SENTENCE + MORE, "English", 1.0), (FRENCH, "French", 1.0), (SENTENCE + MORE, "English", 2.0)] * 4
    alone = {job: espeak.speak(job[0], language=job[1], rate=job[2]).duration_seconds for job in set(jobs)}

    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda job: espeak.speak(job[0], language=job[1], rate=job[2]), jobs))

    for job, speech in zip(jobs, together, strict=True):
        assert speech.duration_seconds == pytest.approx(alone[job], rel=0.03), job


@needs_espeak
def test_narrator_for_espeak():
    narrator = narrator_for("espeak")

    assert isinstance(narrator, EspeakNarrator)
    assert narrator.name == "espeak"


def test_without_the_wheel_on_arm64_the_error_says_to_use_polly(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # `import espeakng_loader` fails
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(espeak_module, "_espeak", None)  # as in a process that never loaded it

    with pytest.raises(NarrationError) as raised:
        EspeakNarrator()

    assert (
        str(raised.value)
        == ESPEAK_UNAVAILABLE
        == "eSpeak NG is available only on x86_64 here; use NarrationProvider=polly"
    )
    assert raised.value.retryable is False
