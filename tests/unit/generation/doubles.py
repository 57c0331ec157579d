"""A generation provider double: answers scripted documents as a model would, holding to the
Generator contract (a document that fails the request's schema or checks is never returned), and
records every GenerationRequest it was given."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from taskapi.generation.base import Document as DocumentT
from taskapi.generation.base import Generated, GenerationError, GenerationRequest, Usage
from taskapi.generation.documents import QuizDocument

USAGE = Usage(input_tokens=1200, output_tokens=640)
Answer = BaseModel | dict[str, Any] | BaseException


class ScriptedGenerator:
    """provider "bedrock", model "test-model". Each generate() takes the next scripted answer (the
    last one is repeated): a document (a pydantic model or its dict) is validated with the request's
    output model and check, as the real provider validates the model's answer, and returned with
    `usage`; a document that fails them raises GenerationError(permanent=True) with the problems
    in details["validation_errors"]; an exception is raised as it is."""

    def __init__(
        self, *answers: Answer, provider: str = "bedrock", model_id: str = "test-model", usage: Usage = USAGE
    ) -> None:
        if not answers:
            raise ValueError("script at least one answer")
        self.provider = provider
        self.model_id = model_id
        self.usage = usage
        self._answers = list(answers)
        self.requests: list[GenerationRequest[Any]] = []

    @property
    def request(self) -> GenerationRequest[Any]:
        """The last request received."""
        return self.requests[-1]

    def generate(self, request: GenerationRequest[DocumentT]) -> Generated[DocumentT]:
        self.requests.append(request)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, BaseException):
            raise answer
        raw = answer.model_dump() if isinstance(answer, BaseModel) else answer
        try:
            document = request.output.model_validate(raw)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise GenerationError(
                "the answer does not fit the schema", permanent=True, details={"validation_errors": problems}
            ) from exc
        problems = request.check(document)
        if problems:
            raise GenerationError(
                "the answer breaks the task's rules", permanent=True, details={"validation_errors": problems}
            )
        return Generated(document=document, provider=self.provider, model_id=self.model_id, usage=self.usage)


class ProgressRecorder:
    """A progress callback recording (percent, message) of every report."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, percent: float, message: str) -> None:
        self.calls.append((percent, message))

    @property
    def percents(self) -> list[float]:
        return [percent for percent, _ in self.calls]


# ------------------------------------------------------------------ sample answers
TEXT = (
    "Photosynthesis is the process by which green plants turn light into chemical energy. "
    "It takes place mostly in the leaves, inside small structures called chloroplasts. "
    "The plant takes in carbon dioxide from the air and water from the soil. "
    "Oxygen is released into the air as a by-product of the process."
)
"""A text (complete sentences): quiz questions on it carry the sentence they are drawn from."""


def mc(question: str, options: list[str], answer: str, explanation: str, source: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "multiple_choice",
        "question": question,
        "options": options,
        "answer": answer,
        "explanation": explanation,
    }
    if source is not None:
        entry["source_sentence"] = source
    return entry


def tf(statement: str, answer: bool, explanation: str, source: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "true_false", "question": statement, "answer": answer, "explanation": explanation}
    if source is not None:
        entry["source_sentence"] = source
    return entry


QUESTIONS = [
    mc(
        "Where in the plant does photosynthesis mostly take place?",
        ["The roots", "The leaves", "The flowers", "The seeds"],
        "The leaves",
        "The text says it takes place mostly in the leaves.",
        "It takes place mostly in the leaves, inside small structures called chloroplasts.",
    ),
    mc(
        "What does the plant take in from the air?",
        ["Oxygen", "Nitrogen", "Carbon dioxide", "Water vapour"],
        "Carbon dioxide",
        "Carbon dioxide comes from the air; water comes from the soil.",
        "The plant takes in carbon dioxide from the air and water from the soil.",
    ),
    tf(
        "Oxygen is released as a by-product of photosynthesis.",
        True,
        "The last sentence says oxygen is released as a by-product.",
        "Oxygen is released into the air as a by-product of the process.",
    ),
]


def quiz_document(questions: list[dict[str, Any]] | None = None, title: str = "Photosynthesis quiz") -> QuizDocument:
    return QuizDocument.model_validate({"title": title, "questions": QUESTIONS if questions is None else questions})
