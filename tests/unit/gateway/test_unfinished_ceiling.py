"""The per-account ceiling on unfinished tasks (PENDING + QUEUED + PROCESSING), per plan."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from taskapi.http.app import create_app
from taskapi.models.domain import TaskStatus
from tests import factories
from tests.fakes import Fakes


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "5")
    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_STANDARD", "8")
    monkeypatch.setenv("TASKAPI_CEILING_RETRY_AFTER_SECONDS", "42")
    fakes = Fakes()
    client = TestClient(fakes.install(create_app()))
    return fakes, client


def tasks(prefix: str, n: int):
    return factories.bulk(*[factories.quiz(f"{prefix}{i}") for i in range(n)])


def test_bulk_create_beyond_the_ceiling_is_429_with_retry_after_and_writes_nothing(env):
    fakes, client = env
    headers = fakes.api_key("acct_a")  # default plan: free, ceiling 5
    assert client.post("/api/tasks/bulk", json=tasks("a", 4), headers=headers).status_code == 200
    before = fakes.repo.count("acct_a", factories.all_tasks())
    sent_before = len(fakes.queue.sent)

    answer = client.post("/api/tasks/bulk", json=tasks("b", 2), headers=headers)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "42"
    assert "at most 5 unfinished tasks" in answer.json()["detail"]
    assert fakes.repo.count("acct_a", factories.all_tasks()) == before
    assert len(fakes.queue.sent) == sent_before

    assert client.post("/api/tasks/bulk", json=tasks("c", 1), headers=headers).status_code == 200
    assert client.post("/api/tasks", json=factories.quiz("d0"), headers=headers).status_code == 429


def test_finished_tasks_make_room(env):
    fakes, client = env
    headers = fakes.api_key("acct_a")
    client.post("/api/tasks/bulk", json=tasks("a", 5), headers=headers)
    assert client.post("/api/tasks/bulk", json=tasks("b", 1), headers=headers).status_code == 429
    assert client.post("/api/tasks/bulk-cancel", json={"task_ids": ["a0", "a1"]}, headers=headers).status_code == 200
    assert client.post("/api/tasks/bulk", json=tasks("b", 2), headers=headers).status_code == 200


def test_the_ceiling_is_per_account(env):
    fakes, client = env
    client.post("/api/tasks/bulk", json=tasks("a", 5), headers=fakes.api_key("acct_a"))
    assert client.post("/api/tasks/bulk", json=tasks("a", 5), headers=fakes.api_key("acct_b")).status_code == 200


def test_the_ceiling_follows_the_plan(env):
    fakes, client = env
    headers = fakes.api_key("acct_s", plan="standard")  # ceiling 8
    assert client.post("/api/tasks/bulk", json=tasks("a", 8), headers=headers).status_code == 200
    answer = client.post("/api/tasks/bulk", json=tasks("b", 1), headers=headers)
    assert answer.status_code == 429
    assert "at most 8 unfinished" in answer.json()["detail"]


def test_a_request_larger_than_the_whole_ceiling_is_refused_without_counting(env):
    fakes, client = env
    answer = client.post("/api/tasks/bulk", json=tasks("a", 6), headers=fakes.api_key("acct_a"))
    assert answer.status_code == 429
    assert fakes.repo.count("acct_a", factories.all_tasks()) == 0


def test_processing_tasks_count_and_final_ones_do_not(env):
    fakes, client = env
    headers = fakes.api_key("acct_a")
    client.post("/api/tasks/bulk", json=tasks("a", 5), headers=headers)
    statuses = [TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.QUEUED, TaskStatus.PENDING]
    for i, status in enumerate(statuses):
        task = fakes.repo.get("acct_a", f"a{i}")
        fakes.repo.save(task.model_copy(update={"status": status}), expected_version=task.version)
    assert client.post("/api/tasks/bulk", json=tasks("b", 2), headers=headers).status_code == 200
    assert client.post("/api/tasks/bulk", json=tasks("c", 1), headers=headers).status_code == 429
