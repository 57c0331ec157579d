"""Integration tests: the real adapters on moto, with tables, queues and buckets built from template.yaml."""

from __future__ import annotations

import functools

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from infra.provision import provision
from infra.template import LocalNames, function_environment
from taskapi import aws
from taskapi.auth.api_keys import DynamoApiKeyStore
from taskapi.store.dynamodb import DynamoTaskRepository


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader():
    """Every cached client comes from its own boto3 Session, and every Session parses the service
    models again (about 0.1 s a client, most of each test's setup). The models are read-only:
    one loader for all sessions of the test run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))
        yield


QUEUE_AND_BUCKET_VARIABLES = ("TASKAPI_QUEUE_URL_", "TASKAPI_DLQ_URL_", "TASKAPI_RESULTS_BUCKET")


@pytest.fixture
def aws_env(monkeypatch):
    with mock_aws():
        names = provision(boto3.Session(region_name="us-east-1"), LocalNames())
        monkeypatch.setenv("TASKAPI_TASKS_TABLE", names["TasksTable"])
        monkeypatch.setenv("TASKAPI_API_KEYS_TABLE", names["ApiKeysTable"])
        # Queue URLs and the results bucket exactly as template.yaml hands them to the processor.
        for variable, value in function_environment("ProcessorFunction", refs=names).items():
            if variable.startswith(QUEUE_AND_BUCKET_VARIABLES):
                monkeypatch.setenv(variable, value)
        aws.reset_clients()
        yield names


@pytest.fixture
def dynamodb(aws_env):
    return aws.client("dynamodb")


@pytest.fixture
def repo(aws_env, dynamodb) -> DynamoTaskRepository:
    return DynamoTaskRepository(dynamodb, aws_env["TasksTable"])


@pytest.fixture
def key_store(aws_env, dynamodb) -> DynamoApiKeyStore:
    return DynamoApiKeyStore(dynamodb, aws_env["ApiKeysTable"])


class CallLog(list):
    def __init__(self) -> None:
        super().__init__()
        self.scanned: list[int] = []
        self.fetched: list[int] = []

    def clear(self) -> None:
        super().clear()
        self.scanned.clear()
        self.fetched.clear()


@pytest.fixture
def calls(dynamodb):
    """Names of the DynamoDB operations made from here on, the items each Query read and each
    BatchGetItem answered."""
    made = CallLog()
    scanned, fetched = made.scanned, made.fetched

    def before(event_name, **_):
        made.append(event_name.split(".")[-1])

    def after(http_response, parsed, **_):
        scanned.append(parsed.get("ScannedCount", 0))

    def after_batch(http_response, parsed, **_):
        fetched.append(sum(len(items) for items in parsed.get("Responses", {}).values()))

    dynamodb.meta.events.register("before-call.dynamodb.*", before)
    dynamodb.meta.events.register("after-call.dynamodb.Query", after)
    dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", after_batch)
    return made


@pytest.fixture
def catch_up_counters(aws_env, dynamodb):
    """Apply the tasks table's stream so far to the counters, as the stream consumer would (a
    redelivery is counted once: the chunks applied before are skipped by their markers)."""
    from taskapi.counting.apply import DynamoCounterWriter
    from tests.integration.counting.support import changes, stream_records

    writer = DynamoCounterWriter(dynamodb, aws_env["CountersTable"])

    def catch_up():
        return writer.apply(changes(stream_records(dynamodb, aws_env["TasksTable"])))

    return catch_up
