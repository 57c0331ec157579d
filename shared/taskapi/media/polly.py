"""Narration through Amazon Polly's neural voices (in AWS, and on arm64, where there is no eSpeak
wheel): the voice tables, SSML, and text split to fit one request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from taskapi.aws_errors import AWS_ERRORS, AwsError, error_code, translate
from taskapi.errors import Retryable
from taskapi.media.narration import NarrationError, heard, language_tag, narratable, voice_speed
from taskapi.media.speech import BYTES_PER_SAMPLE, Speech, concatenate

POLLY_MAX_BILLED_CHARACTERS = 3000
POLLY_MAX_TOTAL_CHARACTERS = 6000
"""SynthesizeSpeech's limits on one request's text: billed characters (the text, not its SSML tags)
and total characters (with the tags)."""

POLLY_MIN_RATE_PERCENT = 20
POLLY_MAX_RATE_PERCENT = 200
"""Polly's <prosody rate="n%"> range (100% = the voice's normal speed)."""

POLLY_PCM_SAMPLE_RATES = (8000, 16000)
"""The sample rates Polly offers for PCM output."""

POLLY_NEURAL_VOICES: dict[str, tuple[str, ...]] = {
    # voice id → the language codes it speaks, its own first (Kajal is bilingual)
    "Danielle": ("en-US",), "Gregory": ("en-US",), "Ivy": ("en-US",), "Joanna": ("en-US",),
    "Joey": ("en-US",), "Justin": ("en-US",), "Kendra": ("en-US",), "Kevin": ("en-US",),
    "Kimberly": ("en-US",), "Matthew": ("en-US",), "Ruth": ("en-US",), "Salli": ("en-US",),
    "Stephen": ("en-US",),
    "Amy": ("en-GB",), "Arthur": ("en-GB",), "Brian": ("en-GB",), "Emma": ("en-GB",),
    "Olivia": ("en-AU",), "Kajal": ("en-IN", "hi-IN"), "Niamh": ("en-IE",), "Aria": ("en-NZ",),
    "Ayanda": ("en-ZA",), "Jasmine": ("en-SG",),
    "Lucia": ("es-ES",), "Sergio": ("es-ES",), "Mia": ("es-MX",), "Andres": ("es-MX",),
    "Lupe": ("es-US",), "Pedro": ("es-US",),
    "Lea": ("fr-FR",), "Remi": ("fr-FR",), "Gabrielle": ("fr-CA",), "Liam": ("fr-CA",),
    "Isabelle": ("fr-BE",),
    "Vicki": ("de-DE",), "Daniel": ("de-DE",), "Hannah": ("de-AT",), "Sabrina": ("de-CH",),
    "Bianca": ("it-IT",), "Adriano": ("it-IT",),
    "Camila": ("pt-BR",), "Vitoria": ("pt-BR",), "Thiago": ("pt-BR",), "Ines": ("pt-PT",),
    "Kazuha": ("ja-JP",), "Tomoko": ("ja-JP",), "Takumi": ("ja-JP",),
    "Laura": ("nl-NL",), "Lisa": ("nl-BE",),
    "Hala": ("ar-AE",), "Zayd": ("ar-AE",),
    "Zhiyu": ("cmn-CN",), "Hiujin": ("yue-CN",), "Seoyeon": ("ko-KR",),
    "Ola": ("pl-PL",), "Elin": ("sv-SE",), "Ida": ("nb-NO",), "Sofie": ("da-DK",), "Suvi": ("fi-FI",),
    "Arlet": ("ca-ES",), "Jitka": ("cs-CZ",),
}  # fmt: skip
"""Polly's neural voices (Polly's "Available voices" table; Arabic has none in "arb", whose only
voice, Zeina, is standard: Arabic is Gulf Arabic, ar-AE)."""

POLLY_DEFAULT_VOICES: dict[str, str] = {
    "en-US": "Joanna", "en-GB": "Amy", "en-AU": "Olivia", "en-IN": "Kajal", "en-IE": "Niamh",
    "en-NZ": "Aria", "en-ZA": "Ayanda", "en-SG": "Jasmine",
    "es-ES": "Lucia", "es-MX": "Mia", "es-US": "Lupe",
    "fr-FR": "Lea", "fr-CA": "Gabrielle", "fr-BE": "Isabelle",
    "de-DE": "Vicki", "de-AT": "Hannah", "de-CH": "Sabrina",
    "it-IT": "Bianca", "pt-BR": "Camila", "pt-PT": "Ines", "ja-JP": "Kazuha", "hi-IN": "Kajal",
    "nl-NL": "Laura", "nl-BE": "Lisa", "ar-AE": "Hala", "cmn-CN": "Zhiyu", "yue-CN": "Hiujin",
    "ko-KR": "Seoyeon", "pl-PL": "Ola", "sv-SE": "Elin", "nb-NO": "Ida", "da-DK": "Sofie",
    "fi-FI": "Suvi", "ca-ES": "Arlet", "cs-CZ": "Jitka",
}  # fmt: skip
"""Each language code's voice when the task names none."""

_POLLY_LANGUAGE_OF_BASE = {
    "en": "en-US", "es": "es-ES", "fr": "fr-FR", "de": "de-DE", "it": "it-IT", "pt": "pt-BR",
    "ja": "ja-JP", "hi": "hi-IN", "nl": "nl-NL", "ar": "ar-AE", "arb": "ar-AE", "zh": "cmn-CN",
    "cmn": "cmn-CN", "yue": "yue-CN", "ko": "ko-KR", "pl": "pl-PL", "sv": "sv-SE", "nb": "nb-NO",
    "no": "nb-NO", "da": "da-DK", "fi": "fi-FI", "ca": "ca-ES", "cs": "cs-CZ",
}  # fmt: skip
"""A language without a region → the language code whose voices speak it."""

_POLLY_CODES = {code.lower(): code for code in POLLY_DEFAULT_VOICES}
_POLLY_VOICE_IDS = {voice.lower(): voice for voice in POLLY_NEURAL_VOICES}
DEFAULT_POLLY_LANGUAGE = "en-US"


def polly_language(language: str | None) -> str:
    """Polly's language code for a language name or tag ("French", "fr", "fr-CA"); en-US otherwise."""
    tag = language_tag(language)
    if tag is None:
        return DEFAULT_POLLY_LANGUAGE
    return _POLLY_CODES.get(tag) or _POLLY_LANGUAGE_OF_BASE.get(tag.partition("-")[0], DEFAULT_POLLY_LANGUAGE)


def polly_voice(language: str | None, voice_name: str | None) -> tuple[str, str]:
    """(VoiceId, LanguageCode): the named neural voice (any case) if Polly has one by that name, else
    the language's default voice. A named voice speaks the task's language if it can (Kajal: Hindi or
    Indian English), else its own."""
    code = polly_language(language)
    voice = _POLLY_VOICE_IDS.get((voice_name or "").strip().lower())
    if voice is None:
        return POLLY_DEFAULT_VOICES[code], code
    languages = POLLY_NEURAL_VOICES[voice]
    return voice, code if code in languages else languages[0]


def polly_rate_percent(rate: float | None) -> int:
    """<prosody rate> for a voice rate: rate × 100%, within Polly's 20–200% (a task's 0.25 is 25%;
    anything above 2 is 200%)."""
    return max(POLLY_MIN_RATE_PERCENT, min(POLLY_MAX_RATE_PERCENT, round(100 * voice_speed(rate))))


def _ssml_escape(text: str) -> str:
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def polly_ssml(text: str, rate_percent: int) -> str:
    return f"<speak><prosody rate='{rate_percent}%'>{_ssml_escape(text)}</prosody></speak>"


def _polly_cost(text: str) -> int:
    """An upper bound on the characters Polly counts for `text` in SSML: its escaped length in UTF-16
    code units (an entity may bill as the one character it stands for, a BMP character as one)."""
    return len(_ssml_escape(text).encode("utf-16-le")) // 2


_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*|\s*\n\s*")


def _pieces(text: str, limit: int) -> Iterator[str]:
    """Sentences; a sentence over `limit` as its words; a word over `limit` in slices."""
    for sentence in _SENTENCE_BREAK.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if _polly_cost(sentence) <= limit:
            yield sentence
            continue
        for word in sentence.split():
            if _polly_cost(word) <= limit:
                yield word
                continue
            piece = ""
            for char in word:
                if piece and _polly_cost(piece + char) > limit:
                    yield piece
                    piece = ""
                piece += char
            if piece:
                yield piece


def split_for_polly(text: str, limit: int = POLLY_MAX_BILLED_CHARACTERS) -> list[str]:
    """`text` in as few requests as fit `limit`: whole sentences where they fit, else words."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _pieces(text, limit):
        cost = _polly_cost(piece)
        if current and size + 1 + cost > limit:
            chunks.append(" ".join(current))
            current, size = [], 0
        size += cost + (1 if current else 0)
        current.append(piece)
    if current:
        chunks.append(" ".join(current))
    return chunks


class PollyNarrator:
    """Narration through Amazon Polly (`client`: a boto3 "polly" client): SSML with the text escaped
    and the rate as <prosody>, PCM out. Text over one request's limits goes in several requests, split
    at sentences (else words), their audio joined in order. The voice table is of neural voices: with
    another `engine`, a voice that engine lacks is refused by Polly (a NarrationError, not retryable)."""

    name = "polly"

    def __init__(self, client: Any, *, engine: str = "neural", sample_rate: int = 16000) -> None:
        if sample_rate not in POLLY_PCM_SAMPLE_RATES:
            raise ValueError(f"Polly's PCM comes at {POLLY_PCM_SAMPLE_RATES} Hz, not {sample_rate}")
        self._client = client
        self._engine = engine
        self.sample_rate = sample_rate

    def speak(
        self, text: str, *, language: str | None = None, voice_name: str | None = None, rate: float | None = None
    ) -> Speech:
        words = narratable(text)
        voice_id, language_code = polly_voice(language, voice_name)
        percent = polly_rate_percent(rate)
        pieces = [
            Speech(self._synthesize(chunk, voice_id, language_code, percent), self.sample_rate)
            for chunk in split_for_polly(words)
        ]
        return heard(concatenate(pieces), "Polly")

    def _synthesize(self, text: str, voice_id: str, language_code: str, rate_percent: int) -> bytes:
        ssml = polly_ssml(text, rate_percent)
        assert len(ssml) <= POLLY_MAX_TOTAL_CHARACTERS  # split_for_polly keeps the text to 3,000
        try:
            response = self._client.synthesize_speech(
                Engine=self._engine,
                LanguageCode=language_code,
                OutputFormat="pcm",
                SampleRate=str(self.sample_rate),
                Text=ssml,
                TextType="ssml",
                VoiceId=voice_id,
            )
            stream = response["AudioStream"]
            try:
                pcm: bytes = stream.read()
            finally:
                stream.close()
        except AWS_ERRORS as exc:
            raise self._failure(exc, voice_id, language_code) from exc
        if len(pcm) % BYTES_PER_SAMPLE:
            raise NarrationError("Polly's audio stream ended in the middle of a sample", retryable=True)
        return pcm

    def _failure(self, exc: AwsError, voice_id: str, language_code: str) -> NarrationError:
        reason = error_code(exc) or type(exc).__name__
        domain = translate(exc, service="Polly", unavailable=f"Polly is busy ({reason}); retry the narration")
        if isinstance(domain, Retryable):
            return NarrationError(str(domain.detail), retryable=True)
        # what Polly refused (a voice, an engine, the text): the same request fails again
        return NarrationError(
            f"Polly refused to narrate with voice {voice_id} ({language_code}, {self._engine} engine): {reason}",
            retryable=False,
        )
