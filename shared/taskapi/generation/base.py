"""The contract between an engine and a generation provider.

An engine describes what it needs (instructions, the prompt, the pydantic model of the answer and
the checks the answer must pass beyond its schema); the provider returns a validated document with
what it cost, or raises GenerationError. Providers never see files, progress or tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from taskapi.errors import TaskApiError

Document = TypeVar("Document", bound=BaseModel)


def no_checks(_: Any) -> list[str]:
    return []


@dataclass(frozen=True)
class GenerationRequest(Generic[Document]):
    kind: str
    """What is written: "quiz", "documentation", "animated_lesson", "video_script" (names the tool)."""
    instructions: str
    """The system prompt: the task's settings in words (language, difficulty, counts, types)."""
    prompt: str
    """The user's prompt, as the task gives it."""
    output: type[Document]
    """The answer's model: its JSON schema is the tool's input schema, and it validates the answer."""
    check: Callable[[Document], list[str]] = no_checks
    """Rules the schema cannot say (exactly N questions, only the allowed types): each problem as a
    sentence; an empty list means the document is accepted."""
    max_output_tokens: int = 4096


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    def to_json(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True)
class Generated(Generic[Document]):
    document: Document
    provider: str
    model_id: str
    usage: Usage = field(default_factory=Usage)
    calls: int = 1
    """Model calls made, the repair included (retries of throttled calls are not counted)."""
    repaired: bool = False
    """The first answer failed validation and the model corrected it."""

    def summary(self) -> dict[str, Any]:
        """What result_summary records about the generation."""
        return {
            "provider": self.provider,
            "model_id": self.model_id,
            "usage": self.usage.to_json(),
            "model_calls": self.calls,
            "repaired": self.repaired,
        }


class GenerationError(TaskApiError):
    """The provider could not produce a valid document. permanent=True: the same input cannot
    succeed (refused by a guardrail, invalid after the repair, a model that is not enabled);
    otherwise a later try may. `details` go to the task's error_details (validation errors, stop
    reason, model id, usage so far): small, JSON-able, never the prompt or the model's whole answer."""

    def __init__(self, detail: str, *, permanent: bool, details: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.permanent = permanent
        self.details = details or {}


@runtime_checkable
class Generator(Protocol):
    provider: str
    """The provider's name as configuration says it ("bedrock")."""
    model_id: str

    def generate(self, request: GenerationRequest[Document]) -> Generated[Document]:
        """Raises GenerationError; never returns a document that fails request.output or request.check."""
        ...
