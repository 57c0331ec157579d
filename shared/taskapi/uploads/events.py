"""S3 event notifications as the ingest queue delivers them (one SQS message body each).

A body is either {"Records": [...]} with one record per stored object, or the s3:TestEvent S3
sends once when notifications are configured. Object keys arrive URL-encoded (a space as "+",
"/" as "%2F" in moto) and are handed on as they arrive: the ingest service decodes them, once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TEST_EVENT = "s3:TestEvent"


class NotANotification(ValueError):
    """The body is not an S3 event notification (not JSON, or of another shape)."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    """URL-encoded, as S3 sends it."""
    size: int | None
    event_name: str


def parse_notification(body: str) -> list[ObjectCreated]:
    """The ObjectCreated records of the body: [] for the test event and for other event kinds."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise NotANotification("the message body is not JSON") from exc
    if not isinstance(message, dict):
        raise NotANotification("the message body is not a JSON object")
    if message.get("Event") == TEST_EVENT:
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise NotANotification("the message has no Records")
    found = []
    for record in records:
        created = _object_created(record)
        if created is not None:
            found.append(created)
    return found


def _object_created(record: Any) -> ObjectCreated | None:
    if not isinstance(record, dict):
        raise NotANotification("a record is not a JSON object")
    event_name = str(record.get("eventName", ""))
    if record.get("eventSource") != "aws:s3" or not event_name.startswith("ObjectCreated:"):
        return None
    s3 = record.get("s3") or {}
    try:
        bucket = str(s3["bucket"]["name"])
        raw_key = str(s3["object"]["key"])
    except (KeyError, TypeError) as exc:
        raise NotANotification("an ObjectCreated record names no bucket or key") from exc
    size = s3["object"].get("size")
    return ObjectCreated(
        bucket=bucket,
        key=raw_key,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        event_name=event_name,
    )


DEAD_LETTER_QUEUE_NAME = "IngestDeadLetterQueue"
"""The ingest dead-letter queue's logical id, part of its physical name in AWS
("<stack>-IngestDeadLetterQueue-<suffix>") and locally ("<stack>-IngestDeadLetterQueue")."""


def from_dead_letter_queue(event_source_arn: str | None, dead_letter_source_arn: str | None = None) -> bool:
    """Whether an SQS record comes from the ingest dead-letter queue: SQS marks a redriven message
    with DeadLetterQueueSourceArn (where the event source mapping passes it on); the queue's name
    says so too."""
    if dead_letter_source_arn:
        return True
    queue_name = (event_source_arn or "").rsplit(":", 1)[-1]
    return DEAD_LETTER_QUEUE_NAME in queue_name
