"""Prompts and a progress recorder shared by the engine tests; every test starts from the built-in
registry (`tone_narrated_video` swaps in a video engine with a deterministic narrator)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskapi.engines import register, reset_engines
from taskapi.engines.video import VideoEngine
from tests.unit.engines.doubles import ToneNarrator

PYTHAGORAS = (
    "Pythagoras was a Greek mathematician who lived around 570 BC. "
    "He is best known for the Pythagorean theorem about right triangles. "
    "A right triangle has one angle of exactly 90 degrees. "
    "The longest side of a right triangle is called the hypotenuse, and it lies opposite the right angle. "
    "The Pythagorean theorem states that the square of the hypotenuse equals the sum of the squares of the "
    "other two sides. "
    "Builders and surveyors use the theorem to check that corners are square, e.g. when laying out the "
    "foundation of a house."
)
REFERENCE = "Create an educational video about basic mathematics concepts including addition and subtraction"
LONG = " ".join([PYTHAGORAS] * 40)[:19_000]
"""Near the 20,000-character prompt limit: more sentences than any segment count."""


class Cancelled(Exception):
    """What a processor's callback raises when the task was cancelled meanwhile."""


class ProgressLog:
    """A progress callback that records its calls and can raise on the n-th one (0-based)."""

    def __init__(self, raise_on: int | None = None) -> None:
        self.calls: list[tuple[float, str]] = []
        self.raise_on = raise_on

    def __call__(self, percent: float, message: str) -> None:
        self.calls.append((percent, message))
        if self.raise_on is not None and len(self.calls) - 1 == self.raise_on:
            raise Cancelled(f"cancelled at call {self.raise_on}")

    @property
    def percents(self) -> list[float]:
        return [percent for percent, _ in self.calls]


@pytest.fixture(autouse=True)
def _builtin_engines() -> Iterator[None]:
    reset_engines()
    yield
    reset_engines()


@pytest.fixture
def progress() -> ProgressLog:
    return ProgressLog()


@pytest.fixture
def tone_narrated_video() -> ToneNarrator:
    """The registry's video engine narrates with tones: the same bytes every run (eSpeak's samples
    vary slightly from run to run). Quick ones: a big job's cost is its sound, and most segments
    then last the 3 s minimum."""
    narrator = ToneNarrator(seconds_per_word=0.05)
    register(VideoEngine(voice=narrator))
    return narrator
