"""The contract between a content engine and the processor that runs it.

An engine turns a task's request_data into an Artifact (a few files and a small summary). It reports
progress through a callback the processor supplies; that callback may raise (the task was cancelled,
the Lambda is about to time out) and engines let such exceptions propagate untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from taskapi.errors import TaskApiError
from taskapi.models.domain import TaskType

ProgressCallback = Callable[[float, str], None]
"""Called as progress(percent, message) with 0 < percent < 100, never decreasing. The processor
writes 100 itself once the artifact is stored."""

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class EngineError(TaskApiError):
    """Generation failed. permanent=True means the same input can never succeed (fail the task now);
    otherwise the processor may retry. `details` (small, JSON-able: validation errors, a model's stop
    reason) are kept in the task's error_details."""

    def __init__(self, detail: str, *, permanent: bool, details: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.permanent = permanent
        self.details = details or {}


@dataclass(frozen=True)
class ArtifactFile:
    name: str
    """A plain file name (becomes the last part of an object key): no directories."""
    content_type: str
    body: bytes

    def __post_init__(self) -> None:
        if not _FILE_NAME.match(self.name) or ".." in self.name:
            raise ValueError(f"artifact file name {self.name!r} must be a plain file name")


@dataclass(frozen=True)
class Artifact:
    files: tuple[ArtifactFile, ...]
    primary: str
    """Name of the main file, the one a result_url points to."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Small JSON-able facts about the result (counts, durations), stored on the task."""

    def __post_init__(self) -> None:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError(f"artifact file names repeat: {names}")
        if self.primary not in names:
            raise ValueError(f"primary file {self.primary!r} is not among {names}")

    def file(self, name: str) -> ArtifactFile:
        for candidate in self.files:
            if candidate.name == name:
                return candidate
        raise KeyError(f"artifact has no file {name!r}")

    @property
    def primary_file(self) -> ArtifactFile:
        return self.file(self.primary)


@runtime_checkable
class ContentEngine(Protocol):
    task_type: TaskType

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        """Build the artifact for one task. Raises EngineError for bad input or failed generation."""
        ...
