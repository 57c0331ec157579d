"""The FastAPI app with its real dependencies (DynamoDB repository and key store) on moto."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from taskapi.auth.api_keys import generate_key
from taskapi.errors import NotFound
from taskapi.http.app import create_app
from tests import factories


@pytest.fixture
def api(aws_env):
    return TestClient(create_app(), raise_server_exceptions=False)


def test_create_list_count_and_get_through_the_real_stack(api, key_store, catch_up_counters):
    key, record = generate_key("acct_a")
    key_store.put(record)
    headers = {"X-API-Key": key}
    body = factories.bulk(
        factories.video("task_001", task_source_id="course_123", task_source_group_id="batch_456"),
        factories.quiz(task_source_id="course_123", task_source_group_id="batch_456"),
        factories.video(task_source_id="system_001", task_source_group_id="batch_789"),
        logo_url="https://example.com/logo.png",
    )
    created = api.post("/api/tasks/bulk", headers=headers, json=body)
    assert created.status_code == 200, created.text
    tasks = created.json()
    assert tasks[0]["request_data"]["logo_url"] == "https://example.com/logo.png"
    # The counts come from the counters: the stream consumer applies the tasks table's stream.
    catch_up_counters()

    listed = api.get("/api/tasks", headers=headers, params={"task_source_group_id": "batch_456", "limit": 1}).json()
    assert listed["total"] == 2
    assert len(listed["tasks"]) == 1
    assert listed["next_token"]
    rest = api.get(
        "/api/tasks",
        headers=headers,
        params={"task_source_group_id": "batch_456", "limit": 1, "next_token": listed["next_token"]},
    ).json()
    assert rest["next_token"] is None
    assert {listed["tasks"][0]["task_id"], rest["tasks"][0]["task_id"]} == {tasks[0]["task_id"], tasks[1]["task_id"]}

    assert api.get("/api/tasks/count/total", headers=headers, params={"task_source_ids": "course_123"}).json() == {
        "total": 2
    }
    assert api.get("/api/tasks/count/total", headers=headers, params={"status": "QUEUED"}).json() == {"total": 3}
    assert api.get("/api/tasks", headers=headers, params={"limit": 1}).json()["total"] == 3
    assert api.get("/api/tasks/task_001", headers=headers).json() == tasks[0]

    again = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.quiz("task_001")))
    assert again.json() == [tasks[0]]


def test_revoked_key_stops_working(api, key_store):
    key, record = generate_key("acct_a")
    key_store.put(record)
    assert api.get("/api/tasks", headers={"X-API-Key": key}).status_code == 200
    revoked = key_store.revoke(record.key_id)
    assert revoked.revoked_at is not None
    answer = api.get("/api/tasks", headers={"X-API-Key": key})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "API key has been revoked"}


def test_revoking_an_unknown_key_is_not_found(key_store):
    with pytest.raises(NotFound):
        key_store.revoke("0123456789abcdef")
