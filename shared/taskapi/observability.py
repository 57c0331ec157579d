"""Powertools Logger, Metrics and Tracer, shared by every entry point (service name and namespace
come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE).

Tracing (X-Ray, `Tracing: Active` in the template) is on only inside Lambda without
POWERTOOLS_TRACE_DISABLED. Elsewhere — the local stack, tests, the CLI — the tracer gets a
provider that records nothing, so its decorators cost a context manager and the X-Ray SDK
(about half a second of imports) is never loaded."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

if TYPE_CHECKING:
    from taskapi.models.domain import Task

logger = Logger(service="taskapi")
metrics = Metrics(namespace="TaskApi", service="taskapi")


def task_metric(name: str, unit: MetricUnit | str, value: float, task: Task, **dimensions: str) -> None:
    """One metric with the dimensions service, task_type and priority (and `dimensions`, e.g.
    reason), written at once as its own EMF line: dimensions added to the shared `metrics` would
    land on every other metric of the handler's flush (TasksCompleted would be split by type).
    Nothing is written where POWERTOOLS_METRICS_DISABLED switches metrics off."""
    if is_metrics_disabled():
        return
    with single_metric(
        name=name,
        unit=MetricUnit(unit),
        value=value,
        namespace=metrics.namespace,
        default_dimensions={
            "service": str(metrics.service),
            "task_type": task.task_type.value,
            "priority": task.priority.value,
            **dimensions,
        },
    ):
        pass


def seconds_between(start: str | None, end: str | datetime) -> float:
    """Seconds from an ISO 8601 timestamp (as stored on a task) to a later one, never negative
    (clocks of two writers may disagree by a little); 0 when `start` is unknown."""
    if not start:
        return 0.0
    finish = end if isinstance(end, datetime) else _parse(end)
    return max((finish - _parse(start)).total_seconds(), 0.0)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


class _Segment(BaseSegment):
    """A segment nobody records."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        return None


class UntracedProvider(BaseProvider):
    """The tracer's provider where no X-Ray daemon listens: every call is a no-op."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _Segment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _Segment()

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None


def tracing_enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """In Lambda (not SAM's local emulation) and not switched off by POWERTOOLS_TRACE_DISABLED."""
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    in_lambda = bool(environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not environ.get("AWS_SAM_LOCAL")
    return in_lambda and not disabled


tracer = (
    Tracer(service="taskapi")
    if tracing_enabled()
    else Tracer(service="taskapi", disabled=True, provider=UntracedProvider())
)
# The tracer logs every exception leaving a traced call, with its traceback. Most are answers
# (NotFound is a 404, Conflict a 409), and the rest are logged once by whoever handles them (the
# HTTP error mapping, the batch processor): the trace keeps the error, the log does not repeat it.
logging.getLogger("aws_lambda_powertools.tracing.tracer").setLevel(logging.CRITICAL)
