"""The SQS entry points (functions/processor and functions/dead_letter) with Powertools'
BatchProcessor: a poison message fails alone, a dead-lettered message ends its task FAILED with the
last error unless the task is final, on another attempt or still running within its lease."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.engines.base import EngineError
from taskapi.errors import Retryable
from taskapi.models.domain import PROCESSING_TIMEOUT_SECONDS, Task, TaskStatus, TaskType, isoformat, utc_now
from taskapi.models.requests import BulkRegenerateRequest
from taskapi.queueing.messages import TaskMessage
from taskapi.services.lifecycle import cancel_tasks, regenerate_tasks
from taskapi.services.processing import Outcome
from tests import factories
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    FaultyEngine,
    HookedResults,
    completions,
    create,
    deliver,
    event_messages,
    load_function,
    messages,
    principal,
    registry_with,
    sqs_event,
    sqs_record,
)

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:taskapi-local-TasksNormalDeadLetterQueue"


def stored(fakes, task_id: str) -> Task:
    task = fakes.repo.get(ACCOUNT, task_id)
    assert task is not None
    return task


@pytest.fixture
def processor_function(fakes, processor):
    module = load_function("processor")
    module.get_processor = lambda: processor  # what the cached factory would build, as fakes
    return module


@pytest.fixture
def dead_letter_function(fakes):
    module = load_function("dead_letter")
    module.get_repository = lambda: fakes.repo
    return module


def invoke(module, records: list[dict]) -> dict:
    return module.handler(sqs_event(records), factories.LambdaContext())


# ------------------------------------------------------------------ the processor function
@pytest.mark.parametrize(
    "poison",
    [
        "not json at all",
        '{"account_id": "acct_a", "task_id": "q3"}',
        '{"account_id": "acct_a", "task_id": "q3", "attempt": "1"}',
        "[1, 2, 3]",
    ],
)
def test_a_poison_message_in_a_batch_of_10_fails_alone_and_the_9_others_complete(fakes, processor_function, poison):
    create(fakes.repo, fakes.queue, *[BODY_OF[TaskType.QUIZ](f"q{i}") for i in range(9)])
    records = [sqs_record(m.body(), message_id=f"m-{m.task_id}") for m in messages(fakes)]
    records.insert(4, sqs_record(poison, message_id="poison"))
    assert len(records) == 10

    answer = invoke(processor_function, records)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    for i in range(9):
        task = stored(fakes, f"q{i}")
        assert task.status is TaskStatus.COMPLETED
        assert completions(task) == 1


def test_a_batch_with_duplicates_and_other_attempts_messages_acknowledges_them_without_work(fakes, processor_function):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.DOCUMENTATION]("d1"))
    current = messages(fakes)
    other_attempt = TaskMessage(ACCOUNT, "q1", 7)
    records = [sqs_record(m.body()) for m in current + current] + [sqs_record(other_attempt.body())]

    answer = invoke(processor_function, records)

    assert answer == {"batchItemFailures": []}
    for task_id in ("q1", "d1"):
        assert completions(stored(fakes, task_id)) == 1


def test_a_message_hitting_a_transient_aws_error_is_reported_for_redelivery_alone(fakes, clock):
    class FlakyS3(HookedResults):
        def put(self, prefix, artifact):
            if "/q1/" in prefix:
                raise Retryable("S3 did not store the result: SlowDown")
            return super().put(prefix, artifact)

    processor = fakes.processor(results=FlakyS3(fakes.results), clock=clock)
    module = load_function("processor")
    module.get_processor = lambda: processor
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.QUIZ]("q2"))
    records = [sqs_record(m.body(), message_id=m.task_id) for m in messages(fakes)]

    answer = invoke(module, records)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "q1"}]}
    assert stored(fakes, "q1").status is TaskStatus.QUEUED  # given back: the redelivery claims it
    assert stored(fakes, "q2").status is TaskStatus.COMPLETED


def test_handle_record_answers_the_outcome(fakes, processor_function):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)
    record = SQSRecord(sqs_record(message.body()))

    assert processor_function.handle_record(record) == Outcome.COMPLETED.value
    assert processor_function.handle_record(record) == Outcome.SKIPPED.value
    with pytest.raises(ValueError, match="not JSON"):
        processor_function.handle_record(SQSRecord(sqs_record("{")))


# ------------------------------------------------------------------ the dead-letter function
def dead_letter(module, *bodies: str, receive_count: int = 3) -> dict:
    records = [
        sqs_record(body, message_id=f"dl{n}", receive_count=receive_count, source_arn=DLQ_ARN)
        for n, body in enumerate(bodies)
    ]
    return invoke(module, records)


def test_a_dead_lettered_message_fails_its_task_with_the_last_error(fakes, clock, dead_letter_function):
    engine = FaultyEngine(TaskType.VIDEO, [EngineError("renderer unavailable", permanent=False)])
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1"))
    (message,) = messages(fakes)
    assert processor.process(message) is Outcome.RETRY_SCHEDULED
    retry = messages(fakes)  # say the retry message is the one that kept failing

    answer = dead_letter(dead_letter_function, retry[0].body())

    assert answer == {"batchItemFailures": []}
    task = stored(fakes, "v1")
    assert task.status is TaskStatus.FAILED
    assert task.error_message == (
        "Processing failed: the message was dead-lettered after 3 deliveries; last error: renderer unavailable"
    )
    assert task.error_details["dead_lettered"] is True
    assert task.error_details["deliveries"] == 3
    assert task.error_details["last_error"] == "renderer unavailable"
    assert event_messages(task)[-1] == task.error_message


def test_a_dead_lettered_message_of_a_never_claimed_task_fails_it_without_a_last_error(fakes, dead_letter_function):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)

    dead_letter(dead_letter_function, message.body(), receive_count=5)

    task = stored(fakes, "q1")
    assert task.status is TaskStatus.FAILED
    assert task.error_message == "Processing failed: the message was dead-lettered after 5 deliveries"


def test_a_dead_lettered_message_leaves_final_tasks_and_other_attempts_alone(fakes, processor, dead_letter_function):
    create(
        fakes.repo,
        fakes.queue,
        BODY_OF[TaskType.QUIZ]("done"),
        BODY_OF[TaskType.QUIZ]("cancelled"),
        BODY_OF[TaskType.QUIZ]("regenerated"),
    )
    old = {m.task_id: m for m in messages(fakes)}
    for task_id in ("done", "regenerated"):
        processor.process(old[task_id])
    cancel_tasks(fakes.repo, principal(), ["cancelled"], "no longer needed")
    regenerate_tasks(fakes.repo, fakes.queue, principal(), BulkRegenerateRequest(task_ids=["regenerated"]))
    before = {task_id: stored(fakes, task_id) for task_id in old}

    answer = dead_letter(dead_letter_function, *(m.body() for m in old.values()))

    assert answer == {"batchItemFailures": []}
    assert {task_id: stored(fakes, task_id) for task_id in old} == before
    assert stored(fakes, "regenerated").status is TaskStatus.QUEUED  # attempt 2 still goes ahead
    assert deliver(fakes, processor) == [Outcome.COMPLETED]


def test_a_dead_lettered_message_of_a_task_still_running_within_its_lease_is_retried_later(fakes, dead_letter_function):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("running"), BODY_OF[TaskType.QUIZ]("dead"))
    bodies = [m.body() for m in messages(fakes)]
    now = utc_now()
    long_ago = isoformat(now - timedelta(seconds=PROCESSING_TIMEOUT_SECONDS[TaskType.QUIZ] + 60))
    for task_id, since in (("running", isoformat(now)), ("dead", long_ago)):
        task = stored(fakes, task_id)
        fakes.repo.save(
            task.model_copy(update={"status": TaskStatus.PROCESSING, "state_since": since, "tries": 1}),
            expected_version=task.version,
        )

    answer = dead_letter(dead_letter_function, *bodies)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "dl0"}]}  # decided once its lease ends
    assert stored(fakes, "running").status is TaskStatus.PROCESSING
    assert stored(fakes, "dead").status is TaskStatus.FAILED


def test_a_dead_lettered_message_that_is_not_a_task_message_is_acknowledged(fakes, dead_letter_function):
    assert dead_letter(dead_letter_function, "garbage", '{"task_id": 1}') == {"batchItemFailures": []}
