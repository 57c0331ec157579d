"""POST /api/tasks/bulk over HTTP: the API reference's own examples, idempotency and limits.
Tasks with request_data answer QUEUED and are then processed by the stack; to look at the answer
before a worker claims the task, a test pauses processing first."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.support import (
    PROMPT,
    CliRunner,
    MediaServer,
    messages,
    processing_paused,
    result_file,
    settled_count,
    wait_for_status,
)
from tests.support.media import probe_mp4

pytestmark = pytest.mark.e2e

# The request body of "Create Bulk Tasks" in spec/task-api.md, verbatim.
SPEC_BULK_BODY: dict[str, Any] = {
    "tasks": [
        {
            "task_id": "task_001",
            "task_type": "video",
            "priority": "high",
            "request_data": {
                "story_prompt": (
                    "Create an educational video about basic mathematics concepts including addition and subtraction"
                ),
                "segments": 3,
                "language": "English",
                "voice_name": "zh-CN-XiaoxiaoNeural",
                "voice_rate": 1.0,
                "image_style": "realistic",
                "resolution": "1920*1080",
                "include_subtitles": True,
                "theme": "modern",
            },
            "task_source_name": "Course Creator",
            "task_source_id": "course_123",
            "task_source_group_id": "batch_456",
        },
        {
            "task_type": "quiz",
            "priority": "normal",
            "request_data": {
                "story_prompt": (
                    "Once upon a time in ancient Greece, a young mathematician named Pythagoras discovered a "
                    "fundamental theorem about right triangles that would revolutionize geometry forever."
                ),
                "difficulty": "medium",
                "num_questions": 10,
                "language": "English",
            },
            "task_source_name": "Course Creator",
            "task_source_id": "course_123",
            "task_source_group_id": "batch_456",
        },
        {
            "task_type": "video",
            "priority": "low",
            "request_data": {
                "story_prompt": "Create a comprehensive video about history",
                "segments": "maximum",
                "language": "English",
            },
            "task_source_name": "Auto Generator",
            "task_source_id": "system_001",
            "task_source_group_id": "batch_456",
        },
    ],
    "logo_url": "https://example.com/logo.png",
    "intro_video_url": "https://example.com/intro.mp4",
    "outro_video_url": "https://example.com/outro.mp4",
}
SHARED_VIDEO_SETTINGS = ("logo_url", "intro_video_url", "outro_video_url")
SERVED = {"logo_url": "logo.png", "intro_video_url": "intro.mp4", "outro_video_url": "outro.mp4"}


@pytest.fixture(scope="module")
def spec_body(media_server: MediaServer) -> dict[str, Any]:
    """The spec's body with its example.com branding URLs pointing at the test's media server:
    processing fetches them, and example.com cannot be fetched offline (nor does it serve them)."""
    body = copy.deepcopy(SPEC_BULK_BODY)
    body.update({setting: media_server.url(name) for setting, name in SERVED.items()})
    return body


# The bodies of the "API Authentication" examples: request_data without story_prompt/segments.
AUTH_EXAMPLE_BODY: dict[str, Any] = {
    "tasks": [
        {
            "task_id": "task_001",
            "task_type": "video",
            "priority": "high",
            "request_data": {"content": "Lesson about mathematics"},
        }
    ]
}


def _quiz(task_id: str | None, prompt: str = PROMPT) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_type": "quiz",
        "request_data": {"story_prompt": prompt, "difficulty": "easy"},
    }
    if task_id is not None:
        task["task_id"] = task_id
    return task


def _count(client: httpx.Client, headers: dict[str, str], **params: str) -> int:
    response = client.get("/api/tasks/count/total", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def test_spec_bulk_example_creates_the_three_tasks_in_request_order(
    client: httpx.Client, stack: Any, run_cli: CliRunner, spec_body: dict[str, Any], media_server: MediaServer
) -> None:
    headers = {"X-API-Key": stack.api_key}
    fetched_before = {name: media_server.fetches(name) for name in SERVED.values()}

    with processing_paused(run_cli):
        response = client.post("/api/tasks/bulk", headers=headers, json=spec_body)
        # While processing is paused, each task reads back exactly as it was answered.
        assert response.status_code == 200, response.text
        stored = {t["task_id"]: client.get(f"/api/tasks/{t['task_id']}", headers=headers) for t in response.json()}

    assert response.status_code == 200, response.text
    tasks = response.json()
    assert [t["task_type"] for t in tasks] == ["video", "quiz", "video"]
    assert tasks[0]["task_id"] == "task_001"
    for generated in (tasks[1]["task_id"], tasks[2]["task_id"]):
        assert str(uuid.UUID(generated)) == generated
        assert uuid.UUID(generated).version == 4
    assert tasks[1]["task_id"] != tasks[2]["task_id"]
    for sent, task in zip(spec_body["tasks"], tasks, strict=True):
        assert task["account_id"] == stack.account_id
        assert task["user_id"] == f"api_key_user_{stack.account_id}"
        assert task["status"] == "QUEUED"
        assert task["progress"] == 0
        assert task["attempt"] == 1
        assert task["priority"] == sent["priority"]
        assert messages(task) == ["Task pending", f"Task added to {task['task_type']} processing queue"]
        assert task["result_url"] is None
        for field in ("task_source_name", "task_source_id", "task_source_group_id"):
            assert task[field] == sent[field]
        shared = {name: spec_body[name] for name in SHARED_VIDEO_SETTINGS}
        if task["task_type"] == "video":
            assert task["request_data"] == {**sent["request_data"], **shared}
        else:
            assert task["request_data"] == sent["request_data"]
            assert not set(SHARED_VIDEO_SETTINGS) & set(task["request_data"])
    assert tasks[0]["request_data"]["voice_rate"] == 1.0
    assert tasks[2]["request_data"]["segments"] == "maximum"

    # Then each task read back as created, by id and through the task_ids filter,
    for task in tasks:
        assert stored[task["task_id"]].status_code == 200
        assert stored[task["task_id"]].json() == task
    ids = ",".join(t["task_id"] for t in tasks)
    listed = client.get("/api/tasks", headers=headers, params={"task_ids": ids}).json()
    assert listed["total"] == 3
    assert {t["task_id"] for t in listed["tasks"]} == {t["task_id"] for t in tasks}
    # and once processing resumed, each is processed to COMPLETED with its result.
    done = wait_for_status(client, headers, [t["task_id"] for t in tasks])
    for task in tasks:
        finished = done[task["task_id"]]
        assert finished["progress"] == 100
        assert finished["request_data"] == task["request_data"]
        assert finished["result_url"]
        assert messages(finished)[-1] == "Task completed"
    assert done[tasks[0]["task_id"]]["result_summary"]["segments"] == 3
    # The first video is a 1920x1080 MP4 with the served intro and outro around its narration.
    first = done[tasks[0]["task_id"]]
    manifest = json.loads(result_file(stack.aws_endpoint, first["result_url"], "manifest.json"))
    video = probe_mp4(httpx.get(first["result_url"], timeout=30).content)
    assert (video.width, video.height) == (1920, 1080)
    assert video.duration_seconds - manifest["narration_duration_ms"] / 1000 == pytest.approx(2.0, abs=0.2)
    # Each video fetched the logo, the intro and the outro once.
    fetched = {name: media_server.fetches(name) - fetched_before[name] for name in SERVED.values()}
    assert fetched == dict.fromkeys(SERVED.values(), 2)


def test_shared_video_settings_do_not_override_a_tasks_own(
    client: httpx.Client, as_account: Callable, spec_body: dict[str, Any], media_server: MediaServer
) -> None:
    headers = as_account("idem")
    body = copy.deepcopy(spec_body)
    body["tasks"] = [body["tasks"][0]]
    body["tasks"][0]["task_id"] = "own_logo_001"
    own_logo = media_server.url("logo.png?own")
    body["tasks"][0]["request_data"]["logo_url"] = own_logo

    response = client.post("/api/tasks/bulk", headers=headers, json=body)

    assert response.status_code == 200, response.text
    request_data = response.json()[0]["request_data"]
    assert request_data["logo_url"] == own_logo
    assert request_data["intro_video_url"] == spec_body["intro_video_url"]


@pytest.mark.parametrize("credentials", ["bearer", "api_key"])
def test_auth_examples_bodies_are_rejected_naming_request_data_story_prompt(
    client: httpx.Client, stack: Any, credentials: str
) -> None:
    if credentials == "bearer":
        headers = {"Authorization": f"Bearer {stack.bearer_token}", "X-Account-ID": stack.account_id}
    else:
        headers = {"X-API-Key": stack.api_key}
    before = settled_count(client, headers)

    response = client.post("/api/tasks/bulk", headers=headers, json=AUTH_EXAMPLE_BODY)

    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    missing = {tuple(p["loc"][-2:]) for p in problems if p["type"] == "missing"}
    assert ("request_data", "story_prompt") in missing
    assert ("request_data", "segments") in missing
    assert all(p["loc"][:3] == ["body", "tasks", 0] for p in problems)
    assert settled_count(client, headers) == before  # a rejected bulk request writes nothing


def test_posting_an_existing_task_id_again_answers_the_stored_task_unchanged(
    client: httpx.Client, as_account: Callable
) -> None:
    headers = as_account("idem")
    body = {"tasks": [_quiz("idem_001", f"First version. {PROMPT}")]}
    first = client.post("/api/tasks/bulk", headers=headers, json=body)
    assert first.status_code == 200, first.text
    # Once it is COMPLETED it stays as it is; posting it again must neither change nor requeue it.
    stored = wait_for_status(client, headers, ["idem_001"])["idem_001"]
    stored.pop("result_url")  # presigned at read time: it differs on every read

    again = client.post(
        "/api/tasks/bulk",
        headers=headers,
        json={
            "tasks": [
                {**_quiz("idem_001", f"Second version. {PROMPT}"), "priority": "urgent", "task_source_id": "other"},
                _quiz("idem_002"),
            ]
        },
    )

    assert again.status_code == 200, again.text
    repeated, new = again.json()
    assert repeated.pop("result_url")
    assert repeated == stored
    assert new["task_id"] == "idem_002"
    assert new["created_at"] > stored["created_at"]
    read_back = client.get("/api/tasks/idem_001", headers=headers).json()
    read_back.pop("result_url")
    assert read_back == stored
    assert _count(client, headers, task_ids="idem_001,idem_002") == 2
    assert messages(stored).count("Task completed") == 1


def test_more_than_100_tasks_is_413_and_writes_nothing(client: httpx.Client, as_account: Callable) -> None:
    headers = as_account("limits")
    tasks = [_quiz(f"over_{index:03d}") for index in range(101)]
    before = settled_count(client, headers)

    response = client.post("/api/tasks/bulk", headers=headers, json={"tasks": tasks})

    assert response.status_code == 413
    assert response.json() == {"detail": "Cannot create more than 100 tasks at once"}
    assert settled_count(client, headers) == before
    assert _count(client, headers, task_ids=",".join(t["task_id"] for t in tasks[:100])) == 0


def test_exactly_100_tasks_are_created(client: httpx.Client, as_account: Callable) -> None:
    headers = as_account("limits")
    tasks = [_quiz(f"hundred_{index:03d}") for index in range(100)]

    response = client.post("/api/tasks/bulk", headers=headers, json={"tasks": tasks})

    assert response.status_code == 200, response.text
    assert [t["task_id"] for t in response.json()] == [t["task_id"] for t in tasks]
    assert _count(client, headers, task_ids=",".join(t["task_id"] for t in tasks)) == 100
