"""Processing on moto: the real DynamoDB, SQS and S3 adapters, built by the same cached factories
the Lambda functions use, from the environment template.yaml gives the processor."""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from taskapi import aws, wiring
from taskapi.models.domain import Priority
from taskapi.services.processing import Processor
from tests.fakes import Clock
from tests.integration.processing.support import AwsCalls

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item", "batch_get_item", "query")


@pytest.fixture
def atomic_dynamodb(monkeypatch) -> None:
    """DynamoDB applies each conditional write atomically; moto checks the condition and writes
    in two Python steps that two threads can interleave. One lock per call restores DynamoDB's
    guarantee, so the concurrency tests test the service, not moto."""
    lock = threading.RLock()
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


@pytest.fixture
def sqs(aws_env):
    return aws.client("sqs")


@pytest.fixture
def s3(aws_env):
    return aws.client("s3")


@pytest.fixture
def queue(aws_env):
    return wiring.get_queue()


@pytest.fixture
def results(aws_env):
    return wiring.get_results()


@pytest.fixture
def bucket(aws_env) -> str:
    return aws_env["ResultsBucket"]


@pytest.fixture
def queue_urls(aws_env) -> dict[Priority, str]:
    return {priority: aws_env[f"Tasks{priority.value.capitalize()}Queue"] for priority in Priority}


@pytest.fixture
def dead_letter_urls(aws_env) -> dict[Priority, str]:
    return {priority: aws_env[f"Tasks{priority.value.capitalize()}DeadLetterQueue"] for priority in Priority}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def processor(repo, queue, results, clock) -> Processor:
    """The processor get_processor() builds, on a clock the test moves and with no retry delay."""
    built = wiring.get_processor()
    return Processor(
        repository=repo,
        queue=queue,
        results=results,
        engine_for=built.engine_for,
        retry_delay_seconds=0,
        clock=clock,
    )


@pytest.fixture
def aws_calls(aws_env) -> AwsCalls:
    return AwsCalls(aws.client("dynamodb"), aws.client("sqs"), aws.client("s3"))
