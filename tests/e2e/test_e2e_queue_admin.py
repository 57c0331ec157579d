"""POST /api/tasks/queue/process-pending and /api/tasks/requeue-pending on the running stack, and
the `taskapi queue` commands an operator uses."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.support import (
    SESSION_REQUEUE_AFTER_SECONDS,
    CliRunner,
    count,
    create,
    eventually,
    messages,
    processing_paused,
    queue_status,
    task_body,
    wait_for_status,
)

pytestmark = pytest.mark.e2e

NOT_QUEUEABLE = "Task has no request_data; it is stored, not queued"


@pytest.fixture(scope="module")
def key_for(create_api_key: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    def headers(account: str) -> dict[str, str]:
        return {"X-API-Key": create_api_key(account)}

    return headers


def test_process_pending_skips_tasks_without_request_data(
    client: httpx.Client, key_for: Callable[[str], dict[str, str]]
) -> None:
    headers = key_for("admin_pending")
    create(client, headers, {"task_id": "stored_only", "task_type": "documentation"})
    # (its total_pending is the account's counter, seconds behind the tasks)
    eventually(lambda: count(client, headers, status="PENDING"), 1, what="PENDING count")

    response = client.post("/api/tasks/queue/process-pending", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "message": "Queued 0 tasks, 0 failures",
        "queued_count": 0,
        "failed_count": 0,
        "total_pending": 1,
        "details": [{"task_id": "stored_only", "status": "skipped", "reason": NOT_QUEUEABLE}],
    }
    assert client.get("/api/tasks/stored_only", headers=headers).json()["status"] == "PENDING"


def test_requeue_pending_resends_queued_tasks_presumed_lost_and_each_completes_once(
    client: httpx.Client,
    key_for: Callable[[str], dict[str, str]],
    operator_headers: dict[str, str],
    run_cli: CliRunner,
) -> None:
    headers = key_for("admin_requeue")
    create(client, headers, {"task_id": "requeue_stored", "task_type": "quiz"})
    with processing_paused(run_cli):
        # Given QUEUED tasks older than the stack's requeue threshold (its message "lost")
        create(client, headers, task_body("requeue_1", "quiz"), task_body("requeue_2", "animated_lesson", "high"))
        time.sleep(SESSION_REQUEUE_AFTER_SECONDS + 0.5)
        eventually(lambda: count(client, headers, status="PENDING"), 1, what="PENDING count")

        # When requeue-pending runs
        response = client.post("/api/tasks/requeue-pending", headers=headers)
        depth = queue_status(client, operator_headers)["overall_queue_status"]["by_priority"]

    # Then it answers what it did, task by task
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {key: answer[key] for key in answer if key != "details"} == {
        "success": True,
        "message": "Queued 0 pending and re-sent 2 queued tasks, 0 failures",
        "queued_count": 0,
        "requeued_count": 2,
        "failed_count": 0,
        "total_pending": 1,
    }
    assert sorted(answer["details"], key=lambda d: d["task_id"]) == [
        {"task_id": "requeue_1", "status": "requeued", "reason": "Message presumed lost; sent again"},
        {"task_id": "requeue_2", "status": "requeued", "reason": "Message presumed lost; sent again"},
        {"task_id": "requeue_stored", "status": "skipped", "reason": NOT_QUEUEABLE},
    ]
    # and each task now has two messages waiting
    assert depth["normal"] >= 2
    assert depth["high"] >= 2
    # And after processing resumes each task completes exactly once: the second message of each
    # finds it claimed or done and is acknowledged without work.
    done = wait_for_status(client, headers, ["requeue_1", "requeue_2"])
    for task in done.values():
        assert messages(task).count("Task completed") == 1
        assert messages(task).count("Task message sent again (presumed lost)") == 1
        assert sum(event.startswith("Processing started") for event in messages(task)) == 1


def test_queue_commands_report_and_switch_processing(
    client: httpx.Client, key_for: Callable[[str], dict[str, str]], run_cli: CliRunner
) -> None:
    headers = key_for("admin_cli")

    status = run_cli("queue", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == "Processing is active."
    assert status.stdout.count(": Enabled (arn:aws:sqs:") == 4

    try:
        paused = run_cli("queue", "pause")
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.splitlines()[0] == "Processing was active; it is paused now."
        assert paused.stdout.count(": Disabled (arn:aws:sqs:") == 4
        assert queue_status(client, headers)["queue_processing_active"] is False
        # Pausing twice is harmless.
        again = run_cli("queue", "pause")
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0] == "Processing was paused; it is paused now."
        assert run_cli("queue", "status").stdout.splitlines()[0] == "Processing is paused."
    finally:
        resumed = run_cli("queue", "resume")

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "Processing was paused; it is active now."
    assert queue_status(client, headers)["queue_processing_active"] is True


@pytest.mark.parametrize("action", ["pause", "resume", "status"])
def test_queue_commands_fail_with_a_message_when_there_is_nothing_to_control(run_cli: CliRunner, action: str) -> None:
    # Mapping states under a prefix the stack never wrote: as if no stack ran at this endpoint.
    result = run_cli("queue", action, env={"TASKAPI_LOCAL_MAPPINGS_PARAMETER_PREFIX": "/no-stack-here"})

    assert result.returncode == 1
    assert "no event source mappings" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_queue_commands_fail_with_a_message_when_aws_is_unreachable(run_cli: CliRunner) -> None:
    result = run_cli("queue", "pause", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})

    assert result.returncode == 1
    assert "cannot pause processing" in result.stderr
    assert "Traceback" not in result.stderr


def test_queue_without_an_action_is_a_usage_error(run_cli: CliRunner) -> None:
    result = run_cli("queue")

    assert result.returncode == 2
    assert "usage:" in result.stderr
