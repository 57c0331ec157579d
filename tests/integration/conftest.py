"""Integration tests: the real adapters on moto, with tables built from template.yaml."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from infra.provision import provision
from infra.template import LocalNames
from taskapi import aws
from taskapi.auth.api_keys import DynamoApiKeyStore
from taskapi.store.dynamodb import DynamoTaskRepository


@pytest.fixture
def aws_env(monkeypatch):
    with mock_aws():
        names = provision(boto3.Session(region_name="us-east-1"), LocalNames())
        monkeypatch.setenv("TASKAPI_TASKS_TABLE", names["TasksTable"])
        monkeypatch.setenv("TASKAPI_API_KEYS_TABLE", names["ApiKeysTable"])
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

    def clear(self) -> None:
        super().clear()
        self.scanned.clear()


@pytest.fixture
def calls(dynamodb):
    """Names of the DynamoDB operations made from here on, and the items each Query read."""
    made = CallLog()
    scanned = made.scanned

    def before(event_name, **_):
        made.append(event_name.split(".")[-1])

    def after(http_response, parsed, **_):
        scanned.append(parsed.get("ScannedCount", 0))

    dynamodb.meta.events.register("before-call.dynamodb.*", before)
    dynamodb.meta.events.register("after-call.dynamodb.Query", after)
    return made
