"""request_data.provider over HTTP: a task may name who writes its content only where the
deployment lets tasks choose (TASKAPI_ALLOW_PROVIDER_OVERRIDE) and a model is configured for its
type; otherwise POST and PATCH answer 422 at the field, in words naming the template parameters,
and nothing is written or queued. A provider the API does not know is refused by the body's model."""

from __future__ import annotations

from typing import Any

import pytest

from taskapi.settings import get_settings
from tests import factories

ACCOUNT = "acct_a"
PROMPT = "Pythagoras discovered a theorem about right triangles."


@pytest.fixture
def headers(fakes) -> dict[str, str]:
    return fakes.api_key(ACCOUNT)


@pytest.fixture(autouse=True)
def _deployment_defaults(monkeypatch):
    """The template's defaults, whatever the developer's shell sets: built-ins, no overrides."""
    for kind in ("QUIZ", "DOCUMENTATION", "ANIMATED_LESSON", "VIDEO_SCRIPT"):
        monkeypatch.delenv(f"TASKAPI_{kind}_PROVIDER", raising=False)
        monkeypatch.delenv(f"TASKAPI_{kind}_MODEL_ID", raising=False)
    monkeypatch.delenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", raising=False)


@pytest.fixture
def overridable(monkeypatch) -> None:
    """A deployment of built-ins that lets tasks choose, with a Bedrock model for quizzes."""
    monkeypatch.setenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", "true")
    monkeypatch.setenv("TASKAPI_QUIZ_MODEL_ID", "test-model")


def quiz(task_id: str, provider: Any = "bedrock", **request: Any) -> dict[str, Any]:
    data = {"story_prompt": PROMPT, "difficulty": "easy", **request}
    if provider is not None:
        data["provider"] = provider
    return factories.quiz(task_id, request_data=data)


def assert_nothing_stored(api, fakes, headers) -> None:
    assert api.get("/api/tasks/count/total", headers=headers).json()["total"] == 0
    assert fakes.queue.sent == []


def provider_problems(answer) -> list[dict[str, Any]]:
    assert answer.status_code == 422, answer.text
    return answer.json()["detail"]


# ------------------------------------------------------------------ create
def test_a_default_deployment_refuses_a_task_choosing_bedrock_and_creates_nothing(api, fakes, headers):
    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(quiz("q1"), quiz("q2", provider=None)))

    (problem,) = provider_problems(answer)
    assert problem["loc"] == ["body", "tasks", 0, "request_data", "provider"]
    assert problem["type"] == "provider_unavailable"
    assert "does not let a task choose its provider" in problem["msg"]
    assert "quiz tasks use builtin" in problem["msg"]
    assert "QuizProvider" in problem["msg"]
    assert "AllowProviderOverride" in problem["msg"]
    assert_nothing_stored(api, fakes, headers)


def test_every_refused_task_of_a_bulk_is_named_by_its_index(api, fakes, headers):
    bodies = [quiz("q0", provider=None), quiz("q1"), factories.video("v2"), quiz("q3")]

    problems = provider_problems(api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*bodies)))

    assert [p["loc"][2] for p in problems] == [1, 3]
    assert_nothing_stored(api, fakes, headers)


def test_a_single_create_is_refused_at_its_own_field(api, fakes, headers):
    (problem,) = provider_problems(api.post("/api/tasks", headers=headers, json=quiz("q1")))

    assert problem["loc"] == ["body", "request_data", "provider"]
    assert "AllowProviderOverride" in problem["msg"]
    assert_nothing_stored(api, fakes, headers)


def test_naming_the_deployments_own_provider_is_accepted(api, fakes, headers):
    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(quiz("q1", provider="builtin")))

    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["request_data"]["provider"] == "builtin"


@pytest.mark.usefixtures("overridable")
def test_where_tasks_may_choose_a_task_choosing_bedrock_is_stored_and_queued(api, fakes, headers):
    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(quiz("q1"), quiz("q2", provider=None)))

    assert answer.status_code == 200, answer.text
    first, second = answer.json()
    assert first["request_data"]["provider"] == "bedrock"
    assert first["status"] == "QUEUED"
    assert "provider" not in second["request_data"]
    stored = api.get("/api/tasks/q1", headers=headers).json()
    assert stored["request_data"] == {"story_prompt": PROMPT, "difficulty": "easy", "provider": "bedrock"}
    assert [message.task_id for _, message, _ in fakes.queue.sent] == ["q1", "q2"]


@pytest.mark.usefixtures("overridable")
def test_where_tasks_may_choose_a_single_create_is_accepted_too(api, headers):
    answer = api.post("/api/tasks", headers=headers, json=quiz("q1"))

    assert answer.status_code == 200, answer.text
    assert answer.json()["request_data"]["provider"] == "bedrock"


@pytest.mark.usefixtures("overridable")
def test_a_type_without_a_configured_model_is_refused_even_where_tasks_may_choose(api, fakes, headers):
    body = factories.documentation("d1", request_data={"story_prompt": "How to use the API", "provider": "bedrock"})

    (problem,) = provider_problems(api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(body)))

    assert problem["loc"] == ["body", "tasks", 0, "request_data", "provider"]
    assert problem["msg"] == "no bedrock model is configured for documentation tasks on this deployment"
    assert_nothing_stored(api, fakes, headers)


def test_a_bedrock_deployment_refuses_the_builtin_engine_unless_tasks_may_choose(api, fakes, headers, monkeypatch):
    monkeypatch.setenv("TASKAPI_QUIZ_PROVIDER", "bedrock")
    monkeypatch.setenv("TASKAPI_QUIZ_MODEL_ID", "test-model")

    (problem,) = provider_problems(
        api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(quiz("q1", provider="builtin")))
    )
    accepted = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(quiz("q2")))

    assert "quiz tasks use bedrock" in problem["msg"]
    assert accepted.status_code == 200, accepted.text


@pytest.mark.usefixtures("overridable")
def test_an_unknown_provider_is_refused_by_the_body_model(api, fakes, headers):
    problems = provider_problems(
        api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(quiz("q1", provider="openai")))
    )

    (problem,) = problems
    assert problem["loc"][-2:] == ["request_data", "provider"]
    assert problem["loc"][:3] == ["body", "tasks", 0]
    assert problem["type"] == "literal_error"
    assert "'builtin' or 'bedrock'" in problem["msg"]
    assert_nothing_stored(api, fakes, headers)


# ------------------------------------------------------------------ PATCH
def bare(api, headers, task_id: str = "q1") -> None:
    answer = api.post(
        "/api/tasks/bulk", headers=headers, json=factories.bulk({"task_id": task_id, "task_type": "quiz"})
    )
    assert answer.status_code == 200, answer.text


def patch_data(provider: Any = "bedrock") -> dict[str, Any]:
    return {"request_data": {"story_prompt": PROMPT, "difficulty": "easy", "provider": provider}}


def test_patch_refuses_request_data_choosing_bedrock_and_changes_nothing(api, fakes, headers):
    bare(api, headers)

    (problem,) = provider_problems(api.patch("/api/tasks/q1", headers=headers, json=patch_data()))

    assert problem["loc"] == ["body", "request_data", "provider"]
    assert problem["type"] == "provider_unavailable"
    assert "AllowProviderOverride" in problem["msg"]
    task = api.get("/api/tasks/q1", headers=headers).json()
    assert (task["status"], task["request_data"]) == ("PENDING", None)
    assert fakes.queue.sent == []


@pytest.mark.usefixtures("overridable")
def test_patch_where_tasks_may_choose_stores_the_provider_and_queues_the_task(api, fakes, headers):
    bare(api, headers)

    answer = api.patch("/api/tasks/q1", headers=headers, json=patch_data())

    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert task["status"] == "QUEUED"
    assert task["request_data"]["provider"] == "bedrock"
    assert [message.task_id for _, message, _ in fakes.queue.sent] == ["q1"]


@pytest.mark.usefixtures("overridable")
def test_patch_with_an_unknown_provider_is_422_from_the_model(api, fakes, headers):
    bare(api, headers)

    problems = provider_problems(api.patch("/api/tasks/q1", headers=headers, json=patch_data("openai")))

    assert any(p["loc"][-1] == "provider" and "'builtin' or 'bedrock'" in p["msg"] for p in problems), problems
    assert api.get("/api/tasks/q1", headers=headers).json()["status"] == "PENDING"
    assert fakes.queue.sent == []


def test_repeating_a_patch_after_the_deployment_stopped_letting_tasks_choose_changes_nothing(
    api, fakes, headers, monkeypatch
):
    """A value equal to the stored one is no change: the task is answered as it is, not refused."""
    monkeypatch.setenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", "true")
    monkeypatch.setenv("TASKAPI_QUIZ_MODEL_ID", "test-model")
    bare(api, headers)
    assert api.patch("/api/tasks/q1", headers=headers, json=patch_data()).status_code == 200
    monkeypatch.setenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", "false")
    get_settings.cache_clear()

    again = api.patch("/api/tasks/q1", headers=headers, json=patch_data())

    assert again.status_code == 200, again.text
    assert again.json()["request_data"]["provider"] == "bedrock"
