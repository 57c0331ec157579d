"""Offline narration through eSpeak NG's C library (the espeakng-loader wheel, x86_64 only), by
ctypes: for the local stack and the tests."""

from __future__ import annotations

import array
import ctypes
import platform
import sys
import threading
from pathlib import Path
from typing import Any

from taskapi.media.narration import NarrationError, heard, language_tag, narratable, voice_speed
from taskapi.media.speech import BYTES_PER_SAMPLE, Speech

ESPEAK_NORMAL_WPM = 175
ESPEAK_MIN_WPM = 80
ESPEAK_MAX_WPM = 450
"""speak_lib.h: espeakRATE_NORMAL, espeakRATE_MINIMUM, espeakRATE_MAXIMUM (words per minute)."""

_ESPEAK_ALIASES = {"zh": "cmn", "no": "nb", "arb": "ar"}
"""Tags whose eSpeak NG voice has another name."""

# speak_lib.h (API revision 12) constants this module uses
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: the callback gets the samples; Synth returns when done
_BUFFER_MS = 0  # length of each buffer passed to the callback; 0 = eSpeak's default (60 ms)
_INITIALIZE_DONT_EXIT = 0x8000  # without it, missing voice data calls exit(1) inside the library
_POS_CHARACTER = 1  # espeak_POSITION_TYPE
_CHARS_UTF8 = 1  # espeak_Synth flags: the text is UTF-8 (no espeakSSML: "<" is text, not markup)
_ESPEAK_RATE = 1  # espeak_PARAMETER espeakRATE
_EE_OK = 0  # espeak_ERROR (EE_INTERNAL_ERROR -1, EE_BUFFER_FULL 1, EE_NOT_FOUND 2)


class _EspeakEventId(ctypes.Union):
    # union { int number; const char *name; char string[8]; } id;  (8 bytes on LP64)
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))


class _EspeakEvent(ctypes.Structure):
    # espeak_EVENT: espeak_EVENT_TYPE type (an enum, int); unsigned int unique_identifier;
    # int text_position, length, audio_position, sample; void *user_data; the id union.
    # Only its address is used (the callback ignores events), but the layout is declared in full.
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EspeakEventId),
    )


# typedef int (t_espeak_callback)(short *wav, int numsamples, espeak_EVENT *events);
# wav is NULL when synthesis is complete; numsamples may be 0; return 0 to continue, 1 to abort.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)

ESPEAK_UNAVAILABLE = "eSpeak NG is available only on x86_64 here; use NarrationProvider=polly"


def espeak_words_per_minute(rate: float | None) -> int:
    """eSpeak's speed for a voice rate: 175 wpm × rate, within eSpeak's 80–450 wpm (so rates below
    about 0.46 are as slow as eSpeak goes, and above about 2.57 as fast)."""
    return max(ESPEAK_MIN_WPM, min(ESPEAK_MAX_WPM, round(ESPEAK_NORMAL_WPM * voice_speed(rate))))


def espeak_files() -> tuple[str, str]:
    """(library, voice data directory) from the espeakng-loader wheel, or a NarrationError that says
    what to do instead."""
    try:
        import espeakng_loader  # optional: the media extra installs it on x86_64 only
    except ImportError:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            raise NarrationError(ESPEAK_UNAVAILABLE, retryable=False) from None
        raise NarrationError(
            "eSpeak NG is not installed (the espeakng-loader wheel of taskapi[media]); install it or use "
            "NarrationProvider=polly",
            retryable=False,
        ) from None
    try:
        return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())
    except RuntimeError as exc:  # the wheel raises RuntimeError when its voice data is missing
        raise NarrationError(f"eSpeak NG's voice data is missing: {exc}", retryable=False) from exc


class _Espeak:
    """eSpeak NG's library, loaded and initialised once per process. The library keeps one voice,
    one set of parameters and one callback for the whole process, so every use holds `lock`."""

    def __init__(self, library_path: str, data_path: str) -> None:
        self.lock = threading.Lock()
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise NarrationError(f"eSpeak NG's library did not load: {exc}", retryable=False) from exc
        # int espeak_Initialize(espeak_AUDIO_OUTPUT output, int buflength, const char *path, int options)
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_Initialize.restype = ctypes.c_int
        # void espeak_SetSynthCallback(t_espeak_callback *SynthCallback)
        lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        lib.espeak_SetSynthCallback.restype = None
        # espeak_ERROR espeak_SetVoiceByName(const char *name)
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        # espeak_ERROR espeak_SetParameter(espeak_PARAMETER parameter, int value, int relative)
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_SetParameter.restype = ctypes.c_int
        # espeak_ERROR espeak_Synth(const void *text, size_t size, unsigned int position,
        #     espeak_POSITION_TYPE position_type, unsigned int end_position, unsigned int flags,
        #     unsigned int *unique_identifier, void *user_data)
        lib.espeak_Synth.argtypes = (
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        lib.espeak_Synth.restype = ctypes.c_int
        self._lib = lib
        self._chunks: list[bytes] = []
        # Kept on self for the life of the process: eSpeak holds the pointer, ctypes frees the thunk
        # when the Python object goes.
        self._callback = _SynthCallback(self._collect)

        # `path` may name the espeak-ng-data directory itself. With DONT_EXIT a failed start returns
        # (a sample rate all the same) instead of ending the process; selecting a voice finds out.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(), _INITIALIZE_DONT_EXIT)
        if rate <= 0 or lib.espeak_SetVoiceByName(b"en") != _EE_OK:
            raise NarrationError(f"eSpeak NG did not start with the voice data in {data_path}", retryable=False)
        lib.espeak_SetSynthCallback(self._callback)
        self.sample_rate: int = rate
        variants = Path(data_path, "voices", "!v")
        self._variants = {p.name.lower(): p.name for p in variants.iterdir()} if variants.is_dir() else {}

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * BYTES_PER_SAMPLE))
        return 0

    def candidates(self, language: str | None, voice_name: str | None) -> list[str]:
        """eSpeak voice names to try in order: the voice asked for, then the language's, then English."""
        tag = language_tag(language) or "en"
        base = tag.partition("-")[0]
        languages = list(dict.fromkeys([tag, _ESPEAK_ALIASES.get(base, base), "en"]))
        name = (voice_name or "").strip()
        if not name:
            return languages
        variant = self._variants.get(name.lower())
        if variant:  # a variant ("f3", "klatt") changes how a language's voice sounds, never the language
            return [f"{lang}+{variant}" for lang in languages]
        return list(dict.fromkeys([name, *languages]))

    def select(self, candidates: list[str]) -> str:
        """Make the first voice eSpeak knows current (holding `lock`); answers its name."""
        for candidate in candidates:
            if self._lib.espeak_SetVoiceByName(candidate.encode()) == _EE_OK:
                return candidate
        raise NarrationError(f"eSpeak NG has none of the voices {candidates}", retryable=False)

    def synthesize(self, text: str, words_per_minute: int) -> bytes:
        """Samples of `text` in the current voice (holding `lock`)."""
        if self._lib.espeak_SetParameter(_ESPEAK_RATE, words_per_minute, 0) != _EE_OK:
            raise NarrationError(f"eSpeak NG refused the speaking rate {words_per_minute} wpm", retryable=False)
        data = text.encode("utf-8")
        self._chunks = []
        try:
            status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            samples = b"".join(self._chunks)
        finally:
            self._chunks = []
        if status != _EE_OK:
            raise NarrationError(f"eSpeak NG failed to synthesize (error {status})", retryable=False)
        if sys.byteorder == "big":  # eSpeak hands over native shorts; Speech is little-endian
            values = array.array("h", samples)
            values.byteswap()
            samples = values.tobytes()
        return samples


_espeak: _Espeak | None = None
_espeak_lock = threading.Lock()


def _shared_espeak() -> _Espeak:
    global _espeak  # eSpeak NG is one per process: initialised once, on first use
    with _espeak_lock:
        if _espeak is None:
            _espeak = _Espeak(*espeak_files())
        return _espeak


class EspeakNarrator:
    """Offline narration through eSpeak NG. Constructing it loads and starts the library (once per
    process), so a machine without it fails here, with a NarrationError saying what to use instead.

    `voice_name` may name an eSpeak voice ("en-us", "fr-be", "pt-br") or a variant of the language's
    voice ("f3", "m2", "klatt"; or both: "en-us+f3"); other names are ignored."""

    name = "espeak"

    def __init__(self) -> None:
        self._engine = _shared_espeak()

    @property
    def sample_rate(self) -> int:
        return self._engine.sample_rate

    def voice_for(self, language: str | None = None, voice_name: str | None = None) -> str:
        """The eSpeak voice `speak` uses for this language and voice name ("fr", "en+f3")."""
        engine = self._engine
        with engine.lock:
            return engine.select(engine.candidates(language, voice_name))

    def speak(
        self, text: str, *, language: str | None = None, voice_name: str | None = None, rate: float | None = None
    ) -> Speech:
        words = narratable(text)
        words_per_minute = espeak_words_per_minute(rate)
        engine = self._engine
        with engine.lock:
            engine.select(engine.candidates(language, voice_name))
            samples = engine.synthesize(words, words_per_minute)
        return heard(Speech(samples, engine.sample_rate), "eSpeak NG")
