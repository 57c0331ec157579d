"""Fault injection on a stack of its own: SQS refuses 20% of SendMessageBatch entries (the local
stack's TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE, seeded). Refused tasks stay PENDING and say why;
process-pending and the reconciler (every 2 s here, for tasks PENDING over 3 s) send them again.

The full run: 1,000 tasks created over HTTP end COMPLETED exactly once — one "Task completed"
event each, one result each, and results for attempt 1 only."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.support import (
    CliRunner,
    aws_client,
    count,
    create,
    eventually,
    get_tasks,
    messages,
    processing_paused,
    queue_status,
    task_body,
    wait_for_status,
    wait_until,
)

pytestmark = pytest.mark.e2e

REFUSE_RATE = 0.2
FULL_RUN_TASKS = 1000
FULL_RUN_SECONDS = 240
TYPES = ("quiz", "documentation", "animated_lesson", "video")
PRIORITIES = ("urgent", "high", "normal", "low")
PRIMARY = {
    "quiz": "quiz.json",
    "documentation": "document.md",
    "animated_lesson": "timeline.json",
    "video": "video.mp4",
}
REFUSED_NOTE = "Not queued yet (SQS refused the message: InternalError"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, stack_tools: Any) -> Iterator[Any]:
    tools = stack_tools
    aws_port = tools.free_port()
    env = tools.clean_environment(
        TASKAPI_PORT=str(tools.free_port()),
        TASKAPI_AWS_PORT=str(aws_port),
        TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE=str(REFUSE_RATE),
        TASKAPI_LOCAL_FAULT_SEED="20",
        TASKAPI_LOCAL_SCHEDULE_SECONDS="2",
        TASKAPI_RECONCILE_PENDING_AFTER_SECONDS="3",
    )
    running = tools.start_stack(tmp_path_factory.mktemp("faulty_stack"), env)
    yield running
    code = tools.stop_stack(running.process)
    assert code == 0, f"the faulty stack exited with {code} on SIGTERM:\n{running.output()}"
    assert not tools.port_is_listening(aws_port)


@pytest.fixture(scope="module")
def faulty_client(faulty: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=faulty.api_url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def faulty_cli(faulty: Any, stack_tools: Any) -> CliRunner:
    runner: CliRunner = stack_tools.cli_runner(stack_tools.cli_environment_for(faulty.aws_endpoint))
    return runner


def _key(faulty_cli: CliRunner, account: str) -> dict[str, str]:
    created = faulty_cli("keys", "create", "--account", account)
    assert created.returncode == 0, created.stderr
    return {"X-API-Key": created.stdout.strip().splitlines()[-1]}


def _body(task_id: str, index: int) -> dict[str, Any]:
    return task_body(task_id, TYPES[index % len(TYPES)], PRIORITIES[(index // len(TYPES)) % len(PRIORITIES)])


def test_the_banner_announces_the_fault(faulty: Any) -> None:
    assert f"Fault injection: SQS refuses {REFUSE_RATE:.0%} of SendMessageBatch entries" in faulty.output()


def test_process_pending_queues_refused_tasks_and_reports_those_refused_again(
    faulty_client: httpx.Client, faulty_cli: CliRunner
) -> None:
    headers = _key(faulty_cli, "refusals")
    with processing_paused(faulty_cli):
        # Given tasks some of which SQS refused: they answer PENDING and say why
        created = create(faulty_client, headers, *[_body(f"refused_{n:02d}", n) for n in range(40)])
        refused = [t for t in created if t["status"] == "PENDING"]
        assert refused, "SQS refused no entry of 40: the fault injection is not active"
        assert all(t["status"] == "QUEUED" for t in created if t not in refused)
        for task in refused:
            assert messages(task)[-1].startswith(REFUSED_NOTE)

        # When process-pending runs (well before the reconciler would consider them), once the
        # account's counters (which answer its total_pending, seconds behind the tasks) have caught up
        eventually(lambda: count(faulty_client, headers, status="PENDING"), len(refused), what="PENDING count")
        response = faulty_client.post("/api/tasks/queue/process-pending", headers=headers)

        # Then each PENDING task was queued, or refused again and reported
        assert response.status_code == 200, response.text
        answer = response.json()
        statuses = Counter(detail["status"] for detail in answer["details"])
        assert answer["total_pending"] == len(refused)
        assert {d["task_id"] for d in answer["details"]} == {t["task_id"] for t in refused}
        assert set(statuses) <= {"queued", "failed"}
        assert (answer["queued_count"], answer["failed_count"]) == (statuses["queued"], statuses["failed"])
        assert answer["message"] == f"Queued {statuses['queued']} tasks, {statuses['failed']} failures"
        assert answer["success"] is (statuses["failed"] == 0)
        now = get_tasks(faulty_client, headers, [t["task_id"] for t in refused])
        for detail in answer["details"]:
            if detail["status"] == "queued":
                assert detail["reason"] == "Successfully added to processing queue"
                assert now[detail["task_id"]]["status"] == "QUEUED"
            else:
                assert detail["reason"].startswith("SQS refused the message: InternalError")
                assert now[detail["task_id"]]["status"] == "PENDING"

    # And once processing resumes, every task completes (the reconciler sends what is left)
    done = wait_for_status(faulty_client, headers, [t["task_id"] for t in created])
    assert all(messages(task).count("Task completed") == 1 for task in done.values())


def test_a_full_run_of_1000_tasks_with_refusals_completes_every_task_exactly_once(
    faulty: Any, faulty_client: httpx.Client, faulty_cli: CliRunner
) -> None:
    headers = _key(faulty_cli, "full_run")
    ids = [f"run_{n:04d}" for n in range(FULL_RUN_TASKS)]
    started = time.monotonic()

    # Given 1,000 tasks created over HTTP, 100 per request, while SQS refuses 20% of the entries
    answered: list[dict[str, Any]] = []
    for start in range(0, FULL_RUN_TASKS, 100):
        answered += create(faulty_client, headers, *[_body(ids[n], n) for n in range(start, start + 100)])
    refused = [t for t in answered if t["status"] == "PENDING"]
    assert 0.1 * FULL_RUN_TASKS < len(refused) < 0.3 * FULL_RUN_TASKS, f"{len(refused)} refused"
    assert all(messages(t)[-1].startswith(REFUSED_NOTE) for t in refused)

    # When the stack runs: the pollers process, the reconciler re-sends what was refused
    def completed() -> bool:
        counted = faulty_client.get("/api/tasks/count/total", headers=headers, params={"status": "COMPLETED"})
        return bool(counted.json()["total"] == FULL_RUN_TASKS)

    wait_until(completed, FULL_RUN_SECONDS, f"{FULL_RUN_TASKS} COMPLETED tasks", interval=2)
    elapsed = time.monotonic() - started

    # Then every task is COMPLETED exactly once
    page = faulty_client.get("/api/tasks", headers=headers, params={"limit": 1000})
    assert page.status_code == 200, page.text
    tasks = {t["task_id"]: t for t in page.json()["tasks"]}
    assert sorted(tasks) == ids
    for task in tasks.values():
        events = messages(task)
        assert task["status"] == "COMPLETED", task["task_id"]
        assert (task["attempt"], task["progress"]) == (1, 100)
        assert events.count("Task completed") == 1, (task["task_id"], events)
        assert events[-1] == "Task completed"
        assert "/attempt-1/" in httpx.URL(task["result_url"]).path
    # the refused ones after being sent again
    for task in refused:
        events = messages(tasks[task["task_id"]])
        assert any(e.startswith(REFUSED_NOTE) for e in events)
        assert any(e.startswith("Processing started") for e in events)
    # with one result each, of attempt 1 only
    s3 = aws_client("s3", faulty.aws_endpoint)
    primaries: Counter[str] = Counter()
    for listing in s3.get_paginator("list_objects_v2").paginate(
        Bucket="taskapi-local-resultsbucket", Prefix="results/full_run/"
    ):
        for item in listing.get("Contents", []):
            _, _, task_id, attempt, *rest = item["Key"].split("/")
            assert attempt == "attempt-1", item["Key"]
            if rest[-1] == PRIMARY[tasks[task_id]["task_type"]]:
                primaries[task_id] += 1
    assert primaries == Counter(dict.fromkeys(ids, 1))
    # and nothing is left on the queues or dead-lettered.
    overall = queue_status(faulty_client, {"X-API-Key": faulty.operator_key})["overall_queue_status"]
    assert overall["dead_letter_total"] == 0
    eventually(
        lambda: queue_status(faulty_client, headers)["account_task_counts"],
        {"pending": 0, "queued": 0, "processing": 0},
        what="the account's task counts",
    )
    print(f"\nfull run: {FULL_RUN_TASKS} tasks, {len(refused)} refused at creation, all COMPLETED in {elapsed:.1f} s")
