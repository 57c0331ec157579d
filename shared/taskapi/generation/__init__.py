"""Model-backed generation: a provider (Amazon Bedrock) writes a task's content as a structured
document (a quiz, documentation sections, a lesson timeline, a video script) that the engines turn
into files. The documents are pydantic models; the same models give the tool schema the model is
asked to fill and validate what it answers.

    generated = generator.generate(GenerationRequest(kind="quiz", output=QuizDocument, ...))
    generated.document  # a validated QuizDocument
"""

from taskapi.generation.base import (
    Generated,
    GenerationError,
    GenerationRequest,
    Generator,
    Usage,
)

__all__ = ["Generated", "GenerationError", "GenerationRequest", "Generator", "Usage"]
