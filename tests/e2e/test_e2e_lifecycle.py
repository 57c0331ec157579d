"""Bulk cancel and bulk regenerate over HTTP on the running stack: the reference's answers, and
what processing does afterwards (a cancelled task is never completed; a regenerated one is
processed again as attempt 2, with a result of its own)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.support import (
    PROCESS_SECONDS,
    CliRunner,
    MediaServer,
    create,
    get_tasks,
    messages,
    processing_paused,
    queues_drained,
    result_file,
    task_body,
    wait_for_status,
    wait_until,
)
from tests.support.media import logo_area, logo_pixels, picture_at, probe_mp4

pytestmark = pytest.mark.e2e

ACCOUNT, OTHER = "lifecycle", "lifecycle_other"


@pytest.fixture(scope="module")
def keys(create_api_key: Callable[[str], str]) -> dict[str, dict[str, str]]:
    return {account: {"X-API-Key": create_api_key(account)} for account in (ACCOUNT, OTHER)}


@pytest.fixture(scope="module")
def headers(keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return keys[ACCOUNT]


@pytest.fixture(scope="module")
def foreign_id(client: httpx.Client, keys: dict[str, dict[str, str]]) -> str:
    """A task id that exists, in another account."""
    create(client, keys[OTHER], {"task_id": "foreign_001", "task_type": "documentation"})
    return "foreign_001"


def test_bulk_cancel_answers_per_task_and_a_cancelled_task_is_never_completed(
    client: httpx.Client,
    headers: dict[str, str],
    operator_headers: dict[str, str],
    foreign_id: str,
    run_cli: CliRunner,
) -> None:
    # Given a COMPLETED task,
    create(client, headers, task_body("cancel_done", "documentation"))
    wait_for_status(client, headers, ["cancel_done"])
    with processing_paused(run_cli):
        # a QUEUED one (its message waits on the queue) and a PENDING one (no request_data)
        queued, pending = create(
            client,
            headers,
            task_body("cancel_queued", "quiz", "urgent"),
            {"task_id": "cancel_pending", "task_type": "video"},
        )
        assert (queued["status"], pending["status"]) == ("QUEUED", "PENDING")

        # When they are cancelled together with another account's id and a missing one
        response = client.post(
            "/api/tasks/bulk-cancel",
            headers=headers,
            json={
                "task_ids": ["cancel_queued", "cancel_pending", "cancel_done", foreign_id, "cancel_missing"],
                "reason": "Project requirements changed",
            },
        )

    # Then the answer is the reference's, task by task
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "message": "Cancelled 2 tasks, 1 failures",
        "cancelled_count": 2,
        "failed_count": 1,
        "not_found_count": 2,
        "not_found_ids": [foreign_id, "cancel_missing"],
        "total_requested": 5,
        "cancellation_reason": "Project requirements changed",
        "details": [
            {
                "task_id": "cancel_queued",
                "status": "cancelled",
                "reason": "Successfully cancelled: Project requirements changed",
                "queue_result": "Task cancelled from queue",
            },
            {
                "task_id": "cancel_pending",
                "status": "cancelled",
                "reason": "Successfully cancelled: Project requirements changed",
                "queue_result": "Not in queue",
            },
            {"task_id": "cancel_done", "status": "skipped", "reason": "Task already in final state: COMPLETED"},
        ],
    }
    # And once processing resumed and the queued message was consumed, the task is still CANCELLED
    wait_until(lambda: queues_drained(client, operator_headers), PROCESS_SECONDS, "the task queues to drain")
    tasks = get_tasks(client, headers, ["cancel_queued", "cancel_pending", "cancel_done"])
    for task_id in ("cancel_queued", "cancel_pending"):
        task = tasks[task_id]
        assert task["status"] == "CANCELLED"
        assert "Task completed" not in messages(task)
        assert messages(task)[-1] == "Task cancelled: Project requirements changed"
        assert task["result_url"] is None
        assert task["error_details"]["cancelled"] is True
        assert task["error_details"]["reason"] == "Project requirements changed"
    assert tasks["cancel_queued"]["error_details"]["previous_status"] == "QUEUED"
    assert tasks["cancel_done"]["status"] == "COMPLETED"
    # The other account's task was not touched.
    assert client.get(f"/api/tasks/{foreign_id}", headers=headers).status_code == 404


def test_bulk_regenerate_processes_attempt_2_with_a_new_result(
    client: httpx.Client,
    headers: dict[str, str],
    foreign_id: str,
    run_cli: CliRunner,
    stack: Any,
    media_server: MediaServer,
) -> None:
    logo = media_server.url("logo.png")  # fetched by the stack: https://example.com is not, offline
    # Given a COMPLETED video task with its result
    create(client, headers, task_body("regen_done", "video", "high"))
    first = wait_for_status(client, headers, ["regen_done"])["regen_done"]
    first_path = httpx.URL(first["result_url"]).path
    assert "/attempt-1/" in first_path
    with processing_paused(run_cli):
        # and a QUEUED one and one without request_data
        create(client, headers, task_body("regen_queued", "quiz"), {"task_id": "regen_no_data", "task_type": "quiz"})

        # When they are regenerated (with a video override) together with another account's id
        response = client.post(
            "/api/tasks/bulk-regenerate",
            headers=headers,
            json={
                "task_ids": ["regen_done", "regen_queued", "regen_no_data", foreign_id],
                "logo_url": logo,
            },
        )
        regenerating = client.get("/api/tasks/regen_done", headers=headers).json()

    # Then the answer is the reference's, task by task
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": False,
        "message": "Regenerated 1 tasks, 2 failures",
        "regenerated_count": 1,
        "failed_count": 2,
        "not_found_count": 1,
        "not_found_ids": [foreign_id],
        "total_requested": 4,
        "details": [
            {"task_id": "regen_done", "status": "regenerated", "reason": "Successfully queued for regeneration"},
            {"task_id": "regen_queued", "status": "skipped", "reason": "Task is already in the queue"},
            {"task_id": "regen_no_data", "status": "failed", "reason": "Task has no request_data to regenerate"},
        ],
    }
    # and the regenerated task was queued again as attempt 2, reset (reset_to_pending defaults to true)
    assert (regenerating["status"], regenerating["attempt"]) == ("QUEUED", 2)
    assert (regenerating["progress"], regenerating["result_url"]) == (0, None)
    assert regenerating["request_data"]["logo_url"] == logo
    # And processing completes attempt 2 with a result of its own
    done = wait_for_status(client, headers, ["regen_done", "regen_queued"])
    again = done["regen_done"]
    assert again["attempt"] == 2
    assert again["progress"] == 100
    events = messages(again)
    assert events.count("Task completed") == 2
    assert "Task regenerated (attempt 2)" in events
    assert events.index("Task regenerated (attempt 2)") < len(events) - 1 - events[::-1].index("Task completed")
    second_path = httpx.URL(again["result_url"]).path
    assert "/attempt-2/" in second_path
    assert second_path != first_path
    assert second_path.endswith("/video.mp4")
    manifest = json.loads(result_file(stack.aws_endpoint, again["result_url"], "manifest.json"))
    assert manifest["logo_url"] == logo
    # and the new video shows the logo in its corner, where the first attempt's had nothing of its colour.
    video = httpx.get(again["result_url"], timeout=30)
    assert video.status_code == 200
    corner, _ = logo_pixels(picture_at(video.content, 1.0))
    assert corner > 0.5 * logo_area(probe_mp4(video.content).height)
    assert logo_pixels(picture_at(httpx.get(first["result_url"], timeout=30).content, 1.0))[0] == 0
    # The first attempt's result is still there, unchanged.
    assert httpx.get(first["result_url"], timeout=10).status_code == 200
    assert get_tasks(client, headers, ["regen_no_data"])["regen_no_data"]["status"] == "PENDING"


@pytest.mark.parametrize(
    ("path", "verb"), [("/api/tasks/bulk-cancel", "cancel"), ("/api/tasks/bulk-regenerate", "regenerate")]
)
def test_bulk_limits_answer_the_reference_errors(
    client: httpx.Client, headers: dict[str, str], path: str, verb: str
) -> None:
    empty = client.post(path, headers=headers, json={"task_ids": []})
    too_many = client.post(path, headers=headers, json={"task_ids": [f"t{n}" for n in range(101)]})

    assert empty.status_code == 400
    assert empty.json() == {"detail": "task_ids list cannot be empty"}
    assert too_many.status_code == 413
    assert too_many.json() == {"detail": f"Cannot {verb} more than 100 tasks at once"}
