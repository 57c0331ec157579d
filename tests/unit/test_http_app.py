"""The HTTP contract: status codes, error bodies and headers, over the in-memory fakes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from taskapi.auth.tokens import issue_local_token
from taskapi.http.app import create_app
from taskapi.settings import Settings
from tests import factories
from tests.fakes import Fakes


@pytest.fixture
def api():
    fakes = Fakes()
    client = TestClient(fakes.install(create_app()), raise_server_exceptions=False)
    client.fakes = fakes
    return client


def key_for(api, account: str) -> dict[str, str]:
    return api.fakes.api_key(account)


def test_health_needs_no_credentials(api):
    answer = api.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_every_task_route_needs_credentials(api):
    for method, path in [("GET", "/api/tasks"), ("GET", "/api/tasks/x"), ("GET", "/api/tasks/count/total")]:
        answer = api.request(method, path)
        assert answer.status_code == 401, path
        assert "detail" in answer.json()
        assert answer.headers["www-authenticate"] == "Bearer"
    assert api.post("/api/tasks/bulk", json=factories.bulk(factories.video())).status_code == 401


def test_bulk_create_then_read_back(api):
    headers = key_for(api, "acct_a")
    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.video("t1"), factories.quiz()))
    assert answer.status_code == 200
    body = answer.json()
    assert [t["task_type"] for t in body] == ["video", "quiz"]
    assert set(body[0]) >= {
        "task_id",
        "user_id",
        "account_id",
        "task_type",
        "priority",
        "status",
        "progress",
        "created_at",
        "updated_at",
        "task_source_name",
        "task_source_id",
        "task_source_group_id",
        "request_data",
        "events",
    }
    one = api.get("/api/tasks/t1", headers=headers)
    assert one.status_code == 200
    assert one.json() == body[0]


def test_single_create_answers_the_same_shape(api):
    headers = key_for(api, "acct_a")
    answer = api.post("/api/tasks", headers=headers, json=factories.quiz("q1"))
    assert answer.status_code == 200
    assert answer.json() == api.get("/api/tasks/q1", headers=headers).json()
    bad = api.post("/api/tasks", headers=headers, json=factories.quiz(request_data={"story_prompt": "x"}))
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "quiz", "request_data", "difficulty"]


def test_validation_errors_name_the_task_index_and_field_and_write_nothing(api):
    headers = key_for(api, "acct_a")
    body = factories.bulk(factories.video("ok"), factories.video("bad", request_data={"segments": 3}))
    answer = api.post("/api/tasks/bulk", headers=headers, json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "tasks", 1, "video", "request_data", "story_prompt"]
    assert api.get("/api/tasks/count/total", headers=headers).json() == {"total": 0}


def test_more_than_100_tasks_is_413_with_the_reference_text(api):
    headers = key_for(api, "acct_a")
    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*[factories.video()] * 101))
    assert answer.status_code == 413
    assert answer.json() == {"detail": "Cannot create more than 100 tasks at once"}


def test_duplicate_ids_in_one_request_are_422(api):
    headers = key_for(api, "acct_a")
    answer = api.post(
        "/api/tasks/bulk", headers=headers, json=factories.bulk(factories.video("a"), factories.quiz("a"))
    )
    assert answer.status_code == 422
    assert "tasks[1]" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("skip=-1", "skip"),
        ("status=BOGUS", "status"),
        ("status=PENDING,NOPE", "status"),
        ("task_type=podcast", "task_type"),
        ("priority=asap", "priority"),
        ("task_ids=" + ",".join(f"t{n}" for n in range(101)), "task_ids"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(api, query, field):
    answer = api.get(f"/api/tasks?{query}", headers=key_for(api, "acct_a"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", field]


def test_a_bad_cursor_is_400(api):
    answer = api.get("/api/tasks?next_token=not-a-cursor", headers=key_for(api, "acct_a"))
    assert answer.status_code == 400
    assert "next_token" in answer.json()["detail"]


def test_status_filter_accepts_several_values_and_any_case(api):
    headers = key_for(api, "acct_a")
    api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.video("t1")))
    answer = api.get("/api/tasks?status=queued,COMPLETED", headers=headers)
    assert answer.status_code == 200
    assert answer.json()["total"] == 1


def test_empty_csv_values_are_dropped(api):
    headers = key_for(api, "acct_a")
    api.post(
        "/api/tasks/bulk",
        headers=headers,
        json=factories.bulk(
            factories.video("a", task_source_id="course_123"), factories.quiz("b", task_source_id="c2")
        ),
    )
    answer = api.get("/api/tasks?task_source_ids=course_123,,c2,", headers=headers).json()
    assert answer["total"] == 2
    assert api.get("/api/tasks?task_source_ids=,,", headers=headers).json()["total"] == 2


def test_a_foreign_task_is_404_exactly_like_a_missing_one(api):
    mine = key_for(api, "acct_a")
    theirs = key_for(api, "acct_b")
    api.post("/api/tasks/bulk", headers=mine, json=factories.bulk(factories.video("secret_task")))
    foreign = api.get("/api/tasks/secret_task", headers=theirs)
    missing = api.get("/api/tasks/no_such_task", headers=theirs)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"].replace("secret_task", "X") == missing.json()["detail"].replace("no_such_task", "X")
    assert api.get("/api/tasks?task_ids=secret_task", headers=theirs).json()["total"] == 0
    assert api.get("/api/tasks/count/total", headers=theirs).json() == {"total": 0}


def test_bearer_token_for_another_account_is_403(api):
    token = issue_local_token(Settings(), subject="u", accounts=["acct_a"])
    answer = api.get("/api/tasks", headers={"Authorization": f"Bearer {token}", "X-Account-ID": "acct_b"})
    assert answer.status_code == 403
    ok = api.get("/api/tasks", headers={"Authorization": f"Bearer {token}", "X-Account-ID": "acct_a"})
    assert ok.status_code == 200


def test_malformed_json_is_422_not_500(api):
    answer = api.post(
        "/api/tasks/bulk", headers={**key_for(api, "a"), "Content-Type": "application/json"}, content=b"{not json"
    )
    assert answer.status_code == 422


def test_openapi_documents_every_route(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/tasks/bulk", "/api/tasks", "/api/tasks/{task_id}", "/api/tasks/count/total", "/health"} <= set(paths)
