"""Speech: signed 16-bit little-endian mono PCM, as the narration providers return it, and what
joins, pads and reads it."""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable
from dataclasses import dataclass

BYTES_PER_SAMPLE = 2


@dataclass(frozen=True)
class Speech:
    """Signed 16-bit little-endian mono PCM at `sample_rate` Hz."""

    samples: bytes
    sample_rate: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"a sample rate is a positive number of Hz, not {self.sample_rate}")
        if len(self.samples) % BYTES_PER_SAMPLE:
            raise ValueError("16-bit PCM has an even number of bytes")

    @property
    def sample_count(self) -> int:
        return len(self.samples) // BYTES_PER_SAMPLE

    @property
    def duration_seconds(self) -> float:
        return self.sample_count / self.sample_rate

    @property
    def peak(self) -> int:
        """The loudest sample's magnitude (0 for silence or no samples)."""
        values = pcm_values(self.samples)
        return max(max(values), -min(values)) if values else 0

    @classmethod
    def silence(cls, seconds: float, sample_rate: int) -> Speech:
        if not seconds >= 0:
            raise ValueError(f"a silence lasts zero seconds or more, not {seconds}")
        return cls(bytes(round(seconds * sample_rate) * BYTES_PER_SAMPLE), sample_rate)

    def padded(self, *, before: float = 0.0, after: float = 0.0) -> Speech:
        """This speech with `before` and `after` seconds of silence around it."""
        rate = self.sample_rate
        return concatenate([Speech.silence(before, rate), self, Speech.silence(after, rate)])


def concatenate(pieces: Iterable[Speech]) -> Speech:
    """One Speech of `pieces` in order; they must share a sample rate (there is no resampling here)."""
    items = list(pieces)
    if not items:
        raise ValueError("there is no speech to concatenate")
    rates = sorted({piece.sample_rate for piece in items})
    if len(rates) > 1:
        raise ValueError(f"speech at different sample rates cannot be concatenated: {rates} Hz")
    return Speech(b"".join(piece.samples for piece in items), rates[0])


def pcm_values(samples: bytes) -> array.array[int]:
    """The sample values of 16-bit little-endian PCM."""
    values = array.array("h", samples)
    if sys.byteorder == "big":
        values.byteswap()
    return values
