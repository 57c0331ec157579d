"""Uploads on moto. Two set-ups:

- `uploads_env` (mock_aws, in process): the DynamoDB and S3 adapters, from the environment
  template.yaml gives the ingest function.
- `stack` (moto in server mode on a random local port, as the local stack runs it): presigned
  POSTs sent over HTTP with httpx, S3's notifications to the ingest queue, and the ingest
  function's event source mapping run by the local stack's own poller.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infra.local_stack import aws_environment, stack_environment, start_moto_server
from infra.provision import provision
from infra.template import LocalNames, function_environment
from taskapi import aws, wiring
from taskapi.auth.api_keys import generate_key
from taskapi.settings import get_settings

UPLOAD_VARIABLES = ("TASKAPI_UPLOADS_TABLE", "TASKAPI_UPLOADS_BUCKET")


def _forget_cached() -> None:
    get_settings.cache_clear()
    aws.reset_clients()
    wiring.reset()


@pytest.fixture
def uploads_env(aws_env, monkeypatch):
    for variable, value in function_environment("IngestFunction", refs=aws_env).items():
        if variable.startswith(UPLOAD_VARIABLES):
            monkeypatch.setenv(variable, value)
    _forget_cached()
    return aws_env


@dataclass
class Stack:
    endpoint: str
    refs: dict[str, str]
    names: LocalNames

    def client(self, service: str) -> Any:
        return aws.client(service)

    def api_key(self, account_id: str) -> dict[str, str]:
        key, record = generate_key(account_id)
        wiring.get_key_store().put(record)
        return {"X-API-Key": key}


def _drain(sqs: Any, queue_url: str) -> None:
    """Delete every visible message (PurgeQueue allows one call a minute)."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = start_moto_server(port=0)
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def stack(moto_endpoint, monkeypatch) -> Stack:
    """Every variable the local stack gives its functions, pointed at the module's moto server,
    with the ingest queues emptied (of the s3:TestEvent, and of earlier tests' messages)."""
    for name, value in aws_environment(moto_endpoint, os.environ, embedded=True).items():
        monkeypatch.setenv(name, value)
    _forget_cached()
    names = LocalNames()
    refs = provision(boto3.Session(region_name=names.region), names)
    for name, value in stack_environment(names, refs).items():
        monkeypatch.setenv(name, value)
    _forget_cached()
    sqs = aws.client("sqs")
    for queue in ("IngestQueue", "IngestDeadLetterQueue"):
        _drain(sqs, refs[queue])
    return Stack(endpoint=moto_endpoint, refs=refs, names=names)


@pytest.fixture
def account() -> str:
    """A fresh account per test: the moto server lives for the whole module."""
    return f"acct_{uuid.uuid4().hex[:12]}"
