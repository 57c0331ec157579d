"""DeliveryQueue: the webhook delivery queue (WebhookDeliveryQueue, with its dead-letter queue).
The SQS adapter and the in-memory fake. A send answers the messages it could not send, so the
caller can fail (and be retried) rather than lose a delivery."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, translate
from taskapi.webhooks.models import DeliveryMessage

SEND_BATCH = 10
"""SendMessageBatch takes at most 10 entries."""
MAX_DELAY_SECONDS = 900
"""SQS delays a message at most 15 minutes; a longer wait is a chain of re-sends."""


class DeliveryQueue(Protocol):
    def send(self, messages: Sequence[DeliveryMessage], *, delay_seconds: int = 0) -> dict[int, str]:
        """Send every message, delayed by `delay_seconds` (0..900). Answers the refused ones:
        index -> reason."""
        ...


def _checked_delay(delay_seconds: int) -> int:
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be within 0..{MAX_DELAY_SECONDS}")
    return delay_seconds


class SqsDeliveryQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, messages: Sequence[DeliveryMessage], *, delay_seconds: int = 0) -> dict[int, str]:
        """SendMessageBatch by tens. A batch the call itself fails for (after botocore's retries)
        is refused entry by entry, so nothing is silently lost."""
        delay = _checked_delay(delay_seconds)
        refused: dict[int, str] = {}
        if not self._url:
            return dict.fromkeys(range(len(messages)), "no webhook delivery queue is configured")
        for start in range(0, len(messages), SEND_BATCH):
            indexes = range(start, min(start + SEND_BATCH, len(messages)))
            entries = [
                {"Id": str(index), "MessageBody": messages[index].to_json(), "DelaySeconds": delay} for index in indexes
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except AWS_ERRORS as exc:
                translate(exc, service="SQS")  # logs a configuration error; the caller decides
                refused.update(dict.fromkeys(indexes, f"SQS refused the batch ({type(exc).__name__})"))
                continue
            for failure in answer.get("Failed", []):
                refused[int(failure["Id"])] = f"SQS refused the message: {failure.get('Code', '')}"
        return refused


@dataclass
class MemoryDeliveryQueue:
    """Records what was sent, with its delay; `refuse` makes chosen sends fail (fault injection)."""

    sent: list[tuple[DeliveryMessage, int]] = field(default_factory=list)
    refuse: Callable[[DeliveryMessage], str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, messages: Sequence[DeliveryMessage], *, delay_seconds: int = 0) -> dict[int, str]:
        delay = _checked_delay(delay_seconds)
        refused: dict[int, str] = {}
        with self._lock:
            for index, message in enumerate(messages):
                reason = self.refuse(message) if self.refuse else None
                if reason:
                    refused[index] = reason
                else:
                    self.sent.append((message, delay))
        return refused

    def drain(self) -> list[tuple[DeliveryMessage, int]]:
        """Everything sent so far (message, delay), oldest first; the queue is left empty."""
        with self._lock:
            taken, self.sent = self.sent, []
        return taken
