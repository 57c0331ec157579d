"""Request bodies of the HTTP API (and of every other entry point that creates tasks)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from taskapi.models import limits
from taskapi.models.domain import Priority, TaskType


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PydanticCustomError("url", "must be an absolute http(s) URL")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _empty_to_none(value: Any) -> Any:
    return None if value == "" else value


# The pattern documents (and enforces) what _http_url accepts: an http(s) scheme and a plain host.
URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][^\x00-\x20\x7f]*)?$"
HttpUrl = Annotated[str, Field(max_length=limits.MAX_URL_LENGTH, pattern=URL_PATTERN), AfterValidator(_http_url)]
Prompt = Annotated[
    str, Field(min_length=1, max_length=limits.MAX_PROMPT_LENGTH, pattern=r"\S"), AfterValidator(_not_blank)
]
ShortText = Annotated[str, Field(max_length=128)]
SourceId = Annotated[str, Field(min_length=1, max_length=limits.MAX_SOURCE_ID_LENGTH, pattern=limits.ID_PATTERN)]
SourceName = Annotated[str, Field(min_length=1, max_length=limits.MAX_SOURCE_NAME_LENGTH)]
TaskId = Annotated[str, Field(min_length=1, max_length=limits.MAX_TASK_ID_LENGTH, pattern=limits.ID_PATTERN)]


def _segments(value: Any) -> int | str:
    if value == "maximum" or (type(value) is int and 1 <= value <= limits.MAX_SEGMENTS):
        return value  # type: ignore[no-any-return]
    raise PydanticCustomError("segments", 'must be an integer from 1 to 50, or "maximum"')


Segments = Annotated[
    int | str,
    PlainValidator(_segments),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 50}, {"const": "maximum"}]}),
]
QuestionType = Literal["multiple_choice", "true_false"]
QUESTION_TYPES: tuple[str, ...] = ("multiple_choice", "true_false")
DEFAULT_NUM_QUESTIONS = {"easy": 5, "medium": 10, "hard": 15}


class _RequestData(BaseModel):
    """Fields the generators understand are type-checked; any other key passes through."""

    model_config = ConfigDict(extra="allow")

    story_prompt: Prompt
    language: ShortText | None = Field(default=None, description='Content language (default "English").')


class VideoRequestData(_RequestData):
    segments: Segments = Field(description='Number of segments, 1-50, or "maximum" to derive it from the prompt.')
    voice_name: ShortText | None = None
    voice_rate: Annotated[StrictFloat, Field(ge=0.25, le=4.0)] | Annotated[StrictInt, Field(ge=1, le=4)] | None = None
    image_style: ShortText | None = Field(default=None, description='Visual style ("realistic", "cartoon", ...).')
    resolution: Annotated[str, Field(pattern=r"^[0-9]{2,5}\*[0-9]{2,5}$")] | None = Field(
        default=None, description='Video resolution as "WIDTH*HEIGHT" (default "1920*1080").'
    )
    include_subtitles: StrictBool | None = None
    theme: ShortText | None = None
    logo_url: HttpUrl | None = None
    intro_video_url: HttpUrl | None = None
    outro_video_url: HttpUrl | None = None


class QuizRequestData(_RequestData):
    difficulty: Literal["easy", "medium", "hard"]
    num_questions: Annotated[StrictInt, Field(ge=1, le=limits.MAX_QUESTIONS)] | None = Field(
        default=None, description="1-50; by default easy 5, medium 10, hard 15."
    )
    question_types: Annotated[list[QuestionType], Field(min_length=1, max_length=len(QUESTION_TYPES))] | None = Field(
        default=None, description="Any of multiple_choice, true_false (default both)."
    )

    @field_validator("question_types")
    @classmethod
    def _once_each(cls, value: list[str] | None) -> list[str] | None:
        """A type named twice means the same as once."""
        return None if value is None else list(dict.fromkeys(value))


class AnimatedLessonRequestData(_RequestData):
    pass


class DocumentationRequestData(_RequestData):
    pass


class _TaskCreateBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: Annotated[TaskId | None, Field(description="Optional; missing or empty means a generated UUID4.")] = None
    priority: Priority = Priority.NORMAL
    task_source_name: SourceName | None = None
    task_source_id: SourceId | None = None
    task_source_group_id: SourceId | None = None

    @field_validator("task_id", "task_source_name", "task_source_id", "task_source_group_id", mode="before")
    @classmethod
    def _empty_is_missing(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @model_validator(mode="after")
    def _bounded_request_data(self) -> _TaskCreateBase:
        data = getattr(self, "request_data", None)
        if data is not None:
            try:
                text = json.dumps(data.model_dump(exclude_unset=True), separators=(",", ":"), allow_nan=False)
            except ValueError as exc:
                raise PydanticCustomError(
                    "request_data_not_json", "request_data must be plain JSON: NaN and Infinity are not numbers"
                ) from exc
            size = len(text.encode())
            if size > limits.MAX_REQUEST_DATA_BYTES:
                raise PydanticCustomError(
                    "request_data_too_large",
                    "request_data is {size} bytes as JSON; the limit is {limit}",
                    {"size": size, "limit": limits.MAX_REQUEST_DATA_BYTES},
                )
        return self

    def request_data_dict(self) -> dict[str, Any] | None:
        data: BaseModel | None = getattr(self, "request_data", None)
        return None if data is None else data.model_dump(exclude_unset=True)


class VideoTaskCreate(_TaskCreateBase):
    task_type: Literal[TaskType.VIDEO]
    request_data: VideoRequestData | None = None


class QuizTaskCreate(_TaskCreateBase):
    task_type: Literal[TaskType.QUIZ]
    request_data: QuizRequestData | None = None


class AnimatedLessonTaskCreate(_TaskCreateBase):
    task_type: Literal[TaskType.ANIMATED_LESSON]
    request_data: AnimatedLessonRequestData | None = None


class DocumentationTaskCreate(_TaskCreateBase):
    task_type: Literal[TaskType.DOCUMENTATION]
    request_data: DocumentationRequestData | None = None


TaskCreate = Annotated[
    VideoTaskCreate | QuizTaskCreate | AnimatedLessonTaskCreate | DocumentationTaskCreate,
    Field(discriminator="task_type"),
]


class SharedVideoSettings(BaseModel):
    """Applied to every video task of a request unless the task's request_data sets its own."""

    logo_url: HttpUrl | None = None
    intro_video_url: HttpUrl | None = None
    outro_video_url: HttpUrl | None = None

    def apply_to(self, request_data: dict[str, Any]) -> dict[str, Any]:
        merged = dict(request_data)
        for name in SharedVideoSettings.model_fields:
            value = getattr(self, name)
            if value is not None and merged.get(name) is None:
                merged[name] = value
        return merged


TOO_MANY_TASKS = "too_many_tasks"


class BulkCreateRequest(SharedVideoSettings):
    model_config = ConfigDict(extra="forbid")

    tasks: Annotated[
        list[TaskCreate],
        Field(min_length=1, json_schema_extra={"maxItems": limits.MAX_BULK_TASKS}),
    ]

    @field_validator("tasks", mode="before")
    @classmethod
    def _at_most_a_hundred(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > limits.MAX_BULK_TASKS:
            raise PydanticCustomError(TOO_MANY_TASKS, "Cannot create more than 100 tasks at once")
        return value

    @field_validator("tasks", mode="after")
    @classmethod
    def _ids_unique(cls, tasks: list[_TaskCreateBase]) -> list[_TaskCreateBase]:
        seen: dict[str, int] = {}
        for index, task in enumerate(tasks):
            if task.task_id is None:
                continue
            if task.task_id in seen:
                raise PydanticCustomError(
                    "duplicate_task_id",
                    "task_id '{task_id}' of tasks[{index}] repeats tasks[{first}]",
                    {"task_id": task.task_id, "index": index, "first": seen[task.task_id]},
                )
            seen[task.task_id] = index
        return tasks


TaskIdList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=limits.MAX_TASK_ID_LENGTH)]],
    Field(
        description="Task ids of the caller's account (at most 100); repeats count once.",
        # Documented only: the service answers 400 / 413 with the reference's own texts.
        json_schema_extra={"minItems": 1, "maxItems": limits.MAX_BULK_TASKS},
    ),
]


class BulkCancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_ids: TaskIdList
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "Bulk cancellation requested"


class BulkRegenerateRequest(SharedVideoSettings):
    model_config = ConfigDict(extra="forbid")

    task_ids: TaskIdList
    reset_to_pending: StrictBool = Field(
        default=True,
        description=(
            "true: progress, result and error are cleared at once. false: the previous result_url, "
            "progress and error stay visible until the new attempt replaces them."
        ),
    )
    force: StrictBool = Field(default=False, description="Regenerate tasks that are PROCESSING too (their run stops).")
