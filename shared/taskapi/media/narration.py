"""Narration providers: speech from text, as signed 16-bit little-endian mono PCM (`Speech`).

Two providers speak for a video task, chosen by name through `narrator_for`:
- "espeak": eSpeak NG's C library (the espeakng-loader wheel, x86_64 only): offline and fast, for
  the local stack and the tests.
- "polly": Amazon Polly's neural voices, in AWS (and on arm64, where there is no eSpeak wheel).

Both take the task's `language`, `voice_name` and `voice_rate` (0.25–4, 1 = normal). A voice name
is provider-specific: one the provider does not know is ignored and the language decides, so a task
written for one provider still narrates on the other. Neither provider passes silence off as
narration: no text, or text that yields no audible speech, is a NarrationError. A NarrationError
says whether the same call may succeed later (`retryable`): a throttled, failing or timed-out Polly
may; text or a voice Polly refuses, and every eSpeak failure, will not.

This module holds the contract (Narrator, NarrationError), what both providers share (clean text,
audible speech, voice rate, language tags) and the choice of one; the providers are
taskapi.media.espeak and taskapi.media.polly, and Speech is taskapi.media.speech's."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any, Protocol

from taskapi import aws
from taskapi.media.speech import Speech

SILENCE_PEAK = 64
"""Audio whose loudest sample is below this (about -54 dBFS) is silence, not narration."""


# ------------------------------------------------------------------ the contract


class Narrator(Protocol):
    name: str

    def speak(
        self, text: str, *, language: str | None = None, voice_name: str | None = None, rate: float | None = None
    ) -> Speech:
        """`text` spoken in `language` (a name or a tag: "English", "fr", "pt-BR"; English when
        absent or unknown) by `voice_name` (the provider's own voice names; others are ignored) at
        `rate` times the normal speed (a task's voice_rate, 0.25–4)."""
        ...


class NarrationError(Exception):
    """Narration failed; `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters neither an XML document (Polly's SSML) nor a C string (eSpeak) can carry."""


def narratable(text: str) -> str:
    """`text` stripped, with what neither SSML nor a C string can carry made spaces; none left is an error."""
    cleaned = _NOT_XML.sub(" ", text).strip()
    if not cleaned:
        raise NarrationError("There is no text to narrate", retryable=False)
    return cleaned


def heard(speech: Speech, provider: str) -> Speech:
    """`speech`, unless it is silence: a provider that produced nothing audible failed."""
    if speech.peak < SILENCE_PEAK:
        raise NarrationError(f"{provider} produced no audible speech for the text", retryable=False)
    return speech


def voice_speed(rate: float | None) -> float:
    """A voice rate as a multiple of the normal speed (1 when absent); not positive and finite is an error."""
    if rate is None:
        return 1.0
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"a voice rate is a positive multiple of the normal speed, not {rate}")
    return float(rate)


# ------------------------------------------------------------------ languages

_LANGUAGE_NAMES = {
    "english": "en", "american english": "en-us", "british english": "en-gb",
    "spanish": "es", "español": "es", "espanol": "es", "castilian": "es",
    "french": "fr", "français": "fr", "francais": "fr",
    "german": "de", "deutsch": "de",
    "italian": "it", "italiano": "it",
    "portuguese": "pt", "português": "pt", "portugues": "pt", "brazilian portuguese": "pt-br",
    "european portuguese": "pt-pt",
    "japanese": "ja", "日本語": "ja",
    "hindi": "hi", "हिन्दी": "hi",
    "dutch": "nl", "nederlands": "nl", "flemish": "nl-be",
    "arabic": "ar", "العربية": "ar",
    "chinese": "zh", "mandarin": "zh", "mandarin chinese": "zh", "中文": "zh", "cantonese": "yue",
    "korean": "ko", "한국어": "ko",
    "polish": "pl", "polski": "pl",
    "swedish": "sv", "svenska": "sv",
    "norwegian": "nb", "norsk": "nb",
    "danish": "da", "dansk": "da",
    "finnish": "fi", "suomi": "fi",
    "catalan": "ca", "català": "ca",
    "czech": "cs", "čeština": "cs",
    "russian": "ru", "русский": "ru",
    "turkish": "tr", "türkçe": "tr",
}  # fmt: skip
"""Language names (English and native) → a lower-case language tag."""

_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")


def language_tag(language: str | None) -> str | None:
    """A lower-case language tag for a language name or tag ("French", "fr-FR", "pt_BR"), or None."""
    if not language:
        return None
    lower = " ".join(language.strip().lower().replace("_", "-").split())
    tag = _LANGUAGE_NAMES.get(lower, lower)
    return tag if _TAG.fullmatch(tag) else None


# ------------------------------------------------------------------ choosing one

NARRATION_PROVIDERS = ("espeak", "polly")


def narrator_for(provider: str, *, polly_client_factory: Callable[[], Any] | None = None) -> Narrator:
    """The narrator a provider name ("espeak" or "polly", any case) stands for. `polly_client_factory`
    makes Polly's client (by default the process's cached boto3 client)."""
    # The providers are imported here, not above: each imports this module (NarrationError and the
    # helpers they share), and a process needs only the one it uses.
    choice = provider.strip().lower()
    if choice == "espeak":
        from taskapi.media.espeak import EspeakNarrator

        return EspeakNarrator()
    if choice == "polly":
        from taskapi.media.polly import PollyNarrator

        factory = polly_client_factory or functools.partial(aws.client, "polly")
        return PollyNarrator(factory())
    raise ValueError(f"Unknown narration provider {provider!r}: choose one of {', '.join(NARRATION_PROVIDERS)}")
