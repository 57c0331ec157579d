"""The Lambda entry point: API Gateway REST proxy events through Mangum into the app, and back."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests import factories
from tests.fakes import Fakes

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "api" / "app.py"


@pytest.fixture
def handler_module(monkeypatch):
    monkeypatch.setenv("TASKAPI_ROOT_PATH", "/v1")
    spec = importlib.util.spec_from_file_location("api_handler_under_test", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fakes = Fakes()
    fakes.install(module.app)
    module.api_key = fakes.api_key("acct_a")["X-API-Key"]
    return module


def invoke(module, event):
    answer = module.handler(event, factories.LambdaContext())
    return answer["statusCode"], json.loads(answer["body"]), answer


def test_health_through_api_gateway(handler_module):
    status, body, _ = invoke(handler_module, factories.apigw_event("GET", "/health", resource="/health"))
    assert status == 200
    assert body["status"] == "ok"


def test_create_and_list_through_api_gateway(handler_module):
    headers = {"X-API-Key": handler_module.api_key, "Content-Type": "application/json"}
    event = factories.apigw_event(
        "POST", "/api/tasks/bulk", headers=headers, body=factories.bulk(factories.video("t1"), factories.quiz())
    )
    status, created, _ = invoke(handler_module, event)
    assert status == 200
    assert [t["task_type"] for t in created] == ["video", "quiz"]

    status, listed, _ = invoke(
        handler_module, factories.apigw_event("GET", "/api/tasks", headers=headers, query={"limit": "1"})
    )
    assert status == 200
    assert listed["total"] == 2
    assert len(listed["tasks"]) == 1


def test_errors_keep_their_status_and_json_body(handler_module):
    status, body, answer = invoke(handler_module, factories.apigw_event("GET", "/api/tasks"))
    assert status == 401
    assert "detail" in body
    assert answer["headers"]["content-type"] == "application/json"


def test_docs_point_at_the_stage_openapi(handler_module):
    answer = handler_module.handler(factories.apigw_event("GET", "/docs", resource="/docs"), factories.LambdaContext())
    assert answer["statusCode"] == 200
    assert "/v1/openapi.json" in answer["body"]
