"""Helpers the e2e modules share (a conftest is not importable): waiting for tasks over HTTP,
pausing processing with the `taskapi` CLI, task bodies, AWS clients on the stack's endpoint."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import httpx

# The session stack's schedule period (the template says one minute) and its requeue-pending
# threshold (QUEUED tasks older than this count as lost; the service's default is 15 minutes).
SESSION_SCHEDULE_SECONDS = 3
SESSION_REQUEUE_AFTER_SECONDS = 2
SESSION_JWT_AUDIENCE = "e2e-course-tools"
"""The session stack's TASKAPI_JWT_AUDIENCE (the template says "taskapi")."""
PROCESS_SECONDS = 60
"""How long a handful of tasks may take from QUEUED to COMPLETED on a busy stack."""
PAUSE_SETTLE_SECONDS = 1.5
"""The pollers re-read their mapping state at least every second: after this, a paused mapping
delivers nothing sent from then on."""
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
PROMPT = (
    "Pythagoras discovered a theorem about right triangles. The square of the hypotenuse equals the "
    "sum of the squares of the other two sides. Greek mathematicians studied geometry for centuries."
)
VIDEO_PROMPT = "Pythagoras discovered a theorem about right triangles. The hypotenuse is the longest side."
"""Two short sentences: a video is as long as its narration, and the narration is most of its cost."""
REQUEST_DATA: dict[str, dict[str, Any]] = {
    "quiz": {"story_prompt": PROMPT, "difficulty": "easy", "num_questions": 4},
    # A quarter of the fault run's 1,000 tasks are videos, each narrated, rendered and encoded: small
    # and short (with PROMPT at 1280*720 that run took 187 s of its 240; at 320*180, 150-182 s).
    "video": {"story_prompt": VIDEO_PROMPT, "segments": 2, "include_subtitles": True, "resolution": "320*180"},
    "documentation": {"story_prompt": PROMPT},
    "animated_lesson": {"story_prompt": PROMPT},
}

COUNTER_SECONDS = 30
"""How long counts may lag the tasks on a busy stack: /api/tasks/count/total, the first list page's
`total`, a tenant's queue status and the unfinished-task ceiling are read from counters that the
stream consumer keeps (on the local stack a poller reads the table's stream every half second)."""

CliRunner = Callable[..., subprocess.CompletedProcess[str]]
T = TypeVar("T")


def task_body(task_id: str, task_type: str = "quiz", priority: str = "normal", **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "task_type": task_type,
        "priority": priority,
        "request_data": REQUEST_DATA[task_type],
        **extra,
    }


def create(client: httpx.Client, headers: dict[str, str], *tasks: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/api/tasks/bulk", headers=headers, json={"tasks": list(tasks)})
    assert response.status_code == 200, response.text
    created: list[dict[str, Any]] = response.json()
    return created


def get_tasks(client: httpx.Client, headers: dict[str, str], task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The tasks by id (100 ids per request, the filter's limit)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(task_ids), 100):
        chunk = task_ids[start : start + 100]
        response = client.get("/api/tasks", headers=headers, params={"task_ids": ",".join(chunk), "limit": 1000})
        assert response.status_code == 200, response.text
        found.update({task["task_id"]: task for task in response.json()["tasks"]})
    return found


def wait_for_status(
    client: httpx.Client,
    headers: dict[str, str],
    task_ids: Sequence[str],
    statuses: frozenset[str] | set[str] = frozenset({"COMPLETED"}),
    timeout: float = PROCESS_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Poll until every task is in one of the statuses; fail naming the ones that are not."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = get_tasks(client, headers, task_ids)
        waiting = {task_id: tasks[task_id]["status"] if task_id in tasks else None for task_id in task_ids}
        waiting = {task_id: status for task_id, status in waiting.items() if status not in statuses}
        if not waiting:
            return tasks
        stuck = {task_id: tasks[task_id] for task_id, status in waiting.items() if status in FINAL}
        if stuck:  # a final state other than the one awaited: it will not change any more
            task_id, task = next(iter(stuck.items()))
            raise AssertionError(
                f"{len(stuck)} tasks ended {task['status']}, not {sorted(statuses)}, e.g. {task_id}: "
                f"{task['error_message']} (events {messages(task)[-3:]})"
            )
        if time.monotonic() > deadline:
            sample = dict(list(waiting.items())[:10])
            raise AssertionError(f"{len(waiting)} tasks not in {sorted(statuses)} after {timeout} s: {sample}")
        time.sleep(0.5)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def eventually(fetch: Callable[[], T], expected: T, timeout: float = COUNTER_SECONDS, what: str = "the figures") -> T:
    """Poll until fetch() answers exactly `expected` (figures read from the counters catch up with
    the tasks within seconds); fail with the last answer. Only when is relaxed, never what."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value == expected:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {value!r} after {timeout} s, expected {expected!r}")
        time.sleep(0.25)


def count(client: httpx.Client, headers: dict[str, str], **params: str) -> int:
    """GET /api/tasks/count/total with these filters."""
    response = client.get("/api/tasks/count/total", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def listed_ids(client: httpx.Client, headers: dict[str, str], **params: str) -> list[str]:
    """The ids of every task GET /api/tasks lists with these filters (pages of 1000, newest first)."""
    ids: list[str] = []
    query: dict[str, Any] = {**params, "limit": 1000}
    while True:
        response = client.get("/api/tasks", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [task["task_id"] for task in page["tasks"]]
        if not page.get("next_token"):
            return ids
        query["next_token"] = page["next_token"]


def settled_count(
    client: httpx.Client, headers: dict[str, str], timeout: float = COUNTER_SECONDS, **params: str
) -> int:
    """/api/tasks/count/total with these filters once it equals the number of tasks listed with
    them (both read again on each try: the counters lag the tasks by seconds); fail if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        counted, listed = count(client, headers, **params), len(listed_ids(client, headers, **params))
        if counted == listed:
            return counted
        if time.monotonic() > deadline:
            raise AssertionError(f"count/total {params} is {counted} after {timeout} s; {listed} tasks are listed")
        time.sleep(0.25)


def messages(task: dict[str, Any]) -> list[str]:
    return [event["message"] for event in task["events"]]


def queue_status(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/tasks/queue/status", headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def queues_drained(client: httpx.Client, operator_headers: dict[str, str]) -> bool:
    """No message waiting, delayed or in flight on any task queue (the real depths: an operator's)."""
    overall = queue_status(client, operator_headers)["overall_queue_status"]
    return overall["total_queued"] == 0 and overall["processing"] == 0


def cli_ok(run_cli: CliRunner, *args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, f"taskapi {' '.join(args)}: {result.stderr}"
    return result.stdout


@contextmanager
def processing_paused(run_cli: CliRunner) -> Iterator[None]:
    """`taskapi queue pause` for the block (and long enough before it for every poller to see
    it), `taskapi queue resume` after it, whatever happens inside."""
    cli_ok(run_cli, "queue", "pause")
    time.sleep(PAUSE_SETTLE_SECONDS)
    try:
        yield
    finally:
        cli_ok(run_cli, "queue", "resume")


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client on the stack's moto endpoint (dummy credentials, like the stack's)."""
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def result_file(aws_endpoint: str, result_url: str, name: str | None = None) -> bytes:
    """A file of a task's result, read from the stack's S3: the one its result_url names (the
    primary), or the file `name` beside it (a video's manifest.json, subtitles.vtt)."""
    bucket, _, key = httpx.URL(result_url).path.lstrip("/").partition("/")
    if name is not None:
        key = f"{key.rsplit('/', 1)[0]}/{name}"
    body: bytes = aws_client("s3", aws_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def group_tasks(client: httpx.Client, headers: dict[str, str], group: str) -> list[dict[str, Any]]:
    """Every task of the group (pages of 1000)."""
    tasks: list[dict[str, Any]] = []
    params: dict[str, Any] = {"task_source_group_id": group, "limit": 1000}
    while True:
        answer = client.get("/api/tasks", headers=headers, params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        tasks += page["tasks"]
        if not page.get("next_token"):
            return tasks
        params["next_token"] = page["next_token"]


@dataclass
class MediaServer:
    """An HTTP server of the test process on 127.0.0.1, serving the branding video tasks name: the
    local stack fetches http from loopback addresses (and nothing else over http)."""

    base_url: str
    files: Mapping[str, tuple[bytes, str]]
    """name → (body, content type)."""
    requests: list[str] = field(default_factory=list)
    """The path of every GET (without its query string), in order."""

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def fetches(self, name: str) -> int:
        return self.requests.count(f"/{name}")
