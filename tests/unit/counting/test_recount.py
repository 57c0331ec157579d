"""The reconciler's recount of the counters, over the in-memory fakes: a few quiescent counters per
run, recounted by query, repaired when they drifted unless the consumer changed them meanwhile,
drift reported (ReconcileReport, the CounterDrift metric, a log line)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from taskapi.counting.memory import InMemoryCounterStore
from taskapi.models.domain import Priority, TaskStatus, isoformat
from taskapi.services import reconcile as reconcile_module
from taskapi.services.reconcile import reconcile
from taskapi.store.base import TaskFilters
from taskapi.store.memory import InMemoryTaskRepository
from tests.fakes import Clock, Fakes
from tests.unit.counting.test_reads import stored_task

ACCOUNT = "acct_a"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fakes() -> Fakes:
    fakes = Fakes(counters=InMemoryCounterStore())
    # Finished and QUEUED tasks only, so the reconciler's other work leaves them alone.
    final = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]
    fakes.repo.insert_new([stored_task(n, status=final[n % 3]) for n in range(30)])
    fakes.repo.insert_new([stored_task(n, status=TaskStatus.QUEUED) for n in range(30, 36)])
    return fakes


@pytest.fixture
def metrics(monkeypatch) -> list[tuple[str, float]]:
    emitted: list[tuple[str, float]] = []
    monkeypatch.setattr(
        reconcile_module.metrics, "add_metric", lambda name, unit, value, **_: emitted.append((name, value))
    )
    return emitted


def true_counts(repo: InMemoryTaskRepository, key: str) -> dict[str, int]:
    """The counter as the stream would have left it (zeros left out)."""
    derived = InMemoryCounterStore(tasks=repo.all_tasks).get([key])[key]
    return dict(derived)


def run(fakes: Fakes, clock: Clock, **options: Any):
    processor = fakes.processor(clock=clock)
    return reconcile(processor, pending_after_seconds=120, limit=100, clock=clock, counters=fakes.counters, **options)


def test_a_quiescent_counter_that_drifted_is_repaired_and_the_drift_reported(fakes, clock, metrics, caplog):
    counters = fakes.counters
    assert isinstance(counters, InMemoryCounterStore)
    quiet = isoformat(clock() - timedelta(minutes=5))
    account = true_counts(fakes.repo, "A#acct_a")
    counters.put("A#acct_a", {**account, "QUEUED": account["QUEUED"] + 3, "HELD": 0}, rev=8, changed_at=quiet)
    counters.put("G#acct_a#g1", true_counts(fakes.repo, "G#acct_a#g1"), rev=2, changed_at=quiet)
    busy = isoformat(clock() - timedelta(seconds=30))
    counters.put("S#acct_a#s1", {"FAILED": 99}, rev=5, changed_at=busy)

    report = run(fakes, clock)

    assert (report.counters_checked, report.counters_repaired, report.counters_changed_meanwhile) == (2, 1, 0)
    held = fakes.repo.count(ACCOUNT, TaskFilters(statuses=(TaskStatus.QUEUED,), queueable=True))
    assert report.counter_drift == 3 + held
    repaired = counters.item("A#acct_a")
    assert repaired is not None
    assert {name: amount for name, amount in repaired.items() if amount} == account
    assert repaired.rev == 9
    assert counters.item("S#acct_a#s1").of("FAILED") == 99  # changed 30 s ago: the stream may still be behind
    assert ("CounterDrift", 3 + held) in metrics
    assert report.as_dict()["counter_drift"] == 3 + held
    assert "counter drift repaired" in caplog.text


def test_every_account_count_is_recounted(fakes, clock, metrics):
    counters = fakes.counters
    assert isinstance(counters, InMemoryCounterStore)
    counters.put("A#acct_a", {}, rev=1, changed_at="2020-01-01T00:00:00.000000Z")

    run(fakes, clock)

    repaired = counters.item("A#acct_a")
    assert repaired is not None
    queued = {p: fakes.repo.count(ACCOUNT, TaskFilters(statuses=(TaskStatus.QUEUED,), priority=p)) for p in Priority}
    assert {p: repaired.of(f"QUEUED#{p.value}") for p in Priority} == queued
    assert repaired.of("QUEUED") == sum(queued.values()) == 6
    assert repaired.of("COMPLETED") + repaired.of("FAILED") + repaired.of("CANCELLED") == 30
    assert repaired.of("HELD") == fakes.repo.count(ACCOUNT, TaskFilters(statuses=(TaskStatus.QUEUED,), queueable=True))


class ConsumerMeanwhile(InMemoryTaskRepository):
    """The stream consumer updates the counter while the recount queries the tasks."""

    def __init__(self, counters: InMemoryCounterStore, key: str) -> None:
        super().__init__()
        self.counters, self.key = counters, key

    def count(self, account_id: str, filters: TaskFilters, *, at_most: int | None = None) -> int:
        current = self.counters.item(self.key)
        if current is not None:
            self.counters.put(self.key, {**current, "QUEUED": current.of("QUEUED") + 1}, rev=current.rev + 1)
        return super().count(account_id, filters, at_most=at_most)


def test_a_counter_the_consumer_changed_meanwhile_is_left_for_a_later_run(clock, metrics):
    counters = InMemoryCounterStore()
    repo = ConsumerMeanwhile(counters, "G#acct_a#g1")
    repo.insert_new([stored_task(n, status=TaskStatus.COMPLETED) for n in range(12)])
    counters.put("G#acct_a#g1", {"COMPLETED": 1}, rev=4, changed_at="2020-01-01T00:00:00.000000Z")
    fakes = Fakes(repo=repo, counters=counters)

    report = run(fakes, clock)

    assert (report.counters_checked, report.counters_repaired, report.counters_changed_meanwhile) == (1, 0, 1)
    assert report.counter_drift == 0
    left = counters.item("G#acct_a#g1")
    assert left is not None
    assert left.of("COMPLETED") == 1  # not overwritten: the consumer's increments stand
    assert ("CounterDrift", 0) in metrics


def test_each_run_recounts_a_few_counters_and_goes_around(fakes, clock, metrics):
    counters = fakes.counters
    assert isinstance(counters, InMemoryCounterStore)
    keys = [f"S#acct_a#x{n:02d}" for n in range(12)]
    for key in keys:
        counters.put(key, {"QUEUED": 1}, changed_at="2020-01-01T00:00:00.000000Z")

    checked = [run(fakes, clock, recount_per_run=5).counters_checked for _ in range(4)]

    assert checked == [5, 5, 2, 5]
    assert all(counters.item(key).of("QUEUED") == 0 for key in keys)  # no task has these sources


def test_without_counters_the_reconciler_recounts_nothing(fakes, clock, metrics):
    report = reconcile(fakes.processor(clock=clock), pending_after_seconds=120, limit=100, clock=clock)

    assert report.counters_checked == 0
    assert not [name for name, _ in metrics if name == "CounterDrift"]
