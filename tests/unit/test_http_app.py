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


# ------------------------------------------------------------------ 405 and Allow
def allow_of(answer) -> set[str]:
    return {method.strip() for method in answer.headers["allow"].split(",")}


def test_get_of_the_bulk_path_is_405_not_a_task_named_bulk(api):
    answer = api.get("/api/tasks/bulk", headers=key_for(api, "acct_a"))
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json() == {"detail": "Method Not Allowed; this path allows POST"}


WRONG_METHODS = [
    ("GET", "/api/tasks/bulk", "/api/tasks/bulk"),
    ("GET", "/api/tasks/bulk-cancel", "/api/tasks/bulk-cancel"),
    ("GET", "/api/tasks/bulk-regenerate", "/api/tasks/bulk-regenerate"),
    ("GET", "/api/tasks/requeue-pending", "/api/tasks/requeue-pending"),
    ("GET", "/api/tasks/queue/restart", "/api/tasks/queue/restart"),
    ("GET", "/api/tasks/queue/process-pending", "/api/tasks/queue/process-pending"),
    ("POST", "/api/tasks/count/total", "/api/tasks/count/total"),
    ("POST", "/api/tasks/queue/status", "/api/tasks/queue/status"),
    ("DELETE", "/api/tasks/bulk-cancel", "/api/tasks/bulk-cancel"),
    ("PUT", "/api/tasks", "/api/tasks"),
    ("DELETE", "/api/tasks/abc", "/api/tasks/{task_id}"),
    ("PUT", "/api/tasks/abc", "/api/tasks/{task_id}"),
    ("GET", "/api/uploads", "/api/uploads"),
    ("DELETE", "/api/uploads/u1", "/api/uploads/{upload_id}"),
    ("GET", "/task/requeue-pending", "/task/requeue-pending"),
    ("GET", "/api/task/requeue-pending", "/api/task/requeue-pending"),
]


@pytest.mark.parametrize(("method", "path", "template"), WRONG_METHODS, ids=[f"{m} {p}" for m, p, _ in WRONG_METHODS])
def test_a_method_a_path_does_not_serve_is_405_allowing_what_the_app_serves_there(api, method, path, template):
    # Given the methods the app's own OpenAPI document lists for the path's route
    served = {m.upper() for m in api.get("/openapi.json").json()["paths"][template]}
    # When the path is asked with another method, with valid credentials
    answer = api.request(method, path, headers=key_for(api, "acct_a"))
    # Then 405, Allow lists every served method (not only one route's), and detail names them
    assert answer.status_code == 405, answer.text
    assert allow_of(answer) == served
    assert answer.json() == {"detail": f"Method Not Allowed; this path allows {', '.join(sorted(served))}"}


def test_the_task_path_allows_get_and_whatever_else_the_app_serves_there(api):
    answer = api.delete("/api/tasks/abc", headers=key_for(api, "acct_a"))
    assert answer.status_code == 405
    assert "GET" in allow_of(answer)
    assert "DELETE" not in allow_of(answer)


def test_a_wrong_method_is_405_before_credentials_are_asked_for(api):
    """Routing comes before authentication: a 405 tells only the method set the public OpenAPI
    document already shows. The right method still needs credentials. (Behind API Gateway the
    authorizer runs first, so there an unauthenticated call is 401 whatever its method.)"""
    answer = api.get("/api/tasks/bulk")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert "www-authenticate" not in answer.headers
    assert api.delete("/api/tasks/abc").status_code == 405
    assert api.post("/api/tasks/queue/restart").status_code == 401


def test_served_methods_and_unknown_paths_are_routed_as_before(api):
    headers = key_for(api, "acct_a")
    assert api.get("/api/tasks/abc", headers=headers).json() == {"detail": "Task abc not found"}
    assert api.get("/api/tasks/count/total", headers=headers).status_code == 200
    assert api.get("/api/nowhere", headers=headers).status_code == 404
    assert api.post("/health").status_code == 405
    assert "/api/tasks/{task_id}" in api.get("/openapi.json").json()["paths"]


# ------------------------------------------------------------------ '+' in a query
PLUS_HINT = "a '+' in a query string means a space: send it as %2B"


def test_a_plus_in_a_refused_query_value_is_named_in_the_422(api):
    answer = api.get("/api/tasks?task_ids=a+b", headers=key_for(api, "acct_a"))
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "task_ids"]
    assert problem["msg"].endswith(f"; {PLUS_HINT}")


def test_the_plus_hint_names_only_the_parameters_sent_with_a_plus(api):
    answer = api.get("/api/tasks?limit=1+2&skip=-1", headers=key_for(api, "acct_a"))
    assert answer.status_code == 422
    by_field = {problem["loc"][1]: problem["msg"] for problem in answer.json()["detail"]}
    assert PLUS_HINT in by_field["limit"]
    assert PLUS_HINT not in by_field["skip"]


def test_a_space_sent_as_percent_20_gets_no_plus_hint_and_percent_2b_is_a_plus(api):
    headers = key_for(api, "acct_a")
    spaced = api.get("/api/tasks?task_ids=a%20b", headers=headers)
    assert spaced.status_code == 422
    assert PLUS_HINT not in spaced.json()["detail"][0]["msg"]
    api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.quiz("a+b")))
    assert api.get("/api/tasks?task_ids=a%2Bb", headers=headers).json()["total"] == 1


# ------------------------------------------------------------------ the reference's requeue-pending
REQUEUE_PATHS = ("/api/tasks/requeue-pending", "/task/requeue-pending", "/api/task/requeue-pending")


def requeue_answer(path: str, headers_for=None):
    """A fresh app with two PENDING tasks (SQS refused them), then POST path as their account."""
    fakes = Fakes()
    client = TestClient(fakes.install(create_app()), raise_server_exceptions=False)
    headers = fakes.api_key("acct_a")
    fakes.queue.refuse = lambda priority, message: "SQS is down"
    client.post("/api/tasks/bulk", headers=headers, json=factories.bulk(factories.quiz("q1"), factories.video("v1")))
    fakes.queue.refuse = None
    answer = client.post(path, headers=headers if headers_for is None else headers_for)
    return answer, sorted(message.task_id for _, message, _ in fakes.queue.sent)


@pytest.mark.parametrize("path", REQUEUE_PATHS[1:])
def test_the_references_requeue_pending_does_what_the_api_path_does(path):
    canonical, canonical_sent = requeue_answer(REQUEUE_PATHS[0])
    alias, alias_sent = requeue_answer(path)
    assert canonical.status_code == alias.status_code == 200
    assert alias.json() == canonical.json()
    assert alias.json()["queued_count"] == 2
    assert alias_sent == canonical_sent == ["q1", "v1"]


@pytest.mark.parametrize("path", REQUEUE_PATHS)
def test_requeue_pending_needs_credentials_under_every_spelling(path):
    answer, sent = requeue_answer(path, headers_for={})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert sent == []


def test_the_references_spellings_are_documented_as_such(api):
    paths = api.get("/openapi.json").json()["paths"]
    canonical = paths["/api/tasks/requeue-pending"]["post"]
    for alias in ("/task/requeue-pending", "/api/task/requeue-pending"):
        operation = paths[alias]["post"]
        assert set(paths[alias]) == {"post"}
        assert operation["deprecated"] is True
        assert "/api/tasks/requeue-pending" in operation["description"]
        assert operation["responses"] == canonical["responses"]
        assert operation["security"] == canonical["security"]
        assert operation["operationId"] != canonical["operationId"]
