"""Doubles for the video engine's providers: a narrator whose speech is a tone burst per word (the
same bytes every run, unlike eSpeak's), and a fetcher that serves files the test made."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from taskapi.media.fetch import Fetched
from taskapi.media.speech import Speech

TONE_RATE = 16_000
TONE_HZ = 400
_PERIOD = struct.pack(
    f"<{TONE_RATE // TONE_HZ}h",
    # A triangle wave of amplitude 8000: loud enough to hear, exact in integers.
    *(8_000 - abs(16_000 - 32_000 * i // (TONE_RATE // TONE_HZ)) for i in range(TONE_RATE // TONE_HZ)),
)


@dataclass
class ToneNarrator:
    """Speaks `seconds_per_word / rate` per word: three quarters a 400 Hz tone, a quarter silence.
    Records every call as (text, language, voice_name, rate)."""

    seconds_per_word: float = 0.1
    name: str = "tone"
    calls: list[tuple[str, str | None, str | None, float | None]] = field(default_factory=list)

    def speak(
        self, text: str, *, language: str | None = None, voice_name: str | None = None, rate: float | None = None
    ) -> Speech:
        self.calls.append((text, language, voice_name, rate))
        return Speech(self.word(rate) * len(text.split()), TONE_RATE)

    def word(self, rate: float | None = None) -> bytes:
        """One word's samples at `rate`."""
        samples = round(self.seconds_per_word * TONE_RATE / (rate or 1.0))
        sounding = samples * 3 // 4
        burst = (_PERIOD * (sounding // len(_PERIOD) * 2 + 2))[: sounding * 2]
        return burst + bytes(2 * (samples - sounding))

    def seconds(self, words: int, rate: float | None = None) -> float:
        """How long `words` words last at `rate`."""
        return words * len(self.word(rate)) / 2 / TONE_RATE


@dataclass
class ServedFiles:
    """A fetcher serving local files by URL (copied into the engine's directory, as a download
    would be); an unknown URL, or an `errors` entry, raises. Records (url, kind) of every call."""

    files: Mapping[str, tuple[Path, str]] = field(default_factory=dict)
    """url → (file, content type)."""
    errors: Mapping[str, Exception] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, url: str, kind: str, directory: Path) -> Fetched:
        self.calls.append((url, kind))
        if url in self.errors:
            raise self.errors[url]
        source, content_type = self.files[url]
        target = directory / f"fetched-{kind}{source.suffix}"
        shutil.copyfile(source, target)
        return Fetched(url=url, content_type=content_type, path=target, size=target.stat().st_size)
