"""The API function behind API Gateway: the principal comes from the authorizer's context;
without one (uvicorn, tests, a direct invoke) the app verifies credentials itself."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests import factories
from tests.fakes import Fakes

HANDLER = Path(__file__).resolve().parents[3] / "functions" / "api" / "app.py"
CONTEXT_A = {"account_id": "acct_a", "user_id": "user-a", "auth_method": "jwt", "plan": "free"}
CONTEXT_B = {"account_id": "acct_b", "user_id": "api_key_user_acct_b", "auth_method": "api_key", "plan": "standard"}


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("TASKAPI_ROOT_PATH", "/v1")
    spec = importlib.util.spec_from_file_location("api_handler_behind_gateway", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.fakes = Fakes()
    module.fakes.install(module.app)
    return module


def invoke(module, event):
    answer = module.handler(event, factories.LambdaContext())
    return answer["statusCode"], json.loads(answer["body"]), answer


def test_the_authorizer_context_is_the_principal(api):
    event = factories.apigw_event(
        "POST", "/api/tasks/bulk", body=factories.bulk(factories.quiz("q1")), authorizer=CONTEXT_A
    )
    status, created, _ = invoke(api, event)
    assert status == 200
    assert created[0]["account_id"] == "acct_a"
    assert created[0]["user_id"] == "user-a"
    assert api.fakes.repo.get("acct_a", "q1") is not None


def test_a_context_for_one_account_never_reads_another(api):
    invoke(
        api,
        factories.apigw_event(
            "POST", "/api/tasks/bulk", body=factories.bulk(factories.quiz("q1")), authorizer=CONTEXT_A
        ),
    )
    status, body, _ = invoke(api, factories.apigw_event("GET", "/api/tasks/q1", authorizer=CONTEXT_B))
    assert (status, body) == (404, {"detail": "Task q1 not found"})
    status, listed, _ = invoke(api, factories.apigw_event("GET", "/api/tasks", authorizer=CONTEXT_B))
    assert (status, listed["total"]) == (200, 0)


def test_headers_cannot_override_the_authorizer_context(api):
    """X-Account-ID naming another account changes nothing once the authorizer has decided."""
    invoke(
        api,
        factories.apigw_event(
            "POST", "/api/tasks/bulk", body=factories.bulk(factories.quiz("q1")), authorizer=CONTEXT_A
        ),
    )
    event = factories.apigw_event("GET", "/api/tasks/q1", headers={"X-Account-ID": "acct_a"}, authorizer=CONTEXT_B)
    assert invoke(api, event)[0] == 404


def test_without_an_authorizer_context_the_app_verifies_credentials_itself(api):
    assert invoke(api, factories.apigw_event("GET", "/api/tasks"))[0] == 401
    headers = api.fakes.api_key("acct_a")
    status, listed, _ = invoke(api, factories.apigw_event("GET", "/api/tasks", headers=headers))
    assert (status, listed["total"]) == (200, 0)


@pytest.mark.parametrize(
    "context",
    [
        {"account_id": "acct_a"},
        {"account_id": "", "user_id": "u", "auth_method": "jwt"},
        {"account_id": "acct_a", "user_id": "u", "auth_method": "magic"},
        {"principalId": "x"},
    ],
    ids=["no-user", "empty-account", "unknown-method", "no-account"],
)
def test_an_incomplete_context_is_not_a_principal(api, context):
    assert invoke(api, factories.apigw_event("GET", "/api/tasks", authorizer=context))[0] == 401


def test_public_paths_need_no_context(api):
    status, body, _ = invoke(api, factories.apigw_event("GET", "/health", resource="/health"))
    assert (status, body["status"]) == (200, "ok")


def test_a_wrong_method_behind_the_stage_is_405_with_allow(api):
    """Under the stage's root path too: the fixed path wins over /api/tasks/{task_id}."""
    status, body, answer = invoke(api, factories.apigw_event("GET", "/api/tasks/bulk", authorizer=CONTEXT_A))
    assert (status, body) == (405, {"detail": "Method Not Allowed; this path allows POST"})
    assert {k.lower(): v for k, v in answer["headers"].items()}["allow"] == "POST"


@pytest.mark.parametrize(
    ("path", "resource"),
    [("/task/requeue-pending", "/task/requeue-pending"), ("/api/task/requeue-pending", "/api/{proxy+}")],
)
def test_the_references_requeue_pending_behind_the_gateway(api, path, resource):
    status, body, _ = invoke(api, factories.apigw_event("POST", path, resource=resource, authorizer=CONTEXT_A))
    assert (status, body["requeued_count"]) == (200, 0)
    assert invoke(api, factories.apigw_event("POST", path, resource=resource))[0] == 401
