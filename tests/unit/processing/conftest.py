"""Fixtures of the processing unit tests: the in-memory fakes, a hand-moved clock and a processor
that runs the real built-in engines on them."""

from __future__ import annotations

import pytest

from taskapi.services.processing import Processor
from tests.fakes import Clock, Fakes


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def processor(fakes: Fakes, clock: Clock) -> Processor:
    return fakes.processor(clock=clock)
