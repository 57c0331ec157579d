"""functions/ingest with Powertools' BatchProcessor: S3 notifications from the ingest queue become
tasks, the s3:TestEvent and foreign messages are ignored, a record that raises fails alone, and
records from the dead-letter queue fail their upload."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from taskapi.errors import Retryable
from taskapi.store.base import TaskFilters
from taskapi.uploads.events import NotANotification, from_dead_letter_queue, parse_notification
from taskapi.uploads.model import UploadStatus
from tests import factories
from tests.fakes import Fakes
from tests.unit.processing.support import load_function, sqs_event, sqs_record
from tests.unit.uploads.support import (
    BUCKET,
    INGEST_DLQ_ARN,
    INGEST_QUEUE_ARN,
    TEST_EVENT,
    drop,
    ingestor,
    jsonl,
    notification,
    start,
    stored,
)


class Context:
    function_name = "taskapi-local-IngestFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:taskapi-local-IngestFunction"
    aws_request_id = "request-1"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def ingest_function(fakes):
    module = load_function("ingest")
    module.get_ingestor = lambda: ingestor(fakes)  # what the cached factory would build, as fakes
    return module


def invoke(module, records: list[dict]) -> dict:
    return module.handler(sqs_event(records), Context())


def test_a_notification_of_a_new_upload_creates_its_tasks(fakes, ingest_function):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video(), factories.quiz()))

    answer = invoke(
        ingest_function, [sqs_record(notification(BUCKET, upload.object_key, 10), source_arn=INGEST_QUEUE_ARN)]
    )

    assert answer == {"batchItemFailures": []}
    assert stored(fakes, upload).status is UploadStatus.COMPLETED
    assert stored(fakes, upload).counts.created == 2


@pytest.mark.parametrize(
    "body",
    [
        TEST_EVENT,
        "not json",
        "[1, 2]",
        json.dumps({"Records": "nope"}),
        notification(BUCKET, "uploads/acct_a/6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c", event_name="ObjectRemoved:Delete"),
    ],
)
def test_messages_that_are_no_new_upload_are_acknowledged_without_work(fakes, ingest_function, body):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))

    answer = invoke(ingest_function, [sqs_record(body, source_arn=INGEST_QUEUE_ARN)])

    assert answer == {"batchItemFailures": []}
    assert stored(fakes, upload).status is UploadStatus.PENDING


def test_a_record_that_raises_is_reported_for_redelivery_and_the_others_are_not(fakes, ingest_function):
    failing, fine = start(fakes), start(fakes)
    drop(fakes, failing, jsonl(factories.video("boom")))
    drop(fakes, fine, jsonl(factories.video("ok")))
    insert_new = fakes.repo.insert_new

    def busy_for_boom(tasks):
        if any(task.task_id == "boom" for task in tasks):
            raise Retryable("DynamoDB is busy")
        return insert_new(tasks)

    fakes.repo.insert_new = busy_for_boom
    records = [
        sqs_record(notification(BUCKET, failing.object_key), source_arn=INGEST_QUEUE_ARN),
        sqs_record(notification(BUCKET, fine.object_key), source_arn=INGEST_QUEUE_ARN),
    ]

    answer = invoke(ingest_function, records)

    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    assert stored(fakes, failing).status is UploadStatus.PROCESSING
    assert stored(fakes, failing).last_error == "Retryable: DynamoDB is busy"
    assert stored(fakes, fine).status is UploadStatus.COMPLETED


def test_a_batch_whose_every_record_raises_fails_as_a_whole(fakes, ingest_function):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))

    def busy(tasks):
        raise Retryable("DynamoDB is busy")

    fakes.repo.insert_new = busy

    with pytest.raises(BatchProcessingError):  # Lambda then delivers the whole batch (of one) again
        invoke(ingest_function, [sqs_record(notification(BUCKET, upload.object_key), source_arn=INGEST_QUEUE_ARN)])


def test_a_dead_lettered_notification_fails_its_upload(fakes, ingest_function):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))

    answer = invoke(ingest_function, [sqs_record(notification(BUCKET, upload.object_key), source_arn=INGEST_DLQ_ARN)])

    assert answer == {"batchItemFailures": []}
    assert stored(fakes, upload).status is UploadStatus.FAILED
    assert stored(fakes, upload).error.startswith("ingest failed repeatedly: ")
    assert fakes.repo.page("acct_a", TaskFilters(), before=None, want=10) == []


def test_records_of_one_batch_are_independent(fakes, ingest_function):
    good, bad = start(fakes), start(fakes)
    drop(fakes, good, jsonl(factories.video()))
    drop(fakes, bad, b"[not jsonl")
    records = [
        sqs_record(notification(BUCKET, bad.object_key), source_arn=INGEST_QUEUE_ARN),
        sqs_record(notification(BUCKET, good.object_key), source_arn=INGEST_QUEUE_ARN),
    ]

    assert invoke(ingest_function, records) == {"batchItemFailures": []}
    assert stored(fakes, good).status is UploadStatus.COMPLETED
    assert stored(fakes, bad).status is UploadStatus.FAILED


# ------------------------------------------------------------------ the notification format


def test_notifications_carry_the_key_as_s3_encodes_it():
    (created,) = parse_notification(notification(BUCKET, "uploads/a b+c", 12))

    assert (created.bucket, created.key, created.size) == (BUCKET, "uploads%2Fa+b%2Bc", 12)


def test_the_test_event_has_no_objects():
    assert parse_notification(TEST_EVENT) == []


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{",
        "3",
        json.dumps({"Records": [1]}),
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}),
    ],
)
def test_other_bodies_are_not_notifications(body):
    with pytest.raises(NotANotification):
        parse_notification(body)


@pytest.mark.parametrize(
    ("arn", "redriven_from", "expected"),
    [
        (INGEST_QUEUE_ARN, None, False),
        (INGEST_DLQ_ARN, None, True),
        ("arn:aws:sqs:eu-west-1:111122223333:prod-IngestDeadLetterQueue-1XQ2Z3", None, True),
        ("arn:aws:sqs:eu-west-1:111122223333:prod-IngestQueue-1XQ2Z3", None, False),
        ("arn:aws:sqs:eu-west-1:111122223333:renamed-dlq", INGEST_QUEUE_ARN, True),
    ],
)
def test_dead_letter_records_are_told_by_their_queue(arn, redriven_from, expected):
    assert from_dead_letter_queue(arn, redriven_from) is expected
