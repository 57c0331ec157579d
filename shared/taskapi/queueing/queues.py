"""TaskQueue: one SQS queue per priority. The SQS adapter and the in-memory fake."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, translate
from taskapi.models.domain import Priority
from taskapi.queueing.messages import TaskMessage

SEND_BATCH = 10
"""SendMessageBatch takes at most 10 entries."""


@dataclass(frozen=True)
class QueueDepth:
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    dead_letter: int = 0


class TaskQueue(Protocol):
    def send(self, messages: Sequence[tuple[Priority, TaskMessage]], *, delay_seconds: int = 0) -> dict[int, str]:
        """Send each message to its priority's queue. Answers the refused ones: index -> reason."""
        ...

    def depths(self) -> dict[Priority, QueueDepth]: ...


class SqsTaskQueue:
    def __init__(self, client: Any, queue_urls: Mapping[str, str], dead_letter_urls: Mapping[str, str]) -> None:
        self._client = client
        self._urls = {Priority(name): url for name, url in queue_urls.items()}
        self._dead_letter_urls = {Priority(name): url for name, url in dead_letter_urls.items()}

    def send(self, messages: Sequence[tuple[Priority, TaskMessage]], *, delay_seconds: int = 0) -> dict[int, str]:
        """SendMessageBatch by tens, the batches sent concurrently. A batch the call itself fails
        for (after botocore's retries) is refused entry by entry, so nothing is silently lost."""
        batches: list[tuple[Priority, list[int]]] = []
        by_priority: dict[Priority, list[int]] = {}
        for index, (priority, _) in enumerate(messages):
            by_priority.setdefault(priority, []).append(index)
        for priority, indexes in by_priority.items():
            for start in range(0, len(indexes), SEND_BATCH):
                batches.append((priority, indexes[start : start + SEND_BATCH]))

        def send_batch(priority: Priority, indexes: list[int]) -> dict[int, str]:
            url = self._urls.get(priority)
            if not url:
                return dict.fromkeys(indexes, f"no queue is configured for priority {priority.value}")
            entries = [
                {"Id": str(index), "MessageBody": messages[index][1].body(), "DelaySeconds": delay_seconds}
                for index in indexes
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=url, Entries=entries)
            except AWS_ERRORS as exc:
                # Refused entry by entry, whatever the cause; translating logs a configuration error.
                translate(exc, service="SQS")
                return dict.fromkeys(indexes, f"SQS refused the batch: {exc}")
            return {
                int(failure["Id"]): f"SQS refused the message: {failure.get('Code', '')} {failure.get('Message', '')}"
                for failure in answer.get("Failed", [])
            }

        refused: dict[int, str] = {}
        if len(batches) == 1:
            refused.update(send_batch(*batches[0]))
        elif batches:
            with ThreadPoolExecutor(max_workers=min(len(batches), 10)) as pool:
                for result in pool.map(lambda batch: send_batch(*batch), batches):
                    refused.update(result)
        return refused

    def depths(self) -> dict[Priority, QueueDepth]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]

        def attributes(url: str) -> dict[str, str]:
            if not url:
                return {}
            try:
                return dict(self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"])
            except AWS_ERRORS as exc:
                raise translate(
                    exc, service="SQS", unavailable="SQS did not answer with queue depths; retry the request"
                ) from exc

        priorities = list(Priority)
        urls = [self._urls.get(p, "") for p in priorities] + [self._dead_letter_urls.get(p, "") for p in priorities]
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            answers = list(pool.map(attributes, urls))
        depths = {}
        for index, priority in enumerate(priorities):
            main, dead = answers[index], answers[index + len(priorities)]
            depths[priority] = QueueDepth(
                visible=int(main.get(names[0], 0)),
                in_flight=int(main.get(names[1], 0)),
                delayed=int(main.get(names[2], 0)),
                dead_letter=int(dead.get(names[0], 0)) + int(dead.get(names[1], 0)),
            )
        return depths


@dataclass
class InMemoryTaskQueue:
    """Records what was sent; `refuse` makes chosen sends fail (fault injection in tests)."""

    sent: list[tuple[Priority, TaskMessage, int]] = field(default_factory=list)
    refuse: Any = None
    """None, or a callable (priority, message) -> reason or None."""
    dead_letter: dict[Priority, int] = field(default_factory=dict)
    """Messages in each priority's dead-letter queue."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, messages: Sequence[tuple[Priority, TaskMessage]], *, delay_seconds: int = 0) -> dict[int, str]:
        refused = {}
        with self._lock:
            for index, (priority, message) in enumerate(messages):
                reason = self.refuse(priority, message) if self.refuse else None
                if reason:
                    refused[index] = reason
                else:
                    self.sent.append((priority, message, delay_seconds))
        return refused

    def depths(self) -> dict[Priority, QueueDepth]:
        counts: dict[Priority, int] = {}
        for priority, _, _ in self.sent:
            counts[priority] = counts.get(priority, 0) + 1
        return {
            priority: QueueDepth(visible=counts.get(priority, 0), dead_letter=self.dead_letter.get(priority, 0))
            for priority in Priority
        }

    def drain(self) -> list[tuple[Priority, TaskMessage, int]]:
        with self._lock:
            taken, self.sent = self.sent, []
        return taken
