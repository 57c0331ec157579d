"""The progress throttle (issue 15): a run writes progress at most once per interval (the claim's
write counts as the first), completion is always written, and a cancel stops the run at the first
write after it."""

from __future__ import annotations

import pytest

from taskapi.models.domain import TaskStatus, TaskType
from taskapi.services.lifecycle import cancel_tasks
from taskapi.services.processing import Outcome
from taskapi.settings import Settings
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    FaultyEngine,
    RepositoryProxy,
    completions,
    create,
    deliver,
    principal,
    registry_with,
)

INTERVAL = 5.0


class Ticker:
    """Monotonic seconds a test moves by hand (the processor's `ticker`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ProgressWrites(RepositoryProxy):
    """Records each progress write: (ticker time, percent, accepted)."""

    def __init__(self, inner, ticker: Ticker) -> None:
        super().__init__(inner)
        self.ticker = ticker
        self.writes: list[tuple[float, float, bool]] = []

    def record_progress(self, account_id, task_id, **kwargs):
        accepted = self.inner.record_progress(account_id, task_id, **kwargs)
        self.writes.append((self.ticker(), kwargs["progress"], accepted))
        return accepted


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


def throttled(fakes, clock, ticker, engine, repository=None):
    return fakes.processor(
        repository=repository or fakes.repo,
        engine_for=registry_with(engine).get,
        clock=clock,
        progress_interval_seconds=INTERVAL,
        ticker=ticker,
    )


def test_the_interval_is_a_setting_of_five_seconds_by_default(monkeypatch):
    assert Settings().progress_interval_seconds == 5
    monkeypatch.setenv("TASKAPI_PROGRESS_INTERVAL_SECONDS", "2.5")
    assert Settings().progress_interval_seconds == 2.5


@pytest.mark.parametrize("seconds_per_report", [0.0, 1.5, 2.0, 4.0, 6.0])
def test_a_run_writes_progress_at_most_once_per_interval_and_always_its_completion(
    fakes, clock, ticker, seconds_per_report
):
    engine = FaultyEngine(TaskType.VIDEO)
    engine.on_progress = lambda _: setattr(ticker, "now", ticker.now + seconds_per_report)
    repository = ProgressWrites(fakes.repo, ticker)
    processor = throttled(fakes, clock, ticker, engine, repository)
    create(
        fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1", request_data={"story_prompt": "A b c.", "segments": 5})
    )
    claimed_at = ticker.now

    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    # Report n comes n * seconds_per_report after the claim; it is written when INTERVAL has passed
    # since the last write (the claim's, at first).
    expected, last = [], claimed_at
    for n in range(1, len(engine.reported) + 1):
        at = claimed_at + n * seconds_per_report
        if at - last >= INTERVAL:
            expected.append(at)
            last = at
    assert [at for at, _, _ in repository.writes] == expected
    assert len(engine.reported) >= 5
    if seconds_per_report == 0:
        assert repository.writes == []  # a quick run writes its claim and its completion only
    if seconds_per_report >= INTERVAL:
        assert len(repository.writes) == len(engine.reported)  # a slow run still shows every report
    percents = [percent for _, percent, _ in repository.writes]
    assert percents == sorted(percents)
    task = fakes.repo.get(ACCOUNT, "v1")
    assert (task.status, task.progress, completions(task)) == (TaskStatus.COMPLETED, 100.0, 1)


def test_a_cancel_stops_the_run_at_its_next_write_not_at_the_next_report(fakes, clock, ticker):
    engine = FaultyEngine(TaskType.VIDEO)
    repository = ProgressWrites(fakes.repo, ticker)
    processor = throttled(fakes, clock, ticker, engine, repository)
    create(
        fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1", request_data={"story_prompt": "A b c.", "segments": 5})
    )
    cancelled_at: list[int] = []

    def one_second_per_report_and_a_cancel_at_the_second(_: float) -> None:
        ticker.now += 1.0
        if len(engine.reported) == 1:
            cancel_tasks(fakes.repo, principal(), ["v1"], "not needed")
            cancelled_at.append(len(engine.reported))

    engine.on_progress = one_second_per_report_and_a_cancel_at_the_second

    assert deliver(fakes, processor) == [Outcome.STOPPED]

    # Reports 2, 3 and 4 came within the interval and were not written; the fifth, 5 s after the
    # claim, was the run's first write: refused, it stopped the engine there.
    assert cancelled_at == [1]
    assert len(engine.reported) == 5
    assert [accepted for _, _, accepted in repository.writes] == [False]
    task = fakes.repo.get(ACCOUNT, "v1")
    assert task.status is TaskStatus.CANCELLED
    assert completions(task) == 0
    assert fakes.results.objects == {}


def test_a_cancel_during_a_quick_run_is_seen_by_the_completion_which_leaves_no_result(fakes, clock, ticker):
    engine = FaultyEngine(TaskType.QUIZ)
    processor = throttled(fakes, clock, ticker, engine)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    def cancel_once(_: float) -> None:
        engine.on_progress = None
        cancel_tasks(fakes.repo, principal(), ["q1"], "not needed")

    engine.on_progress = cancel_once

    assert deliver(fakes, processor) == [Outcome.STOPPED]
    task = fakes.repo.get(ACCOUNT, "q1")
    assert (task.status, completions(task), task.result_key) == (TaskStatus.CANCELLED, 0, None)
    assert fakes.results.objects == {}
