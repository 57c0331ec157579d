"""Requests whose counts come from the counters, over HTTP with the in-memory fakes: the ceiling
(one item read whatever the backlog), GET /api/tasks/count/total, the first list page's `total`
and a tenant's queue status answer what the counters hold; filters no counter covers still count
by query."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from taskapi.counting.memory import InMemoryCounterStore
from taskapi.http.app import create_app
from taskapi.models.domain import TaskStatus
from tests import factories
from tests.fakes import Fakes
from tests.unit.counting.test_reads import stored_task

ACCOUNT = "acct_a"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def api(fakes: Fakes) -> TestClient:
    return TestClient(fakes.install(create_app()), raise_server_exceptions=False)


@pytest.fixture
def headers(fakes: Fakes) -> dict[str, str]:
    return fakes.api_key(ACCOUNT)


class NoCountQueries:
    """Fails the test if the repository is asked to count."""

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        raise AssertionError(f"counted by query: {args} {kwargs}")


def by_hand(fakes: Fakes, **items: dict[str, int]) -> InMemoryCounterStore:
    """Counters set by hand (keys with "__" for "#"), unlike the repository's tasks."""
    counters = InMemoryCounterStore()
    for key, amounts in items.items():
        counters.put(key.replace("__", "#"), amounts)
    fakes.counters = counters
    return counters


# ------------------------------------------------------------------ the ceiling
@pytest.mark.parametrize("backlog", [10, 3_000])
def test_a_bulk_create_checks_the_ceiling_with_one_counter_item_whatever_the_backlog(
    fakes, api, headers, monkeypatch, backlog
):
    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "100000")
    fakes.repo.insert_new([stored_task(n, status=TaskStatus.QUEUED) for n in range(backlog)])
    monkeypatch.setattr(fakes.repo, "count", NoCountQueries())
    counters = fakes.counters
    assert counters is not None

    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*[factories.quiz() for _ in range(100)]))

    assert answer.status_code == 200, answer.text
    assert (counters.calls, counters.items_read) == (1, 1)


def test_the_ceiling_is_the_counters_held_tasks(fakes, api, headers, monkeypatch):
    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "5")
    counters = by_hand(fakes, A__acct_a={"HELD": 4, "QUEUED": 4, "PENDING": 9})  # PENDING ones without request_data
    monkeypatch.setattr(fakes.repo, "count", NoCountQueries())

    assert api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.quiz("q1"))).status_code == 200
    refused = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.quiz(), factories.quiz()))
    assert refused.status_code == 429
    assert "at most 5 unfinished tasks" in refused.json()["detail"]

    counters.put("A#acct_a", {"HELD": 5})
    bare = api.post("/api/tasks", headers=headers, json={**factories.quiz("bare"), "request_data": None})
    assert bare.status_code == 200  # no request_data: holds no place, not checked
    given = api.patch("/api/tasks/bare", headers=headers, json={"request_data": factories.quiz()["request_data"]})
    assert given.status_code == 429


# ------------------------------------------------------------------ count/total and the list's total
COUNTERS = {
    "A__acct_a": {"QUEUED": 40, "COMPLETED": 2, "QUEUED#high": 40},
    "G__acct_a__g": {"QUEUED": 30},
    "S__acct_a__s1": {"FAILED": 4},
    "S__acct_a__s2": {"FAILED": 1, "QUEUED": 2},
}


@pytest.mark.parametrize(
    ("params", "total"),
    [
        ({}, 42),
        ({"status": "QUEUED"}, 40),
        ({"status": "QUEUED,COMPLETED,PENDING"}, 42),
        ({"task_source_group_id": "g"}, 30),
        ({"task_source_group_id": "g", "status": "COMPLETED"}, 0),
        ({"task_source_ids": "s1,s2"}, 7),
        ({"task_source_ids": "s1", "task_source_id": "s2", "status": "FAILED"}, 5),
        ({"task_source_ids": "s2"}, 3),
        ({"status": "QUEUED", "priority": "high"}, 40),
        ({"task_source_group_id": "nobody"}, 0),
    ],
)
def test_count_total_answers_the_counters(fakes, api, headers, monkeypatch, params, total):
    counters = by_hand(fakes, **COUNTERS)
    monkeypatch.setattr(fakes.repo, "count", NoCountQueries())

    assert api.get("/api/tasks/count/total", headers=headers, params=params).json() == {"total": total}
    assert counters.calls == 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"task_type": "quiz"}, 3),
        ({"priority": "high"}, 3),
        ({"task_ids": "t1,t2"}, 2),
        ({"task_source_group_id": "g", "task_source_ids": "s1"}, 3),
        ({"status": "PENDING", "priority": "high"}, 0),
    ],
)
def test_filters_no_counter_covers_count_by_query(fakes, api, headers, params, expected):
    counters = by_hand(fakes, **COUNTERS)
    tasks = [factories.quiz(f"t{n}", priority="high", task_source_group_id="g", task_source_id="s1") for n in range(3)]
    api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*tasks))
    read_before = counters.items_read

    answer = api.get("/api/tasks/count/total", headers=headers, params=params).json()

    assert answer == {"total": expected}
    assert counters.items_read == read_before


def test_the_first_list_page_total_answers_the_counters_and_later_pages_carry_it(fakes, api, headers):
    tasks = [factories.quiz(f"t{n}", task_source_group_id="g", task_source_id="s1") for n in range(3)]
    api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*tasks))
    counters = by_hand(fakes, **COUNTERS)

    first = api.get("/api/tasks", headers=headers, params={"limit": 1}).json()
    by_group = api.get("/api/tasks", headers=headers, params={"limit": 2, "task_source_group_id": "g"}).json()
    by_sources = api.get("/api/tasks", headers=headers, params={"limit": 1, "task_source_ids": "s1,s2"}).json()
    assert (first["total"], by_group["total"], by_sources["total"]) == (42, 30, 7)
    assert counters.calls == 3

    second = api.get("/api/tasks", headers=headers, params={"limit": 1, "next_token": first["next_token"]}).json()
    assert second["total"] == 42
    assert counters.calls == 3  # a cursor page costs only itself


def test_a_list_total_from_lagging_counters_is_never_below_the_tasks_seen(fakes, api, headers):
    api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*[factories.quiz(f"t{n}") for n in range(4)]))
    by_hand(fakes)  # the stream has not delivered any of them yet

    page = api.get("/api/tasks", headers=headers, params={"limit": 2, "skip": 1}).json()
    assert len(page["tasks"]) == 2
    assert page["total"] == 4  # the skipped one, the page, and at least the one beyond it

    by_hand(fakes, A__acct_a={"QUEUED": 1000})  # counted tasks the list no longer finds
    beyond = api.get("/api/tasks", headers=headers, params={"skip": 9}).json()
    assert beyond["tasks"] == []
    assert beyond["total"] <= 9


def test_the_fake_counters_follow_the_tasks_through_their_lives(fakes, api, headers):
    """The default fake derives the counters from the tasks (as the caught-up stream would)."""
    tasks = [factories.quiz(f"t{n}", task_source_group_id="g", task_source_id=f"s{n % 2}") for n in range(5)]
    api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*tasks))
    api.post("/api/tasks/bulk-cancel", headers=headers, json={"task_ids": ["t0", "t1"]})

    def total(**params: str) -> int:
        return api.get("/api/tasks/count/total", headers=headers, params=params).json()["total"]

    assert (total(), total(status="QUEUED"), total(status="CANCELLED")) == (5, 3, 2)
    assert (total(task_source_group_id="g", status="CANCELLED"), total(task_source_ids="s1", status="QUEUED")) == (
        2,
        1,
    )


# ------------------------------------------------------------------ queue status
def test_a_tenant_queue_status_reads_its_account_counter_once(fakes, api, headers, monkeypatch):
    counters = by_hand(
        fakes,
        A__acct_a={
            "PENDING": 3,
            "QUEUED": 3,
            "PROCESSING": 1,
            "QUEUED#high": 2,
            "QUEUED#normal": 1,
            "PROCESSING#low": 1,
        },
    )
    monkeypatch.setattr(fakes.repo, "count", NoCountQueries())

    status = api.get("/api/tasks/queue/status", headers=headers).json()

    nothing = {"urgent": 0, "high": 0, "normal": 0, "low": 0}
    assert status["account_task_counts"] == {"pending": 3, "queued": 3, "processing": 1}
    overall = status["overall_queue_status"]
    assert overall["by_priority"] == {**nothing, "high": 2, "normal": 1}
    assert overall["in_flight_by_priority"] == {**nothing, "low": 1}
    assert (overall["total_queued"], overall["processing"]) == (3, 1)
    assert (counters.calls, counters.items_read) == (1, 1)


def test_process_pending_reports_the_pending_total_from_the_counter(fakes, api, headers, monkeypatch):
    by_hand(fakes, A__acct_a={"PENDING": 7})
    monkeypatch.setattr(fakes.repo, "count", NoCountQueries())

    answer = api.post("/api/tasks/queue/process-pending", headers=headers).json()

    assert answer["total_pending"] == 7
