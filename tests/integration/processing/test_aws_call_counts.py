"""AWS calls on the happy paths, counted with botocore before-call hooks on the clients the
adapters use: bulk create of 100 tasks, and the processor per task of each type."""

from __future__ import annotations

from collections import Counter

import pytest

from taskapi.models.domain import Priority, TaskStatus, TaskType
from taskapi.queueing.messages import TaskMessage
from tests.integration.processing.support import receive_all
from tests.unit.processing.support import ACCOUNT, BODY_OF, FaultyEngine, create, registry_with


@pytest.mark.parametrize(
    "per_priority",
    [{"normal": 100}, {"urgent": 40, "high": 30, "normal": 20, "low": 10}],
    ids=["one priority", "four priorities"],
)
def test_bulk_create_of_100_new_tasks_makes_at_most_12_aws_calls(repo, queue, aws_calls, per_priority):
    bodies = [
        BODY_OF[TaskType.QUIZ](f"{priority}-{n}", priority=priority)
        for priority, count in per_priority.items()
        for n in range(count)
    ]
    aws_calls.reset()

    created = create(repo, queue, *bodies)

    print(f"\nbulk create of 100 ({'/'.join(per_priority)}): {aws_calls.total} AWS calls: {aws_calls}")
    assert {t.status for t in created} == {TaskStatus.QUEUED}
    assert aws_calls.calls == Counter({"dynamodb.TransactWriteItems": 2, "sqs.SendMessageBatch": 10})
    assert aws_calls.total <= 12
    assert aws_calls.batch_sizes == [10] * 10


def progress_reports_and_files(task_type: TaskType, request_data: dict) -> tuple[int, int]:
    """What the engine itself asks for: progress reports, and files in its artifact."""
    engine = FaultyEngine(task_type)
    artifact = registry_with(engine).get(task_type).generate(request_data, lambda percent, note: None)
    return len(engine.reported), len(artifact.files)


CASES = {
    "video": BODY_OF[TaskType.VIDEO]("t"),
    "video, maximum segments and subtitles": BODY_OF[TaskType.VIDEO](
        "t",
        request_data={
            "story_prompt": " ".join(f"Sentence number {n} explains one more idea." for n in range(80)),
            "segments": "maximum",
            "include_subtitles": True,
        },
    ),
    "quiz": BODY_OF[TaskType.QUIZ]("t"),
    "animated_lesson": BODY_OF[TaskType.ANIMATED_LESSON]("t"),
    "documentation": BODY_OF[TaskType.DOCUMENTATION]("t"),
}
MOST_CALLS_PER_TASK = 20
"""2 reads (claim, completion re-read) + 2 conditional writes (claim, completion) + one fenced
UpdateItem per progress report (every engine reports at most about 12 times: the video engine
thins its per-segment reports to about eight) + one PutObject per artifact file (at most 3)."""


@pytest.mark.parametrize("case", list(CASES))
def test_processor_aws_calls_per_task(repo, queue, processor, aws_calls, sqs, aws_env, case):
    body = CASES[case]
    task_type = TaskType(body["task_type"])
    tasks = 5
    create(repo, queue, *[{**body, "task_id": f"t{n}"} for n in range(tasks)])
    url = aws_env[f"Tasks{Priority(body.get('priority', 'normal')).value.capitalize()}Queue"]
    messages = [TaskMessage.parse(m["Body"]) for m in receive_all(sqs, url)]
    reports, files = progress_reports_and_files(task_type, body["request_data"])
    aws_calls.reset()

    for message in messages:
        processor.process(message)

    made, per_task = Counter(aws_calls.calls), aws_calls.total / tasks
    print(f"\nprocessor, {case}: {per_task:g} AWS calls per task ({aws_calls}, {tasks} tasks)")
    assert {repo.get(ACCOUNT, f"t{n}").status for n in range(tasks)} == {TaskStatus.COMPLETED}
    assert made == Counter(
        {
            "dynamodb.GetItem": 2 * tasks,
            "dynamodb.PutItem": 2 * tasks,
            "dynamodb.UpdateItem": reports * tasks,
            "s3.PutObject": files * tasks,
        }
    )
    assert per_task == 4 + reports + files
    assert per_task <= MOST_CALLS_PER_TASK
