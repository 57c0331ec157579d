"""Tasks without request_data on the real DynamoDB adapter (moto, tables and queues from
template.yaml): the queueable filter on every query plan, the ceiling's count, and PATCH
/api/tasks/{task_id} end to end."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from taskapi import aws
from taskapi.auth.api_keys import generate_key
from taskapi.http.app import create_app
from taskapi.models.domain import Task, TaskEvent, TaskStatus
from taskapi.services.tasks import HELD_AGAINST_CEILING
from taskapi.settings import get_settings, queue_urls
from taskapi.store.base import TaskFilters
from tests.integration.processing.support import receive_all

STATUSES = (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.COMPLETED)
QUIZ_DATA = {"story_prompt": "Pythagoras discovered a theorem about right triangles.", "difficulty": "easy"}


def make(n: int, *, request_data: bool, status: TaskStatus, account: str = "acct_a") -> Task:
    stamp = f"2026-01-01T00:00:{n // 1000:02d}.{n % 1000:03d}000Z"
    return Task(
        account_id=account,
        task_id=f"t{n:02d}",
        user_id="u",
        task_type="quiz",
        status=status,
        created_at=stamp,
        updated_at=stamp,
        task_source_group_id=f"g{n % 2}",
        task_source_id=f"s{n % 3}",
        request_data=QUIZ_DATA if request_data else None,
        events=[TaskEvent(timestamp=stamp, message="Task pending")],
    )


@pytest.fixture
def mixed(repo) -> list[Task]:
    """40 tasks of acct_a in four statuses, every fifth without request_data; noise in acct_b."""
    tasks = [make(n, request_data=n % 5 != 0, status=STATUSES[n % 4]) for n in range(40)]
    repo.insert_new(tasks)
    repo.insert_new([make(n, request_data=False, status=TaskStatus.PENDING, account="acct_b") for n in range(10)])
    return sorted(tasks, key=lambda t: t.created_sk, reverse=True)


@pytest.mark.parametrize(
    "filters",
    [
        TaskFilters(queueable=True),
        TaskFilters(queueable=False),
        HELD_AGAINST_CEILING,
        TaskFilters(statuses=(TaskStatus.PENDING,), queueable=False),
        TaskFilters(group_id="g0", queueable=False),
        TaskFilters(source_ids=("s0", "s2"), queueable=True),
        TaskFilters(task_ids=("t00", "t01", "t05", "t10"), queueable=False),
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in vars(f).items() if v not in (None, ())),
)
def test_the_queueable_filter_holds_on_every_query_plan(repo, mixed, filters):
    expected = [t for t in mixed if filters.matches(t)]
    assert expected
    assert repo.page("acct_a", filters, before=None, want=1000) == expected
    assert repo.count("acct_a", filters) == len(expected)


def test_the_ceiling_count_leaves_out_tasks_without_request_data(repo, mixed):
    held = [t for t in mixed if t.status in HELD_AGAINST_CEILING.statuses and t.request_data is not None]
    unfinished = [t for t in mixed if t.status in HELD_AGAINST_CEILING.statuses]
    assert len(held) < len(unfinished)

    assert repo.count("acct_a", HELD_AGAINST_CEILING) == len(held)
    # Stopping early still counts only what the filter lets through.
    assert 3 <= repo.count("acct_a", HELD_AGAINST_CEILING, at_most=3) <= len(held)
    assert repo.count("acct_b", HELD_AGAINST_CEILING) == 0


@pytest.fixture
def api(aws_env, monkeypatch):
    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "2")
    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.fixture
def headers(key_store) -> dict[str, str]:
    key, record = generate_key("acct_a")
    key_store.put(record)
    return {"X-API-Key": key}


def sent_task_ids(priority: str) -> list[str]:
    url = queue_urls(get_settings())[priority]
    return [json.loads(message["Body"])["task_id"] for message in receive_all(aws.client("sqs"), url)]


def test_patch_end_to_end_on_dynamodb_and_sqs(api, headers, catch_up_counters):
    # Given three tasks without request_data (they hold no place under the ceiling of 2) and a queued one
    for task_id, priority in (("w0", "high"), ("w1", "normal"), ("w2", "normal")):
        answer = api.post(
            "/api/tasks", headers=headers, json={"task_id": task_id, "task_type": "quiz", "priority": priority}
        )
        assert answer.status_code == 200, answer.text
    queued = api.post(
        "/api/tasks", headers=headers, json={"task_id": "q0", "task_type": "quiz", "request_data": QUIZ_DATA}
    )
    assert queued.json()["status"] == "QUEUED"
    assert sent_task_ids("normal") == ["q0"]

    # request_data queues a task at once, on its priority's queue
    given = api.patch("/api/tasks/w0", headers=headers, json={"request_data": QUIZ_DATA})
    assert given.status_code == 200, given.text
    assert (given.json()["status"], given.json()["request_data"]) == ("QUEUED", QUIZ_DATA)
    assert sent_task_ids("high") == ["w0"]
    assert api.get("/api/tasks/w0", headers=headers).json() == given.json()

    # a third unfinished task with request_data would pass the ceiling (counted by the counters,
    # once the stream consumer has counted the two): 429, nothing written
    catch_up_counters()
    before = api.get("/api/tasks/w1", headers=headers).json()
    refused = api.patch("/api/tasks/w1", headers=headers, json={"request_data": QUIZ_DATA})
    assert refused.status_code == 429
    assert api.get("/api/tasks/w1", headers=headers).json() == before

    # invalid request_data names the field
    invalid = api.patch("/api/tasks/w1", headers=headers, json={"request_data": {"story_prompt": "p"}})
    assert invalid.status_code == 422
    assert ["body", "request_data", "difficulty"] in [problem["loc"] for problem in invalid.json()["detail"]]

    # a new priority sends a QUEUED task again on the new priority's queue
    moved = api.patch("/api/tasks/q0", headers=headers, json={"priority": "urgent"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["events"][-1]["message"] == "Sent again on the urgent queue"
    assert sent_task_ids("urgent") == ["q0"]

    # source fields are written to the indexes the lists read
    regrouped = api.patch("/api/tasks/w2", headers=headers, json={"task_source_group_id": "batch_9"})
    assert regrouped.status_code == 200, regrouped.text
    listed = api.get("/api/tasks", headers=headers, params={"task_source_group_id": "batch_9"}).json()
    assert [task["task_id"] for task in listed["tasks"]] == ["w2"]

    assert api.patch("/api/tasks/missing", headers=headers, json={"priority": "low"}).status_code == 404
