"""Helpers of the processing integration tests: counting AWS calls, reading queues, and turning
messages received from (moto) SQS into the records Lambda's event source mapping delivers."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class AwsCalls:
    """Counts the API calls of the given clients (botocore before-call), thread-safe: SQS batches
    are sent concurrently."""

    def __init__(self, *clients: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.queue_urls: list[str] = []
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []
        for client in clients:
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", self._batch)

    def _before(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self.calls[f"{service}.{operation}"] += 1

    def _batch(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.queue_urls.append(params["QueueUrl"])
            self.batch_sizes.append(len(params["Entries"]))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.queue_urls.clear()
            self.batch_sizes.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __str__(self) -> str:
        return ", ".join(f"{name} x{count}" for name, count in sorted(self.calls.items()))


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message now visible on the queue (each becomes in flight)."""
    received: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        batch = answer.get("Messages", [])
        if not batch:
            return received
        received += batch


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A message as ReceiveMessage answers it, shaped as the SQS event record Lambda passes on."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    answer = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in answer.get("Contents", []))
