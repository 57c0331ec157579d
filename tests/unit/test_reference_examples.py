"""The reference's own words over HTTP (in-memory fakes): its `content` examples, ids a course
tool really uses, and skip/limit paging as deep as a client may go."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from taskapi.http.app import create_app
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType, isoformat, utc_now
from tests.fakes import Fakes

ACCOUNT = "acct_a"


@pytest.fixture
def api() -> TestClient:
    fakes = Fakes()
    client = TestClient(fakes.install(create_app()), raise_server_exceptions=False)
    client.fakes = fakes  # type: ignore[attr-defined]
    client.headers.update(fakes.api_key(ACCOUNT))
    return client


def listed(api: TestClient, **query: str | int) -> dict:
    answer = api.get("/api/tasks", params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()


# ------------------------------------------------------------------ request_data.content
@pytest.mark.parametrize("task_type", ["documentation", "animated_lesson"])
def test_the_reference_example_body_completes_for_documentation_and_lessons(api, task_type):
    body = {
        "tasks": [
            {"task_id": "task_001", "task_type": task_type, "request_data": {"content": "Lesson about mathematics"}}
        ]
    }

    created = api.post("/api/tasks/bulk", json=body)

    assert created.status_code == 200, created.text
    (task,) = created.json()
    assert task["status"] == "QUEUED"
    assert task["request_data"] == {"content": "Lesson about mathematics"}
    assert api.fakes.run_queue() == 1
    done = api.get("/api/tasks/task_001").json()
    assert done["status"] == "COMPLETED", done["error_message"]
    assert done["request_data"] == {"content": "Lesson about mathematics"}  # stored as given


def test_the_reference_example_body_for_a_video_names_both_missing_fields(api):
    body = {
        "tasks": [{"task_id": "task_001", "task_type": "video", "priority": "high", "request_data": {"content": "x"}}]
    }

    answer = api.post("/api/tasks/bulk", json=body)

    assert answer.status_code == 422
    problems = {tuple(p["loc"]): p["msg"] for p in answer.json()["detail"]}
    assert set(problems) == {
        ("body", "tasks", 0, "video", "request_data", "story_prompt"),
        ("body", "tasks", 0, "video", "request_data", "segments"),
    }
    assert all(message.startswith("Field required: a video task's request_data needs") for message in problems.values())
    assert listed(api)["total"] == 0


# ------------------------------------------------------------------ source ids as course tools write them
SOURCES = ["Math 101", "Math 101, Algebra", "Cours d'été", "数学"]


def test_source_ids_with_spaces_commas_and_accents_are_stored_and_filtered_url_encoded(api):
    tasks = [
        {"task_id": f"t{n}", "task_type": "documentation", "task_source_id": source, "task_source_group_id": source}
        for n, source in enumerate(SOURCES)
    ]
    created = api.post("/api/tasks/bulk", json={"tasks": tasks})
    assert created.status_code == 200, created.text
    assert [t["task_source_id"] for t in created.json()] == SOURCES

    # httpx URL-encodes the values ("Math%20101%2C%20Algebra"); the server decodes them.
    assert [t["task_id"] for t in listed(api, task_source_group_id="Math 101")["tasks"]] == ["t0"]
    assert [t["task_id"] for t in listed(api, task_source_id="Math 101, Algebra")["tasks"]] == ["t1"]
    by_list = listed(api, task_source_ids="Math 101,数学")
    assert sorted(t["task_id"] for t in by_list["tasks"]) == ["t0", "t3"]
    both = listed(api, task_source_ids="Cours d'été", task_source_id="Math 101, Algebra")
    assert sorted(t["task_id"] for t in both["tasks"]) == ["t1", "t2"]
    count = api.get("/api/tasks/count/total", params={"task_source_group_id": "Cours d'été"})
    assert count.json() == {"total": 1}


@pytest.mark.parametrize("name", ["task_source_group_id", "task_source_id", "task_source_ids"])
def test_a_filter_value_with_a_control_character_is_422(api, name):
    answer = api.get("/api/tasks", params={name: "Math\n101"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", name]


def test_a_task_ids_filter_value_outside_the_task_id_characters_says_which_are_allowed(api):
    answer = api.get("/api/tasks", params={"task_ids": "a/b"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"] == "values may contain only letters, digits and . _ : @ ~ + = -"


# ------------------------------------------------------------------ skip / limit
def seed(api: TestClient, count: int) -> None:
    """count tasks of the account, created one second apart (t0000 is the oldest)."""
    start = utc_now() - timedelta(days=1)
    tasks = [
        Task(
            account_id=ACCOUNT,
            task_id=f"t{n:04d}",
            user_id="u",
            task_type=TaskType.QUIZ,
            priority=Priority.NORMAL,
            status=TaskStatus.COMPLETED,
            created_at=isoformat(start + timedelta(seconds=n)),
            updated_at=isoformat(start + timedelta(seconds=n)),
            task_source_id=f"s{n % 3}",
        )
        for n in range(count)
    ]
    api.fakes.repo.insert_new(tasks)


def test_skip_up_to_100000_is_accepted_and_beyond_it_is_422(api):
    assert api.get("/api/tasks", params={"skip": 100_000}).status_code == 200
    refused = api.get("/api/tasks", params={"skip": 100_001})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "skip"]


def test_skip_pages_through_every_task_in_order_with_the_true_total(api):
    seed(api, 25)
    pages = [listed(api, skip=skip, limit=10) for skip in (0, 10, 20)]
    ids = [t["task_id"] for page in pages for t in page["tasks"]]
    assert ids == [f"t{n:04d}" for n in reversed(range(25))]
    assert [page["total"] for page in pages] == [25, 25, 25]
    assert [page["next_token"] is None for page in pages] == [False, False, True]


def test_a_skip_past_the_last_match_answers_an_empty_page_with_the_true_total(api):
    seed(api, 12)
    page = listed(api, skip=5_000, limit=10)
    assert (page["tasks"], page["total"], page["next_token"]) == ([], 12, None)
    filtered = listed(api, skip=5, limit=10, task_source_ids="s0,s1")
    assert filtered["total"] == 8
    assert len(filtered["tasks"]) == 3


def test_skip_counts_from_a_cursor(api):
    seed(api, 30)
    first = listed(api, limit=10)
    after = listed(api, limit=5, skip=5, next_token=first["next_token"])
    assert [t["task_id"] for t in after["tasks"]] == [f"t{n:04d}" for n in range(14, 9, -1)]
    assert after["total"] == 30
