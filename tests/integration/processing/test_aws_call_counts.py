"""AWS calls on the happy paths, counted with botocore before-call hooks on the clients the
adapters use: bulk create of 100 tasks, and the processor per task of each type."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from taskapi import wiring
from taskapi.auth.api_keys import generate_key
from taskapi.engines.base import Artifact, ProgressCallback
from taskapi.http.app import create_app
from taskapi.models.domain import Priority, TaskStatus, TaskType
from taskapi.queueing.messages import TaskMessage
from tests.integration.processing.support import receive_all
from tests.unit.processing.support import ACCOUNT, BODY_OF, builtin, create, registry_with


@pytest.mark.parametrize(
    "per_priority",
    [{"normal": 100}, {"urgent": 40, "high": 30, "normal": 20, "low": 10}],
    ids=["one priority", "four priorities"],
)
def test_bulk_create_of_100_new_tasks_makes_at_most_11_aws_calls(repo, queue, aws_calls, per_priority):
    """One write per task: the messages go first (SendMessageBatch by tens per priority queue), then
    one TransactWriteItems inserts every task QUEUED. No second write marks them."""
    bodies = [
        BODY_OF[TaskType.QUIZ](f"{priority}-{n}", priority=priority)
        for priority, count in per_priority.items()
        for n in range(count)
    ]
    aws_calls.reset()

    created = create(repo, queue, *bodies)

    print(f"\nbulk create of 100 ({'/'.join(per_priority)}): {aws_calls.total} AWS calls: {aws_calls}")
    assert {t.status for t in created} == {TaskStatus.QUEUED}
    assert aws_calls.calls == Counter({"dynamodb.TransactWriteItems": 1, "sqs.SendMessageBatch": 10})
    assert aws_calls.total <= 11
    assert aws_calls.batch_sizes == [10] * 10


def test_bulk_create_of_100_through_http_makes_13_aws_calls(aws_env, aws_calls):
    """POST /api/tasks/bulk of 100 queued tasks of one priority, with its API key and the plan's
    ceiling: 1 key lookup + 1 GetItem of the account counter (the ceiling) + 10 SendMessageBatch +
    1 TransactWriteItems, whatever the account already holds."""
    wiring.reset()
    key, record = generate_key(ACCOUNT)
    wiring.get_key_store().put(record)
    api = TestClient(create_app(), raise_server_exceptions=False)
    bodies = [BODY_OF[TaskType.QUIZ](f"http-{n}", priority="normal") for n in range(100)]
    aws_calls.reset()

    answer = api.post("/api/tasks/bulk", headers={"X-API-Key": key}, json={"tasks": bodies})

    assert answer.status_code == 200, answer.text
    print(f"\nbulk create of 100 through HTTP: {aws_calls.total} AWS calls: {aws_calls}")
    assert {t["status"] for t in answer.json()} == {"QUEUED"}
    assert aws_calls.calls == Counter(
        {"dynamodb.GetItem": 2, "dynamodb.TransactWriteItems": 1, "sqs.SendMessageBatch": 10}
    )
    assert aws_calls.total == 13


class Counting:
    """The built-in engine, counting what it asks for in each run: progress reports, files, and
    the seconds it ran (the progress throttle writes at most one report per interval of them)."""

    def __init__(self, task_type: TaskType) -> None:
        self.task_type = task_type
        self._inner = builtin(task_type)
        self.runs: list[tuple[int, int]] = []
        """(progress reports, files) of each run."""
        self.seconds: list[float] = []

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        reports = 0

        def report(percent: float, note: str) -> None:
            nonlocal reports
            reports += 1
            progress(percent, note)

        started = time.monotonic()
        artifact = self._inner.generate(request_data, report)
        self.seconds.append(time.monotonic() - started)
        self.runs.append((reports, len(artifact.files)))
        return artifact


CASES = {
    "video": BODY_OF[TaskType.VIDEO]("t"),
    "video, maximum segments and subtitles": BODY_OF[TaskType.VIDEO](
        "t",
        request_data={
            "story_prompt": " ".join(f"Sentence number {n} explains one more idea." for n in range(80)),
            "segments": "maximum",
            "include_subtitles": True,
            # The calls do not depend on the picture's size; a small one keeps the test quick.
            "resolution": "320*180",
        },
    ),
    "quiz": BODY_OF[TaskType.QUIZ]("t"),
    "animated_lesson": BODY_OF[TaskType.ANIMATED_LESSON]("t"),
    "documentation": BODY_OF[TaskType.DOCUMENTATION]("t"),
}
PROCESSOR_CALLS = 3
"""1 read (the claim's) + 2 conditional writes (claim, completion: written against the version the
run's own writes left, unread)."""
VIDEO_REPORTS = {"planning": 2, "narration": 9, "branding": 1, "rendering": 9, "packaging": 1}
"""The video engine's progress reports by stage, at most (taskapi.engines.video): reading and
planning; narrating segment 1 and then every ceil(n/8)-th segment, which is 9 reports when n is
8 x k past 8 (16, 24, ... segments; `(number - 1) % every == 0` would make it 8); one before
fetching a logo or intro/outro video; rendering reports at least 1/8 of the run apart below 100%
(at most 8, the intro's at 0% included) and the end; packaging."""
MOST_CALLS_PER_TASK = {
    TaskType.VIDEO: PROCESSOR_CALLS + sum(VIDEO_REPORTS.values()) + 4,  # 29
    TaskType.QUIZ: 20,
    TaskType.ANIMATED_LESSON: 20,
    TaskType.DOCUMENTATION: 20,
}
"""Without the progress throttle (an interval of 0): PROCESSOR_CALLS + one fenced UpdateItem per
progress report + one PutObject per artifact file: the video engine's at most VIDEO_REPORTS and 4
files (video.mp4, subtitles.vtt, manifest.json, storyboard.json); the others report at most about
12 times and write at most 3 files."""
PROGRESS_INTERVAL = 5.0
"""settings.progress_interval_seconds' default: at most one progress write per 5 s of a run."""


@pytest.mark.parametrize("case", list(CASES))
def test_processor_aws_calls_per_task(repo, queue, processor, aws_calls, sqs, aws_env, case):
    body = CASES[case]
    task_type = TaskType(body["task_type"])
    tasks = 5
    # Counted in the runs themselves: eSpeak NG's speech varies by milliseconds from run to run, and
    # so may the rendering reports, which follow the share of the audio rendered.
    engine = Counting(task_type)
    processor = dataclasses.replace(
        processor, engine_for=registry_with(engine).get, progress_interval_seconds=PROGRESS_INTERVAL
    )
    create(repo, queue, *[{**body, "task_id": f"t{n}"} for n in range(tasks)])
    url = aws_env[f"Tasks{Priority(body.get('priority', 'normal')).value.capitalize()}Queue"]
    messages = [TaskMessage.parse(m["Body"]) for m in receive_all(sqs, url)]
    aws_calls.reset()

    for message in messages:
        processor.process(message)

    made, per_task = Counter(aws_calls.calls), aws_calls.total / tasks
    unthrottled = sorted({PROCESSOR_CALLS + reports + files for reports, files in engine.runs})
    # The throttle writes a report only once PROGRESS_INTERVAL has passed since the last write (the
    # claim's first): at most floor(run seconds / interval) of them, and never more than were made.
    most_progress = sum(
        min(reports, math.floor(seconds / PROGRESS_INTERVAL))
        for (reports, _), seconds in zip(engine.runs, engine.seconds, strict=True)
    )
    progress_writes = made.pop("dynamodb.UpdateItem", 0)
    print(
        f"\nprocessor, {case}: {per_task:g} AWS calls per task ({aws_calls}, {tasks} tasks; "
        f"{progress_writes} progress writes for {sum(r for r, _ in engine.runs)} reports over "
        f"{sum(engine.seconds):.1f} s; unthrottled runs would make {unthrottled})"
    )
    assert {repo.get(ACCOUNT, f"t{n}").status for n in range(tasks)} == {TaskStatus.COMPLETED}
    assert len(engine.runs) == tasks
    assert made == Counter(
        {
            "dynamodb.GetItem": tasks,
            "dynamodb.PutItem": 2 * tasks,
            "s3.PutObject": sum(files for _, files in engine.runs),
        }
    )
    assert progress_writes <= most_progress
    assert max(unthrottled) <= MOST_CALLS_PER_TASK[task_type]
