"""Fixtures of the observability tests: the EMF lines Powertools prints, read back from stdout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from taskapi.observability import logger, metrics
from tests.fakes import Clock, Fakes


@dataclass(frozen=True)
class Emitted:
    """One metric of an EMF line: its name, unit, value and the dimensions it is filed under."""

    namespace: str
    name: str
    unit: str
    value: Any
    dimensions: dict[str, str]


def parse_emf(stdout: str) -> list[Emitted]:
    emitted: list[Emitted] = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" not in document:
            continue  # a log line
        for directive in document["_aws"]["CloudWatchMetrics"]:
            (dimension_names,) = directive["Dimensions"]
            dimensions = {name: document[name] for name in dimension_names}
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                if isinstance(value, list) and len(value) == 1:
                    value = value[0]  # Powertools writes a value added once as a list of one
                emitted.append(Emitted(directive["Namespace"], metric["Name"], metric["Unit"], value, dimensions))
    return emitted


@pytest.fixture
def emf(monkeypatch, capsys) -> Iterator[Callable[[], list[Emitted]]]:
    """Metrics switched on (tests/conftest.py switches them off); answers a function that flushes
    the shared `metrics` (as @metrics.log_metrics does at the end of an invocation) and returns
    every metric printed since the test began."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    metrics.clear_metrics()
    capsys.readouterr()
    seen: list[Emitted] = []

    def flushed() -> list[Emitted]:
        if metrics.provider.metric_set:
            metrics.flush_metrics()
        seen.extend(parse_emf(capsys.readouterr().out))
        return list(seen)

    yield flushed
    metrics.clear_metrics()


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _fresh_log_keys() -> Iterator[None]:
    """Keys a handler appended to the shared logger do not follow a test out."""
    yield
    logger.clear_state()
