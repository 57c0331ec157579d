"""The processor on the real adapters: messages received from the template's queues go through
functions/processor as Lambda delivers them, results land in the results bucket, and the races
(the same message twice at once, cancel against completion) are decided by DynamoDB's
conditional writes."""

from __future__ import annotations

import threading

import pytest

from taskapi.models.domain import TaskStatus, TaskType
from taskapi.queueing.messages import TaskMessage
from taskapi.services.lifecycle import cancel_tasks
from taskapi.services.processing import Outcome, Processor
from tests import factories
from tests.integration.processing.support import keys_under, lambda_record, queue_arn, receive_all
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    FaultyEngine,
    HookedResults,
    completions,
    create,
    event_messages,
    load_function,
    principal,
    registry_with,
    sqs_event,
)

JSON = "application/json"
FILES = {
    TaskType.VIDEO: {"video.mp4": "video/mp4", "manifest.json": JSON, "storyboard.json": JSON},
    TaskType.QUIZ: {"quiz.json": JSON, "quiz.md": "text/markdown; charset=utf-8"},
    TaskType.ANIMATED_LESSON: {"timeline.json": JSON},
    TaskType.DOCUMENTATION: {"document.md": "text/markdown; charset=utf-8"},
}
"""Each engine's files (with the factories' request_data) and the Content-Type S3 serves them with."""


def run_together(*actions) -> list:
    """Start every action at the same moment on its own thread; answers their results in order."""
    barrier = threading.Barrier(len(actions))
    answers: list = [None] * len(actions)
    errors: list[BaseException] = []

    def run(index: int, action) -> None:
        barrier.wait(timeout=5)
        try:
            answers[index] = action()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return answers


def test_a_batch_received_from_sqs_with_a_poison_message_completes_the_9_others(sqs, s3, repo, queue, bucket, aws_env):
    normal = aws_env["TasksNormalQueue"]
    create(repo, queue, *[BODY_OF[TaskType.QUIZ](f"q{n}") for n in range(5)])
    create(repo, queue, *[BODY_OF[TaskType.DOCUMENTATION](f"d{n}") for n in range(4)])
    sqs.send_message(QueueUrl=normal, MessageBody='{"account_id": "acct_a", "task_id": "q0"}')
    received = receive_all(sqs, normal)
    assert len(received) == 10
    (poison,) = [m for m in received if "attempt" not in m["Body"]]
    arn = queue_arn(sqs, normal)

    answer = load_function("processor").handler(
        sqs_event(lambda_record(m, arn) for m in received), factories.LambdaContext()
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": poison["MessageId"]}]}
    for task_id in [f"q{n}" for n in range(5)] + [f"d{n}" for n in range(4)]:
        task = repo.get(ACCOUNT, task_id)
        assert task.status is TaskStatus.COMPLETED
        assert completions(task) == 1
        assert keys_under(s3, bucket, f"results/{ACCOUNT}/{task_id}/")
        assert task.result_key in keys_under(s3, bucket, f"results/{ACCOUNT}/{task_id}/attempt-1/")


@pytest.mark.usefixtures("atomic_dynamodb")
@pytest.mark.parametrize("task_type", list(TaskType))
def test_the_same_message_delivered_twice_at_once_completes_once_with_one_result(
    s3, repo, queue, processor, bucket, sqs, aws_env, task_type
):
    (task,) = create(repo, queue, BODY_OF[task_type]("t1"))
    (received,) = receive_all(sqs, aws_env[f"Tasks{task.priority.value.capitalize()}Queue"])
    message = TaskMessage.parse(received["Body"])

    outcomes = run_together(lambda: processor.process(message), lambda: processor.process(message))

    assert sorted(outcomes) == sorted([Outcome.COMPLETED, Outcome.SKIPPED])
    task = repo.get(ACCOUNT, "t1")
    assert task.status is TaskStatus.COMPLETED
    assert completions(task) == 1
    assert sum(1 for m in event_messages(task) if m.startswith("Processing started")) == 1
    keys = keys_under(s3, bucket, f"results/{ACCOUNT}/t1/")
    prefix = task.result_key.rsplit("/", 1)[0] + "/"
    assert prefix.startswith(f"results/{ACCOUNT}/t1/attempt-1/")
    assert keys == sorted(prefix + name for name in FILES[task_type])
    assert task.result_key in keys
    served = {key.removeprefix(prefix): s3.get_object(Bucket=bucket, Key=key)["ContentType"] for key in keys}
    assert served == FILES[task_type]


@pytest.mark.usefixtures("atomic_dynamodb")
def test_many_duplicate_deliveries_at_once_complete_each_task_exactly_once(
    s3, repo, queue, processor, bucket, sqs, aws_env
):
    create(repo, queue, *[BODY_OF[TaskType.QUIZ](f"q{n}") for n in range(6)])
    bodies = [m["Body"] for m in receive_all(sqs, aws_env["TasksNormalQueue"])]
    deliveries = [TaskMessage.parse(body) for body in bodies for _ in range(3)]

    outcomes = run_together(*[lambda m=m: processor.process(m) for m in deliveries])

    assert outcomes.count(Outcome.COMPLETED) == 6
    assert outcomes.count(Outcome.SKIPPED) == 12
    for n in range(6):
        task = repo.get(ACCOUNT, f"q{n}")
        assert completions(task) == 1
        assert len(keys_under(s3, bucket, f"results/{ACCOUNT}/q{n}/")) == len(FILES[TaskType.QUIZ])


# ------------------------------------------------------------------ cancel racing completion
def test_a_cancel_while_the_engine_runs_stops_it_on_the_conditional_progress_write(
    s3, repo, queue, results, bucket, clock, sqs, aws_env
):
    engine = FaultyEngine(TaskType.VIDEO)
    processor = Processor(
        repo, queue, results, registry_with(engine).get, retry_delay_seconds=0, clock=clock, progress_interval_seconds=0
    )
    create(repo, queue, BODY_OF[TaskType.VIDEO]("v1"))
    (received,) = receive_all(sqs, aws_env["TasksHighQueue"])

    def cancel_at_half(percent: float) -> None:
        if percent >= 50:
            engine.on_progress = None
            cancel_tasks(repo, principal(), ["v1"], "changed my mind")

    engine.on_progress = cancel_at_half
    assert processor.process(TaskMessage.parse(received["Body"])) is Outcome.STOPPED

    task = repo.get(ACCOUNT, "v1")
    assert task.status is TaskStatus.CANCELLED
    assert completions(task) == 0
    assert keys_under(s3, bucket, f"results/{ACCOUNT}/v1/") == []


def test_a_cancel_after_the_result_is_stored_removes_it_from_the_bucket(
    s3, repo, queue, results, bucket, clock, sqs, aws_env
):
    hooked = HookedResults(results, after_put=lambda: cancel_tasks(repo, principal(), ["q1"], "late cancel"))
    processor = Processor(repo, queue, hooked, registry_with().get, retry_delay_seconds=0, clock=clock)
    create(repo, queue, BODY_OF[TaskType.QUIZ]("q1"))
    (received,) = receive_all(sqs, aws_env["TasksNormalQueue"])

    assert processor.process(TaskMessage.parse(received["Body"])) is Outcome.STOPPED

    assert repo.get(ACCOUNT, "q1").status is TaskStatus.CANCELLED
    (put,) = hooked.puts
    assert put.startswith(f"results/{ACCOUNT}/q1/attempt-1/claim-")
    assert keys_under(s3, bucket, f"results/{ACCOUNT}/q1/") == []


@pytest.mark.usefixtures("atomic_dynamodb")
def test_cancels_racing_completions_at_once_never_leave_a_cancelled_task_completed(
    s3, repo, queue, processor, bucket, sqs, aws_env
):
    ids = [f"q{n}" for n in range(8)]
    create(repo, queue, *[BODY_OF[TaskType.QUIZ](task_id) for task_id in ids])
    received = receive_all(sqs, aws_env["TasksNormalQueue"])
    messages = {m.task_id: m for m in (TaskMessage.parse(r["Body"]) for r in received)}
    actions = []
    for task_id in ids:
        actions.append(lambda task_id=task_id: processor.process(messages[task_id]))
        actions.append(lambda task_id=task_id: cancel_tasks(repo, principal(), [task_id], "race"))

    answers = run_together(*actions)

    for n, task_id in enumerate(ids):
        outcome, cancel_answer = answers[2 * n], answers[2 * n + 1]
        (detail,) = cancel_answer["details"]
        task = repo.get(ACCOUNT, task_id)
        keys = keys_under(s3, bucket, f"results/{ACCOUNT}/{task_id}/")
        if task.status is TaskStatus.CANCELLED:
            assert detail["status"] == "cancelled"
            assert outcome in (Outcome.SKIPPED, Outcome.STOPPED)
            assert completions(task) == 0
            assert keys == []
        else:
            assert task.status is TaskStatus.COMPLETED
            assert outcome is Outcome.COMPLETED
            # The cancel came too late, or kept losing to the worker's progress writes and said so.
            assert (detail["status"], detail["reason"]) in {
                ("skipped", "Task already in final state: COMPLETED"),
                ("failed", "Task changed; retry"),
            }
            assert task.result_key in keys
