"""Cheap re-validation of request_data inside an engine, against the same models the API uses.

The API validated request_data when the task was created, but a stored task can predate a model
change or come from another producer; an engine must answer bad input with a permanent EngineError,
never with a KeyError halfway through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from taskapi.engines.base import EngineError
from taskapi.engines.language import is_english

__all__ = ["DEFAULT_LANGUAGE", "is_english", "language_of", "parse_request"]

DEFAULT_LANGUAGE = "English"

Model = TypeVar("Model", bound=BaseModel)


def parse_request(model: type[Model], request_data: Mapping[str, Any] | None) -> Model:
    if not isinstance(request_data, Mapping):
        raise EngineError("request_data is missing or not an object", permanent=True)
    try:
        return model.model_validate(dict(request_data))
    except ValidationError as exc:
        # Name the fields and what is wrong, never echo the input (a prompt can be 20k characters).
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'request_data'}: {error['msg']}"
            for error in exc.errors()
        )
        raise EngineError(f"invalid request_data: {problems}", permanent=True) from exc


def language_of(value: str | None) -> str:
    return value.strip() if value and value.strip() else DEFAULT_LANGUAGE
