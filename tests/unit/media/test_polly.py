"""Narration through Amazon Polly (taskapi.media.polly.PollyNarrator), and the Speech it returns.

A real boto3 Polly client with dummy credentials and botocore's Stubber: every request is checked
against botocore's own Polly model and against the parameters a test expects, and no request leaves
the process (tests/unit blocks sockets)."""

from __future__ import annotations

import array
import io
import math
import re
import sys
from collections.abc import Iterator
from html import unescape
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from taskapi.media.narration import NarrationError, narrator_for
from taskapi.media.polly import (
    POLLY_DEFAULT_VOICES,
    POLLY_MAX_BILLED_CHARACTERS,
    POLLY_MAX_TOTAL_CHARACTERS,
    POLLY_NEURAL_VOICES,
    PollyNarrator,
    split_for_polly,
)
from taskapi.media.speech import Speech, concatenate

RATE = 16000


def tone(seconds: float = 0.25, frequency: float = 440.0, sample_rate: int = RATE) -> bytes:
    """Audible PCM (a sine at about -12 dBFS), signed 16-bit little-endian."""
    count = round(seconds * sample_rate)
    values = array.array("h", (round(8000 * math.sin(2 * math.pi * frequency * i / sample_rate)) for i in range(count)))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def audio(pcm: bytes) -> dict[str, Any]:
    """A SynthesizeSpeech response carrying `pcm`."""
    return {"AudioStream": StreamingBody(io.BytesIO(pcm), len(pcm)), "ContentType": "audio/pcm"}


def request(text: str, voice: str = "Joanna", language: str = "en-US", *, sample_rate: str = "16000") -> dict:
    return {
        "Engine": "neural",
        "LanguageCode": language,
        "OutputFormat": "pcm",
        "SampleRate": sample_rate,
        "Text": text,
        "TextType": "ssml",
        "VoiceId": voice,
    }


def polly_client(**config: Any) -> Any:
    return boto3.client(
        "polly",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(**config) if config else None,
    )


@pytest.fixture
def client() -> Any:
    return polly_client()


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def narrator(client: Any) -> PollyNarrator:
    return PollyNarrator(client)


def sent_texts(client: Any) -> list[str]:
    """The SSML of every SynthesizeSpeech request the client builds, in order."""
    texts: list[str] = []
    client.meta.events.register(
        "before-parameter-build.polly.SynthesizeSpeech", lambda params, **_: texts.append(params["Text"])
    )
    return texts


def spoken(ssml: str) -> str:
    """What Polly bills for: the text of the SSML, tags removed and entities resolved."""
    return unescape(re.sub(r"<[^>]*>", "", ssml))


# ------------------------------------------------------------------ the request


def test_plain_text_is_spoken_by_joanna_at_the_normal_rate(narrator, stub):
    pcm = tone(0.5)
    stub.add_response(
        "synthesize_speech", audio(pcm), request("<speak><prosody rate='100%'>Hello world.</prosody></speak>")
    )

    speech = narrator.speak("Hello world.")

    assert speech == Speech(pcm, RATE)
    assert speech.duration_seconds == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("language", "voice", "code"),
    [
        (None, "Joanna", "en-US"),
        ("English", "Joanna", "en-US"),
        ("en", "Joanna", "en-US"),
        ("en-US", "Joanna", "en-US"),
        ("en-GB", "Amy", "en-GB"),
        ("British English", "Amy", "en-GB"),
        ("French", "Lea", "fr-FR"),
        ("fr-FR", "Lea", "fr-FR"),
        ("FR-ca", "Gabrielle", "fr-CA"),
        ("Español", "Lucia", "es-ES"),
        ("spanish", "Lucia", "es-ES"),
        ("German", "Vicki", "de-DE"),
        ("it", "Bianca", "it-IT"),
        ("pt_BR", "Camila", "pt-BR"),
        ("Japanese", "Kazuha", "ja-JP"),
        ("Hindi", "Kajal", "hi-IN"),
        ("Dutch", "Laura", "nl-NL"),
        ("Arabic", "Hala", "ar-AE"),
        ("zh-TW", "Zhiyu", "cmn-CN"),
        ("Klingon", "Joanna", "en-US"),
    ],
)
def test_the_language_picks_its_default_neural_voice(narrator, stub, language, voice, code):
    ssml = "<speak><prosody rate='100%'>One.</prosody></speak>"
    stub.add_response("synthesize_speech", audio(tone()), request(ssml, voice, code))

    narrator.speak("One.", language=language)


@pytest.mark.parametrize(
    ("voice_name", "language", "voice", "code"),
    [
        ("Matthew", "English", "Matthew", "en-US"),
        ("matthew", None, "Matthew", "en-US"),
        ("  STEPHEN ", "en", "Stephen", "en-US"),
        ("brian", "French", "Brian", "en-GB"),  # the named voice wins, in its own language
        ("Remi", "French", "Remi", "fr-FR"),
        ("Kajal", "Hindi", "Kajal", "hi-IN"),  # bilingual: the task's language when the voice speaks it
        ("Kajal", None, "Kajal", "en-IN"),
        ("en-us+f3", "German", "Vicki", "de-DE"),  # an eSpeak voice means nothing to Polly
        ("Zeina", "Arabic", "Hala", "ar-AE"),  # standard only: not a neural voice
    ],
)
def test_a_named_polly_voice_wins_over_the_language(narrator, stub, voice_name, language, voice, code):
    ssml = "<speak><prosody rate='100%'>One.</prosody></speak>"
    stub.add_response("synthesize_speech", audio(tone()), request(ssml, voice, code))

    narrator.speak("One.", language=language, voice_name=voice_name)


@pytest.mark.parametrize(
    ("rate", "percent"),
    [
        (None, 100),
        (1, 100),
        (1.0, 100),
        (0.25, 25),
        (0.5, 50),
        (1.25, 125),
        (2, 200),
        (3.5, 200),
        (4.0, 200),
        (0.1, 20),
    ],
)
def test_the_voice_rate_is_a_prosody_percentage_within_polly_range(narrator, stub, rate, percent):
    ssml = f"<speak><prosody rate='{percent}%'>One.</prosody></speak>"
    stub.add_response("synthesize_speech", audio(tone()), request(ssml))

    narrator.speak("One.", rate=rate)


def test_text_is_escaped_for_ssml(narrator, stub):
    ssml = (
        "<speak><prosody rate='100%'>If a &lt; b &amp; c &gt; d, then &quot;it&apos;s&quot; "
        "&lt;/prosody&gt;&lt;break/&gt; text.</prosody></speak>"
    )
    stub.add_response("synthesize_speech", audio(tone()), request(ssml))

    narrator.speak('If a < b & c > d, then "it\'s" </prosody><break/> text.')


def test_characters_xml_cannot_carry_are_dropped_and_the_text_trimmed(narrator, stub):
    stub.add_response("synthesize_speech", audio(tone()), request("<speak><prosody rate='100%'>a b</prosody></speak>"))

    narrator.speak("  a\x00b\x1b \n")


def test_pcm_at_8000_hz_is_asked_for_as_a_string(client, stub):
    pcm = tone(0.5, sample_rate=8000)
    ssml = "<speak><prosody rate='100%'>One.</prosody></speak>"
    stub.add_response("synthesize_speech", audio(pcm), request(ssml, sample_rate="8000"))

    speech = PollyNarrator(client, sample_rate=8000).speak("One.")

    assert speech.sample_rate == 8000
    assert speech.duration_seconds == pytest.approx(0.5)


def test_polly_offers_pcm_at_8_or_16_khz_only(client):
    with pytest.raises(ValueError, match="8000, 16000"):
        PollyNarrator(client, sample_rate=22050)


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\x00\x01"])
def test_no_text_is_an_error_and_asks_polly_nothing(narrator, stub, text):
    with pytest.raises(NarrationError) as raised:
        narrator.speak(text)

    assert raised.value.retryable is False


def test_silence_from_polly_is_not_narration(narrator, stub):
    stub.add_response(
        "synthesize_speech", audio(bytes(RATE)), request("<speak><prosody rate='100%'>...</prosody></speak>")
    )

    with pytest.raises(NarrationError, match="no audible speech") as raised:
        narrator.speak("...")

    assert raised.value.retryable is False


# ------------------------------------------------------------------ long text


def test_long_text_goes_in_several_requests_split_at_sentences(client, narrator, stub):
    sentence = "Pythagoras discovered a theorem about right triangles, and it is still taught today."
    text = " ".join(f"{sentence[:-1]} number {i}." for i in range(120))  # about 11,000 characters
    texts = sent_texts(client)
    pieces = [tone(0.1, frequency=200 + 50 * i) for i in range(4)]
    for pcm in pieces:
        stub.add_response("synthesize_speech", audio(pcm), request(ANY))

    speech = narrator.speak(text)

    assert len(texts) == 4
    for ssml in texts:
        assert ssml.startswith("<speak><prosody rate='100%'>")
        assert len(ssml) <= POLLY_MAX_TOTAL_CHARACTERS
        assert len(spoken(ssml)) <= POLLY_MAX_BILLED_CHARACTERS
        assert spoken(ssml).endswith(".")  # each request ends at a sentence
    assert " ".join(spoken(ssml) for ssml in texts) == text
    assert speech.samples == b"".join(pieces), "the pieces' audio, in order"


def test_escaped_characters_count_towards_the_total_limit(client, narrator, stub):
    text = "Q&A: " + "& " * 2500 + "<end>."  # short to bill, but every & is five characters of SSML
    texts = sent_texts(client)
    for _ in range(6):  # "Q&A:" and 498 "&", then 500 "&" a request (5 + 1 characters each), then the rest
        stub.add_response("synthesize_speech", audio(tone(0.05)), request(ANY))

    narrator.speak(text)

    assert len(texts) == 6
    assert all(len(ssml) <= POLLY_MAX_TOTAL_CHARACTERS for ssml in texts)
    assert " ".join(spoken(ssml) for ssml in texts) == " ".join(text.split())


def test_a_sentence_over_the_limit_is_split_between_words():
    words = [f"word{i}" for i in range(1000)]  # one 7,889-character sentence without a full stop
    chunks = split_for_polly(" ".join(words))

    assert len(chunks) == 3
    assert all(len(chunk) <= POLLY_MAX_BILLED_CHARACTERS for chunk in chunks)
    assert [word for chunk in chunks for word in chunk.split()] == words, "no word is cut"


def test_a_word_over_the_limit_is_cut_where_it_must_be():
    text = "短" * 7000  # no spaces, no sentence end
    chunks = split_for_polly(text)

    assert [len(chunk) for chunk in chunks] == [3000, 3000, 1000]
    assert "".join(chunks) == text


def test_sentences_are_kept_whole_and_packed_together():
    text = "One. Two! Three? 四。五。 Six\nSeven."

    assert split_for_polly(text) == ["One. Two! Three? 四。 五。 Six Seven."]
    assert split_for_polly(text, limit=10) == ["One. Two!", "Three? 四。", "五。 Six", "Seven."]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400), ("ServiceFailureException", 500)])
def test_a_throttled_or_failing_polly_is_retryable(narrator, stub, code, status):
    stub.add_client_error("synthesize_speech", service_error_code=code, http_status_code=status)

    with pytest.raises(NarrationError, match="retry") as raised:
        narrator.speak("One.")

    assert raised.value.retryable is True


def test_a_timeout_is_retryable():
    client = polly_client(retries={"total_max_attempts": 1})

    def time_out(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://polly.us-east-1.amazonaws.com/")

    client.meta.events.register("before-send", time_out)

    with pytest.raises(NarrationError) as raised:
        PollyNarrator(client).speak("One.")

    assert raised.value.retryable is True
    assert isinstance(raised.value.__cause__, ReadTimeoutError)


@pytest.mark.parametrize(
    "code",
    ["ValidationException", "InvalidSsmlException", "TextLengthExceededException", "EngineNotSupportedException"],
)
def test_what_polly_refuses_is_not_retryable(narrator, stub, code):
    stub.add_client_error(
        "synthesize_speech",
        service_error_code=code,
        service_message="1 validation error: VoiceId",
        http_status_code=400,
    )

    with pytest.raises(NarrationError) as raised:
        narrator.speak("One.", language="French")

    assert raised.value.retryable is False
    assert str(raised.value) == f"Polly refused to narrate with voice Lea (fr-FR, neural engine): {code}"


def test_an_error_in_a_later_request_fails_the_whole_narration(client, narrator, stub):
    text = " ".join(["A sentence of about fifty characters, give or take."] * 100)
    stub.add_response("synthesize_speech", audio(tone()), request(ANY))
    stub.add_client_error("synthesize_speech", service_error_code="ThrottlingException")

    with pytest.raises(NarrationError) as raised:
        narrator.speak(text)

    assert raised.value.retryable is True


# ------------------------------------------------------------------ the voice table


def test_every_voice_and_language_is_one_botocore_knows():
    model = polly_client().meta.service_model.operation_model("SynthesizeSpeech").input_shape.members
    voice_ids, language_codes = set(model["VoiceId"].enum), set(model["LanguageCode"].enum)

    assert set(POLLY_NEURAL_VOICES) <= voice_ids
    assert {code for codes in POLLY_NEURAL_VOICES.values() for code in codes} <= language_codes
    for code, voice in POLLY_DEFAULT_VOICES.items():
        assert code in POLLY_NEURAL_VOICES[voice], f"{voice} does not speak {code}"


def test_the_voices_the_issue_names_are_there():
    named = "Joanna Matthew Ruth Stephen Amy Brian Lucia Sergio Lea Remi Vicki Daniel Bianca Adriano Camila Thiago"
    named += " Kazuha Takumi Kajal Laura Hala"

    assert set(named.split()) <= set(POLLY_NEURAL_VOICES)
    assert "Zeina" not in POLLY_NEURAL_VOICES, "Zeina (arb) is a standard voice"


# ------------------------------------------------------------------ choosing a provider


def test_narrator_for_polly_uses_the_client_factory(client, stub):
    stub.add_response("synthesize_speech", audio(tone()), request("<speak><prosody rate='100%'>One.</prosody></speak>"))

    narrator = narrator_for(" Polly ", polly_client_factory=lambda: client)
    narrator.speak("One.")

    assert isinstance(narrator, PollyNarrator)
    assert narrator.name == "polly"


def test_an_unknown_provider_names_the_choices():
    with pytest.raises(ValueError, match=r"'festival'.*espeak, polly"):
        narrator_for("festival", polly_client_factory=polly_client)


# ------------------------------------------------------------------ Speech


def test_speech_measures_and_joins_pcm():
    a, b = Speech(tone(0.5), RATE), Speech(tone(0.25, 880), RATE)

    joined = concatenate([a, b])

    assert joined.samples == a.samples + b.samples
    assert joined.duration_seconds == pytest.approx(0.75)
    assert joined.sample_count == 12000
    assert a.peak == 8000


def test_silence_pads_speech():
    speech = Speech(tone(0.5), RATE)

    padded = speech.padded(before=0.25, after=1)

    assert padded.duration_seconds == pytest.approx(1.75)
    assert padded.samples == bytes(8000) + speech.samples + bytes(32000)
    assert Speech.silence(2, 8000) == Speech(bytes(32000), 8000)
    assert Speech.silence(2, 8000).peak == 0


def test_speech_at_different_rates_does_not_join():
    with pytest.raises(ValueError, match="different sample rates"):
        concatenate([Speech(tone(), 16000), Speech(tone(sample_rate=8000), 8000)])
    with pytest.raises(ValueError, match="no speech"):
        concatenate([])


def test_speech_is_whole_16_bit_samples():
    with pytest.raises(ValueError, match="even number of bytes"):
        Speech(b"\x00\x01\x02", RATE)
    with pytest.raises(ValueError, match="sample rate"):
        Speech(b"", 0)
    with pytest.raises(ValueError, match="zero seconds or more"):
        Speech.silence(-1, RATE)
