"""Benchmarks (make bench): counting figures, printed and merged into .bench/results.json."""

from __future__ import annotations

import pytest

from tests.perf.support import Recorder

_RECORDER = Recorder()


@pytest.fixture(scope="session")
def bench() -> Recorder:
    return _RECORDER


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RECORDER.figures:
        return
    terminalreporter.section("benchmark figures")
    for figure in _RECORDER.figures:
        terminalreporter.write_line(figure.line())
    terminalreporter.write_line(f"written to {_RECORDER.path}")
