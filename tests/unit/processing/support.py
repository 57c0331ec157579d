"""What the processing tests share: task bodies of every type, creating and delivering tasks over
the fakes, fault-injecting engines and stores, and SQS records as the event source mapping sends them.
The integration tests of processing use the same helpers against the moto adapters."""

from __future__ import annotations

import hashlib
import importlib.util
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from taskapi.auth.principal import Principal
from taskapi.engines.base import Artifact, ContentEngine, ProgressCallback
from taskapi.engines.registry import EngineRegistry
from taskapi.models.domain import Task, TaskType
from taskapi.models.requests import BulkCreateRequest
from taskapi.queueing.messages import TaskMessage
from taskapi.queueing.queues import TaskQueue
from taskapi.results import ResultStore
from taskapi.services import tasks as task_service
from taskapi.services.processing import Outcome, Processor
from taskapi.store.base import TaskRepository
from tests import factories
from tests.fakes import Fakes

ACCOUNT = "acct_a"
OTHER_ACCOUNT = "acct_b"


def animated_lesson(task_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_type": "animated_lesson",
        "request_data": {"story_prompt": "The water cycle: evaporation, condensation and rain."},
    }
    if task_id is not None:
        body["task_id"] = task_id
    body.update(overrides)
    return body


BODY_OF: dict[TaskType, Callable[..., dict[str, Any]]] = {
    TaskType.VIDEO: factories.video,
    TaskType.QUIZ: factories.quiz,
    TaskType.ANIMATED_LESSON: animated_lesson,
    TaskType.DOCUMENTATION: factories.documentation,
}

PRIMARY_FILE = {
    TaskType.VIDEO: "video.mp4",
    TaskType.QUIZ: "quiz.json",
    TaskType.ANIMATED_LESSON: "timeline.json",
    TaskType.DOCUMENTATION: "document.md",
}


def create(
    repository: TaskRepository,
    queue: TaskQueue,
    *bodies: dict[str, Any],
    account: str = ACCOUNT,
    **shared: Any,
) -> list[Task]:
    """Bulk-create through the service (which enqueues), as POST /api/tasks/bulk does."""
    request = BulkCreateRequest.model_validate(factories.bulk(*bodies, **shared))
    return task_service.create_bulk(repository, queue, principal(account), request)


def principal(account: str = ACCOUNT) -> Principal:
    return factories.principal(account_id=account)


def messages(fakes: Fakes) -> list[TaskMessage]:
    """Take every message off the in-memory queue."""
    return [message for _, message, _ in fakes.queue.drain()]


def deliver(fakes: Fakes, processor: Processor) -> list[Outcome]:
    """Deliver what is on the queue now (one round), answering each outcome."""
    return [processor.process(message) for message in messages(fakes)]


def event_messages(task: Task) -> list[str]:
    return [event.message for event in task.events]


def completions(task: Task) -> int:
    return event_messages(task).count("Task completed")


def registry_with(*engines: ContentEngine) -> EngineRegistry:
    """The built-in engines, with these registered over them (a processor's engine_for)."""
    registry = EngineRegistry()
    for engine in engines:
        registry.register(engine)
    return registry


def builtin(task_type: TaskType) -> ContentEngine:
    return EngineRegistry().get(task_type)


class Crash(BaseException):
    """The Lambda dies mid-run (timeout, out of memory): nothing in the processor catches this."""


class FaultyEngine:
    """A built-in engine behind a script of faults: each generate() takes the next fault and raises
    it (None means run for real); when the script runs out every call runs for real.

    `on_progress(percent)` is called inside the engine before each progress report is passed on to
    the processor: a test does its racing write (a cancel, a regenerate, a redelivery) from there."""

    def __init__(
        self,
        task_type: TaskType,
        faults: Iterable[BaseException | None] = (),
        *,
        always: BaseException | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        self.task_type = task_type
        self._inner = builtin(task_type)
        self._faults = list(faults)
        self._always = always
        self.on_progress = on_progress
        self.calls = 0
        self.reported: list[float] = []

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        self.calls += 1
        fault = self._faults.pop(0) if self._faults else self._always
        if fault is not None:
            raise fault

        def report(percent: float, note: str) -> None:
            if self.on_progress is not None:
                self.on_progress(percent)
            self.reported.append(percent)
            progress(percent, note)

        return self._inner.generate(request_data, report)


class HookedResults:
    """A ResultStore that calls `after_put()` once, right after the first put is stored: the moment
    between a stored result and the completion write."""

    def __init__(self, inner: ResultStore, after_put: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.after_put = after_put
        self.puts: list[str] = []
        self.deletes: list[str] = []

    def put(self, prefix: str, artifact: Artifact) -> str:
        key = self.inner.put(prefix, artifact)
        self.puts.append(prefix)
        hook, self.after_put = self.after_put, None
        if hook is not None:
            hook()
        return key

    def delete(self, prefix: str, artifact: Artifact) -> None:
        self.deletes.append(prefix)
        self.inner.delete(prefix, artifact)

    def url(self, key: str) -> str:
        return self.inner.url(key)


class RepositoryProxy:
    """Passes every call to the wrapped repository; a test overrides the methods it interleaves."""

    def __init__(self, inner: TaskRepository) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# ------------------------------------------------------------------ SQS records
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:taskapi-local-TasksNormalQueue"


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    source_arn: str = QUEUE_ARN,
    sent_timestamp: str = "1767225600000",
) -> dict[str, Any]:
    """One record of an SQS event as Lambda's event source mapping delivers it (sent_timestamp:
    epoch milliseconds; by default 2026-01-01, long ago for a message whose task is not stored)."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"receipt-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": sent_timestamp,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1767225600001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": "us-east-1",
    }


def sqs_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def load_function(name: str) -> Any:
    """functions/<name>/app.py as Lambda loads it (every function's module is called app)."""
    path = Path(__file__).resolve().parents[3] / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"{name}_handler_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
