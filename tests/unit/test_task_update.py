"""PATCH /api/tasks/{task_id} over the in-memory fakes: giving a PENDING task its request_data
(queued at once, checked against its type and the unfinished-task ceiling), priority, source fields."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from taskapi.errors import Conflict
from taskapi.http import deps
from taskapi.http.app import create_app
from taskapi.models.domain import Priority, Task, TaskStatus
from taskapi.queueing.messages import TaskMessage
from taskapi.services.processing import Outcome
from taskapi.store.memory import InMemoryTaskRepository
from tests import factories
from tests.fakes import Fakes

ACCOUNT = "acct_a"
QUIZ_DATA = {"story_prompt": "Pythagoras discovered a theorem about right triangles.", "difficulty": "easy"}


@pytest.fixture
def headers(fakes) -> dict[str, str]:
    return fakes.api_key(ACCOUNT)


def bare(task_id: str, task_type: str = "quiz", **fields: Any) -> dict[str, Any]:
    """A task body without request_data: stored PENDING and never queued."""
    return {"task_id": task_id, "task_type": task_type, **fields}


def create(api, headers, *bodies: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(*bodies))
    assert answer.status_code == 200, answer.text
    return answer.json()


def put_status(fakes: Fakes, task_id: str, status: TaskStatus) -> Task:
    task = fakes.repo.get(ACCOUNT, task_id)
    return fakes.repo.save(task.model_copy(update={"status": status}), expected_version=task.version)


def events(task: dict[str, Any]) -> list[str]:
    return [event["message"] for event in task["events"]]


# ------------------------------------------------------------------ request_data
def test_giving_request_data_to_a_pending_task_queues_it_on_its_priority_queue(api, fakes, headers):
    create(api, headers, bare("t1", priority="high"))
    assert fakes.queue.sent == []

    answer = api.patch("/api/tasks/t1", headers=headers, json={"request_data": QUIZ_DATA})

    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert task["status"] == "QUEUED"
    assert task["request_data"] == QUIZ_DATA
    assert events(task)[-2:] == ["request_data given", "Task added to quiz processing queue"]
    assert fakes.queue.sent == [(Priority.HIGH, TaskMessage(ACCOUNT, "t1", 1), 0)]
    assert api.get("/api/tasks/t1", headers=headers).json() == task


def test_request_data_and_a_new_priority_together_queue_on_the_new_priority(api, fakes, headers):
    create(api, headers, bare("t1"))

    answer = api.patch("/api/tasks/t1", headers=headers, json={"request_data": QUIZ_DATA, "priority": "urgent"})

    assert answer.json()["status"] == "QUEUED"
    assert [priority for priority, _, _ in fakes.queue.sent] == [Priority.URGENT]


def test_a_task_given_request_data_runs_to_completion(api, fakes, headers):
    create(api, headers, bare("t1"))
    api.patch("/api/tasks/t1", headers=headers, json={"request_data": QUIZ_DATA})

    assert fakes.run_queue() == 1

    done = api.get("/api/tasks/t1", headers=headers).json()
    assert done["status"] == "COMPLETED"
    assert done["result_url"]


def test_request_data_sqs_refuses_leaves_the_task_pending_with_an_event(api, fakes, headers):
    create(api, headers, bare("t1"))
    fakes.queue.refuse = lambda priority, message: "throttled"

    task = api.patch("/api/tasks/t1", headers=headers, json={"request_data": QUIZ_DATA}).json()

    assert task["status"] == "PENDING"
    assert task["request_data"] == QUIZ_DATA
    assert events(task)[-1] == "Not queued yet (throttled); it will be retried"


@pytest.mark.parametrize(
    ("task_type", "request_data", "field", "problem_type"),
    [
        ("quiz", {"story_prompt": "A prompt"}, "difficulty", "missing"),
        ("quiz", {**QUIZ_DATA, "difficulty": "extreme"}, "difficulty", "literal_error"),
        ("quiz", {**QUIZ_DATA, "num_questions": 51}, "num_questions", "less_than_equal"),
        ("video", QUIZ_DATA, "segments", "missing"),
        ("video", {"story_prompt": "A prompt", "segments": 0}, "segments", "segments"),
        ("documentation", {"language": "English"}, "story_prompt", "missing"),
    ],
)
def test_request_data_that_does_not_fit_the_task_type_is_422_naming_the_field(
    api, fakes, headers, task_type, request_data, field, problem_type
):
    create(api, headers, bare("t1", task_type))
    before = fakes.repo.get(ACCOUNT, "t1")

    answer = api.patch("/api/tasks/t1", headers=headers, json={"request_data": request_data})

    assert answer.status_code == 422, answer.text
    problems = answer.json()["detail"]
    assert {"loc": ["body", "request_data", field], "type": problem_type} in [
        {"loc": p["loc"], "type": p["type"]} for p in problems
    ]
    assert fakes.repo.get(ACCOUNT, "t1") == before
    assert fakes.queue.sent == []


def test_request_data_over_24_kib_is_422(api, fakes, headers):
    create(api, headers, bare("t1"))

    answer = api.patch("/api/tasks/t1", headers=headers, json={"request_data": {**QUIZ_DATA, "notes": "x" * 25_000}})

    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "request_data"]
    assert problem["type"] == "request_data_too_large"
    assert fakes.repo.get(ACCOUNT, "t1").request_data is None


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.COMPLETED])
def test_request_data_on_a_task_that_is_not_pending_is_409_pointing_to_bulk_regenerate(api, fakes, headers, status):
    create(api, headers, bare("t1"))
    before = put_status(fakes, "t1", status)

    answer = api.patch("/api/tasks/t1", headers=headers, json={"request_data": QUIZ_DATA})

    assert answer.status_code == 409
    assert "POST /api/tasks/bulk-regenerate" in answer.json()["detail"]
    assert fakes.repo.get(ACCOUNT, "t1") == before
    assert fakes.queue.sent == []


# ------------------------------------------------------------------ priority
def test_a_new_priority_sends_a_queued_task_again_and_only_one_delivery_runs_it(api, fakes, headers):
    create(api, headers, factories.quiz("t1"))
    assert [priority for priority, _, _ in fakes.queue.sent] == [Priority.NORMAL]

    answer = api.patch("/api/tasks/t1", headers=headers, json={"priority": "urgent"})

    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert (task["status"], task["priority"]) == ("QUEUED", "urgent")
    assert events(task)[-2:] == ["Priority changed from normal to urgent", "Sent again on the urgent queue"]
    assert [priority for priority, _, _ in fakes.queue.sent] == [Priority.NORMAL, Priority.URGENT]
    processor = fakes.processor()
    outcomes = [processor.process(message) for _, message, _ in fakes.queue.drain()]
    assert sorted(outcomes) == sorted([Outcome.COMPLETED, Outcome.SKIPPED])
    assert events(api.get("/api/tasks/t1", headers=headers).json()).count("Task completed") == 1


def test_a_new_priority_of_a_pending_task_sends_nothing(api, fakes, headers):
    create(api, headers, bare("t1"))

    task = api.patch("/api/tasks/t1", headers=headers, json={"priority": "low"}).json()

    assert (task["status"], task["priority"]) == ("PENDING", "low")
    assert fakes.queue.sent == []


def test_the_priority_of_a_processing_task_is_409(api, fakes, headers):
    create(api, headers, factories.quiz("t1"))
    before = put_status(fakes, "t1", TaskStatus.PROCESSING)
    sent = len(fakes.queue.sent)

    answer = api.patch("/api/tasks/t1", headers=headers, json={"priority": "urgent"})

    assert answer.status_code == 409
    assert "PROCESSING" in answer.json()["detail"]
    assert fakes.repo.get(ACCOUNT, "t1") == before
    assert len(fakes.queue.sent) == sent


def test_the_same_priority_again_changes_nothing_even_while_processing(api, fakes, headers):
    create(api, headers, factories.quiz("t1"))
    before = put_status(fakes, "t1", TaskStatus.PROCESSING)

    answer = api.patch("/api/tasks/t1", headers=headers, json={"priority": "normal"})

    assert answer.status_code == 200
    assert fakes.repo.get(ACCOUNT, "t1") == before


# ------------------------------------------------------------------ source fields
def test_source_fields_change_in_any_state_and_lists_by_group_follow(api, fakes, headers):
    create(
        api,
        headers,
        bare("t1", task_source_group_id="g1", task_source_name="Course"),
        bare("t2", task_source_group_id="g1"),
    )
    put_status(fakes, "t1", TaskStatus.COMPLETED)

    answer = api.patch("/api/tasks/t1", headers=headers, json={"task_source_group_id": "g2", "task_source_name": None})

    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert (task["task_source_group_id"], task["task_source_name"], task["status"]) == ("g2", None, "COMPLETED")
    assert events(task)[-2:] == ["task_source_name cleared", "task_source_group_id set to g2"]
    by_group = {
        group: [
            t["task_id"] for t in api.get(f"/api/tasks?task_source_group_id={group}", headers=headers).json()["tasks"]
        ]
        for group in ("g1", "g2")
    }
    assert by_group == {"g1": ["t2"], "g2": ["t1"]}


# ------------------------------------------------------------------ who and what
def test_another_accounts_task_and_an_unknown_id_are_404_like_get(api, fakes, headers):
    other = fakes.api_key("acct_b")
    create(api, other, bare("theirs"))
    before = fakes.repo.get("acct_b", "theirs")

    for task_id in ("theirs", "missing"):
        answer = api.patch(f"/api/tasks/{task_id}", headers=headers, json={"priority": "urgent"})
        got = api.get(f"/api/tasks/{task_id}", headers=headers)
        assert (
            (answer.status_code, answer.json()) == (404, got.json()) == (404, {"detail": f"Task {task_id} not found"})
        )
    assert fakes.repo.get("acct_b", "theirs") == before


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"status": "COMPLETED"}, ["body", "status"]),
        ({"priority": None}, ["body", "priority"]),
        ({"request_data": None}, ["body", "request_data"]),
        ({"task_source_id": "x" * 300}, ["body", "task_source_id"]),
    ],
)
def test_a_body_that_changes_nothing_valid_is_422(api, fakes, headers, body, loc):
    create(api, headers, bare("t1"))
    before = fakes.repo.get(ACCOUNT, "t1")

    answer = api.patch("/api/tasks/t1", headers=headers, json=body)

    assert answer.status_code == 422, answer.text
    assert loc in [problem["loc"] for problem in answer.json()["detail"]]
    assert fakes.repo.get(ACCOUNT, "t1") == before


def test_patch_needs_credentials(api):
    assert api.patch("/api/tasks/t1", json={"priority": "high"}).status_code == 401


class _RacingRepository(InMemoryTaskRepository):
    """Another request writes the task right after this one reads it."""

    def get(self, account_id: str, task_id: str) -> Task | None:
        read = super().get(account_id, task_id)
        if read is not None:
            self.save(read.model_copy(update={"progress_message": "racing write"}), expected_version=read.version)
        return read


def test_a_task_that_changed_meanwhile_is_409_retry(fakes, headers):
    racing = _RacingRepository()
    app = fakes.install(create_app())
    app.dependency_overrides[deps.get_repository] = lambda: racing
    api = TestClient(app, raise_server_exceptions=False)
    create(api, headers, bare("t1"))

    answer = api.patch("/api/tasks/t1", headers=headers, json={"task_source_id": "s1"})

    assert answer.status_code == 409
    assert answer.json() == {"detail": "Task t1 changed meanwhile; retry"}
    assert racing.get(ACCOUNT, "t1").task_source_id is None
    with pytest.raises(Conflict):
        racing.save(racing.get(ACCOUNT, "t1"), expected_version=0)


# ------------------------------------------------------------------ the unfinished-task ceiling
@pytest.fixture
def ceiling_of_3(monkeypatch):
    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "3")
    monkeypatch.setenv("TASKAPI_CEILING_RETRY_AFTER_SECONDS", "42")


@pytest.mark.usefixtures("ceiling_of_3")
def test_tasks_without_request_data_do_not_count_against_the_ceiling(api, fakes, headers):
    create(api, headers, bare("w0"), bare("w1"), bare("w2"))

    answer = api.post(
        "/api/tasks/bulk", headers=headers, json=factories.bulk(*[factories.quiz(f"q{i}") for i in range(3)])
    )

    assert answer.status_code == 200, answer.text
    assert api.post("/api/tasks", headers=headers, json=factories.quiz("q3")).status_code == 429
    # At the ceiling, tasks without request_data are still stored: they are not work yet.
    stored = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(bare("w3"), bare("w4")))
    assert stored.status_code == 200, stored.text
    # A mixed create needs room for its tasks that have request_data only.
    mixed = api.post("/api/tasks/bulk", headers=headers, json=factories.bulk(bare("w5"), factories.quiz("q4")))
    assert mixed.status_code == 429


@pytest.mark.usefixtures("ceiling_of_3")
def test_request_data_beyond_the_ceiling_is_429_and_changes_nothing(api, fakes, headers):
    create(api, headers, bare("w0"))
    create(api, headers, factories.quiz("q0"), factories.quiz("q1"), factories.quiz("q2"))
    before = fakes.repo.get(ACCOUNT, "w0")
    sent = len(fakes.queue.sent)

    answer = api.patch("/api/tasks/w0", headers=headers, json={"request_data": QUIZ_DATA, "priority": "urgent"})

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "42"
    assert "at most 3 unfinished tasks" in answer.json()["detail"]
    assert fakes.repo.get(ACCOUNT, "w0") == before
    assert len(fakes.queue.sent) == sent
    # Changes that add no work are not held back by the ceiling; room made by a cancel lets it in.
    assert api.patch("/api/tasks/w0", headers=headers, json={"priority": "urgent"}).status_code == 200
    api.post("/api/tasks/bulk-cancel", headers=headers, json={"task_ids": ["q0"]})
    assert api.patch("/api/tasks/w0", headers=headers, json={"request_data": QUIZ_DATA}).json()["status"] == "QUEUED"
