"""Tasks created over HTTP are processed by the local stack's pollers to COMPLETED, and their
result_url downloads the artifact from the embedded S3. Pausing and restarting processing, with
the CLI and with the queue endpoints, and the queue status answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.support import (
    PAUSE_SETTLE_SECONDS,
    REQUEST_DATA,
    CliRunner,
    cli_ok,
    create,
    eventually,
    get_tasks,
    messages,
    queue_status,
    task_body,
    wait_for_status,
)
from tests.support.media import probe_mp4

pytestmark = pytest.mark.e2e


def _quiz(body: bytes) -> None:
    quiz = json.loads(body)
    assert len(quiz["questions"]) == REQUEST_DATA["quiz"]["num_questions"]
    for question in quiz["questions"]:
        assert question["question"]
        assert "answer" in question


def _video(body: bytes) -> None:
    video = probe_mp4(body)
    width, height = map(int, REQUEST_DATA["video"]["resolution"].split("*"))
    assert (video.video_codec, video.audio_codec) == ("h264", "aac")
    assert (video.width, video.height) == (width, height)
    assert video.audio_rms > 0.01


def _documentation(body: bytes) -> None:
    text = body.decode()
    assert text.startswith("# ")
    assert "\n## " in text


def _animated_lesson(body: bytes) -> None:
    timeline = json.loads(body)
    assert timeline["scene_count"] == len(timeline["scenes"]) > 0
    assert timeline["total_duration_ms"] > 0


# task type -> (priority it is sent with, its primary file, what proves the artifact is real)
ARTIFACTS: dict[str, tuple[str, str, Callable[[bytes], None]]] = {
    "quiz": ("urgent", "quiz.json", _quiz),
    "video": ("high", "video.mp4", _video),
    "documentation": ("normal", "document.md", _documentation),
    "animated_lesson": ("low", "timeline.json", _animated_lesson),
}


@pytest.fixture(scope="module")
def headers(create_api_key: Callable[[str], str]) -> dict[str, str]:
    return {"X-API-Key": create_api_key("processing")}


@pytest.fixture(scope="module")
def completed(client: httpx.Client, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One task of each type, each on its own priority's queue, processed to COMPLETED."""
    tasks = [task_body(f"each_{kind}", kind, priority) for kind, (priority, _, _) in ARTIFACTS.items()]
    create(client, headers, *tasks)
    return wait_for_status(client, headers, [t["task_id"] for t in tasks])


@pytest.mark.parametrize("kind", list(ARTIFACTS))
def test_a_task_of_each_type_completes_with_a_result_url_that_downloads(
    client: httpx.Client, completed: dict[str, dict[str, Any]], kind: str
) -> None:
    priority, primary, check = ARTIFACTS[kind]
    task = completed[f"each_{kind}"]

    assert task["status"] == "COMPLETED"
    assert task["priority"] == priority
    assert task["progress"] == 100
    assert task["progress_message"] is None
    assert task["error_message"] is None
    assert task["result_summary"]
    events = messages(task)
    assert events[0] == "Task pending"
    assert events[-1] == "Task completed"
    assert events.count("Task completed") == 1
    assert any(e.startswith("Processing started (try 1 of ") for e in events)
    # Then the presigned URL (made at read time) downloads the artifact from the embedded S3.
    url = task["result_url"]
    path = httpx.URL(url).path
    assert url.startswith("http://127.0.0.1:")
    assert path.startswith(f"/taskapi-local-resultsbucket/results/processing/each_{kind}/attempt-1/")
    assert path.endswith(f"/{primary}")
    download = httpx.get(url, timeout=10)
    assert download.status_code == 200, download.text
    check(download.content)


def test_without_request_data_a_task_is_stored_and_stays_pending(
    client: httpx.Client, headers: dict[str, str], completed: dict[str, dict[str, Any]]
) -> None:
    (task,) = create(client, headers, {"task_id": "no_data", "task_type": "documentation"})

    time.sleep(2 * PAUSE_SETTLE_SECONDS)  # long enough for a poller to have taken a message

    assert task["status"] == "PENDING"
    assert messages(task) == ["Task pending"]
    again = client.get("/api/tasks/no_data", headers=headers).json()
    assert again["status"] == "PENDING"
    assert again == task


def test_queue_status_answers_the_reference_shape_to_a_tenant_about_its_own_tasks(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    status = queue_status(client, headers)

    assert status["success"] is True
    assert status["queue_processing_active"] is True
    overall = status["overall_queue_status"]
    for key in ("by_priority", "in_flight_by_priority"):
        assert set(overall[key]) == {"urgent", "high", "normal", "low"}
    assert overall["total_queued"] == sum(overall["by_priority"].values()) == status["account_task_counts"]["queued"]
    assert overall["processing"] == sum(overall["in_flight_by_priority"].values())
    assert (overall["dead_letter_by_priority"], overall["dead_letter_total"]) == (None, None)
    mappings = status["event_source_mappings"]
    assert sorted(m["priority"] for m in mappings) == ["high", "low", "normal", "urgent"]
    assert all(set(m) == {"priority", "state", "enabled"} for m in mappings)
    assert "arn:" not in json.dumps(status)
    assert "127.0.0.1" not in json.dumps(status)


def test_queue_status_shows_an_operator_the_real_queues(client: httpx.Client, operator_headers: dict[str, str]) -> None:
    status = queue_status(client, operator_headers)

    assert status["success"] is True
    assert status["queue_processing_active"] is True
    overall = status["overall_queue_status"]
    for key in ("by_priority", "in_flight_by_priority", "dead_letter_by_priority"):
        assert set(overall[key]) == {"urgent", "high", "normal", "low"}
        assert all(isinstance(value, int) and value >= 0 for value in overall[key].values())
    assert overall["total_queued"] == sum(overall["by_priority"].values())
    assert overall["processing"] == sum(overall["in_flight_by_priority"].values())
    assert overall["dead_letter_total"] == sum(overall["dead_letter_by_priority"].values())
    assert set(status["account_task_counts"]) == {"pending", "queued", "processing"}
    assert isinstance(status["pending_task_ids"], list)
    assert isinstance(status["queued_task_ids"], list)
    mappings = status["event_source_mappings"]
    assert sorted(m["id"].rsplit("/", 1)[-1] for m in mappings) == ["High", "Low", "Normal", "Urgent"]
    assert all(m["enabled"] and m["state"] == "Enabled" for m in mappings)
    assert all(m["source"].startswith("arn:aws:sqs:us-east-1:") for m in mappings)


def test_paused_by_the_cli_tasks_stay_queued_and_restart_over_http_processes_them(
    client: httpx.Client, headers: dict[str, str], operator_headers: dict[str, str], run_cli: CliRunner
) -> None:
    # Given processing paused by an operator
    paused = cli_ok(run_cli, "queue", "pause")
    try:
        assert "it is paused now" in paused
        time.sleep(PAUSE_SETTLE_SECONDS)
        status = queue_status(client, headers)
        assert status["queue_processing_active"] is False
        assert not any(m["enabled"] for m in status["event_source_mappings"])

        # When tasks are created, they are queued and stay QUEUED
        created = create(
            client,
            headers,
            task_body("paused_1", "quiz", "urgent"),
            task_body("paused_2", "documentation", "low"),
        )
        assert [t["status"] for t in created] == ["QUEUED", "QUEUED"]
        assert messages(created[0]) == ["Task pending", "Task added to quiz processing queue"]
        time.sleep(2 * PAUSE_SETTLE_SECONDS)
        still = get_tasks(client, headers, ["paused_1", "paused_2"])
        assert [still[t["task_id"]] for t in created] == created

        # (the account's figures come from its counters, which catch up with the tasks in seconds)
        def queued_figures() -> tuple[int, bool, bool]:
            answer = queue_status(client, headers)
            by_priority = answer["overall_queue_status"]["by_priority"]
            return answer["account_task_counts"]["queued"], by_priority["urgent"] >= 1, by_priority["low"] >= 1

        eventually(queued_figures, (2, True, True), what="the account's queued figures")
        status = queue_status(client, headers)
        assert status["account_task_counts"]["queued"] == 2
        assert set(status["queued_task_ids"]) == {"paused_1", "paused_2"}
        assert status["overall_queue_status"]["by_priority"]["urgent"] >= 1
        assert status["overall_queue_status"]["by_priority"]["low"] >= 1

        # And a tenant cannot turn processing back on for everyone
        refused = client.post("/api/tasks/queue/restart", headers=headers)
        assert (refused.status_code, refused.json()) == (403, {"detail": "Operator role required"})
        assert queue_status(client, headers)["queue_processing_active"] is False
        # but the restart endpoint turns it back on for an operator
        restart = client.post("/api/tasks/queue/restart", headers=operator_headers)
    finally:
        cli_ok(run_cli, "queue", "resume")  # idempotent: a no-op when the restart did it

    assert restart.status_code == 200, restart.text
    assert restart.json() == {
        "success": True,
        "message": "Queue processing restarted",
        "was_processing_before": False,
        "is_processing_now": True,
    }
    # Then the queued tasks are processed
    done = wait_for_status(client, headers, ["paused_1", "paused_2"])
    assert all(messages(t).count("Task completed") == 1 for t in done.values())
    assert queue_status(client, headers)["queue_processing_active"] is True
    again = client.post("/api/tasks/queue/restart", headers=operator_headers).json()
    assert (again["was_processing_before"], again["is_processing_now"]) == (True, True)
