"""Request bodies of the HTTP API (and of every other entry point that creates tasks)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

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
# Optional for the model, never null on the wire: the schema is the prompt's, and null is refused.
OptionalPrompt = Annotated[
    Prompt | None,
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": limits.MAX_PROMPT_LENGTH, "pattern": r"\S"}),
]
ShortText = Annotated[str, Field(max_length=128)]
_TASK_ID = re.compile(limits.ID_PATTERN)
_SOURCE_TEXT = re.compile(limits.SOURCE_TEXT_PATTERN)


def _task_id(value: str) -> str:
    if not _TASK_ID.fullmatch(value):  # fullmatch: "$" alone would let a final line break through
        raise PydanticCustomError(
            "task_id_characters", "a task_id may contain only {characters}", {"characters": limits.ID_CHARACTERS}
        )
    if value in limits.RESERVED_TASK_IDS:
        raise PydanticCustomError(
            "task_id_reserved",
            "'{task_id}' names an endpoint (/api/tasks/{task_id}); choose another task_id",
            {"task_id": value},
        )
    return value


def _source_text(value: str) -> str:
    if not _SOURCE_TEXT.fullmatch(value):
        raise PydanticCustomError("control_characters", "must not contain control characters (tabs, line breaks...)")
    return value


# The patterns are documented in the schema; the validators enforce them with a message in words.
SourceId = Annotated[
    str,
    Field(
        min_length=1, max_length=limits.MAX_SOURCE_ID_LENGTH, json_schema_extra={"pattern": limits.SOURCE_TEXT_PATTERN}
    ),
    AfterValidator(_source_text),
]
SourceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.MAX_SOURCE_NAME_LENGTH,
        json_schema_extra={"pattern": limits.SOURCE_TEXT_PATTERN},
    ),
    AfterValidator(_source_text),
]
TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.MAX_TASK_ID_LENGTH,
        json_schema_extra={"pattern": limits.ID_PATTERN, "not": {"enum": sorted(limits.RESERVED_TASK_IDS)}},
    ),
    AfterValidator(_task_id),
]


_EVEN_SIDE = r"(?:1[68]|[2-9][02468]|[1-9][0-9][02468]|[1-3][0-9]{2}[02468]|40[0-8][02468]|409[0246])"
"""An even number from 16 to 4096 (H.264 in yuv420p halves both sides for colour)."""
_RESOLUTION = re.compile(rf"{_EVEN_SIDE}\*{_EVEN_SIDE}")


def _resolution(value: str) -> str:
    if not _RESOLUTION.fullmatch(value):
        raise PydanticCustomError(
            "resolution", 'must be "WIDTH*HEIGHT", each side an even number of pixels from 16 to 4096 ("1280*720")'
        )
    return value


Resolution = Annotated[
    str, Field(json_schema_extra={"pattern": f"^{_RESOLUTION.pattern}$"}), AfterValidator(_resolution)
]


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


_BUILT_IN_ERRORS = frozenset(get_args(ErrorType))


def _as_raised(error: ErrorDetails) -> InitErrorDetails:
    """An error pydantic reported, to raise again as it was (a custom one keeps its message)."""
    loc, value = tuple(error["loc"]), error.get("input")
    if error["type"] in _BUILT_IN_ERRORS:
        return InitErrorDetails(type=error["type"], loc=loc, input=value, ctx=error.get("ctx", {}))
    return InitErrorDetails(type=PydanticCustomError(error["type"], error["msg"]), loc=loc, input=value)


def _explain_missing(
    model: type[BaseModel], data: Any, handler: ModelWrapValidatorHandler[Any], required: dict[str, str]
) -> Any:
    """Validate, then say in words what each absent required field is ("Field required: a video
    task's request_data needs segments, ..."). Every other error is reported as pydantic made it."""
    absent = [name for name in required if not isinstance(data, dict) or data.get(name) is None]
    errors: list[ErrorDetails] = []
    try:
        validated = handler(data)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not (e["type"] == "missing" and tuple(e["loc"]) in {(n,) for n in absent})]
        validated = None
    # A field given as null already has its own error (wrong type): one error per field.
    absent = [name for name in absent if not any(tuple(e["loc"])[:1] == (name,) for e in errors)]
    if not absent and validated is not None:
        return validated
    hint = ""
    if isinstance(data, dict) and "content" in data:
        hint = "; content is read as the prompt only for documentation and animated_lesson tasks"
    explained = [
        InitErrorDetails(
            type=PydanticCustomError(
                "missing",
                "Field required: {what}{hint}",
                {"what": required[name], "hint": hint if name == "story_prompt" else ""},
            ),
            loc=(name,),
            input=data,
        )
        for name in absent
    ]
    raise ValidationError.from_exception_data(model.__name__, [*explained, *(_as_raised(e) for e in errors)])


class _RequestData(BaseModel):
    """Fields the generators understand are type-checked; any other key passes through."""

    model_config = ConfigDict(extra="allow")

    language: ShortText | None = Field(default=None, description='Content language (default "English").')
    provider: Literal["builtin", "bedrock"] | None = Field(
        default=None,
        description="Who writes the content: the built-in engine or a model through Amazon Bedrock. By default "
        "the deployment's choice for the task type; another value only where the deployment lets tasks choose.",
    )


class _PromptRequired(_RequestData):
    story_prompt: Prompt


class _PromptOrContent(_RequestData):
    """The reference's authentication examples send the prompt as `content`: these types take
    either (stored as given; `prompt` is what the engines read)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["story_prompt"]}, {"required": ["content"]}]})

    story_prompt: OptionalPrompt = None
    content: OptionalPrompt = Field(default=None, description="The prompt, when story_prompt is absent.")

    @field_validator("story_prompt", "content")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        # Runs only for a value the body gave: a prompt sent as null is no prompt.
        if value is None:
            raise PydanticCustomError("string_type", "Input should be a valid string")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _a_prompt(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if isinstance(data, dict) and data.get("content") is not None:
            return handler(data)
        return _explain_missing(cls, data, handler, {"story_prompt": "send the prompt as story_prompt (or as content)"})

    @property
    def prompt(self) -> str:
        return self.story_prompt or self.content or ""


class VideoRequestData(_PromptRequired):
    segments: Segments = Field(description='Number of segments, 1-50, or "maximum" to derive it from the prompt.')
    voice_name: ShortText | None = None
    voice_rate: Annotated[StrictFloat, Field(ge=0.25, le=4.0)] | Annotated[StrictInt, Field(ge=1, le=4)] | None = None
    image_style: ShortText | None = Field(default=None, description='Visual style ("realistic", "cartoon", ...).')
    resolution: Resolution | None = Field(
        default=None,
        description='Video resolution as "WIDTH*HEIGHT", each side an even number of pixels from 16 to 4096 '
        '(default "1920*1080").',
    )
    include_subtitles: StrictBool | None = None
    theme: ShortText | None = None
    logo_url: HttpUrl | None = None
    intro_video_url: HttpUrl | None = None
    outro_video_url: HttpUrl | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _plainly_missing(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        return _explain_missing(
            cls,
            data,
            handler,
            {
                "story_prompt": "a video task's request_data needs story_prompt, the text or topic to narrate",
                "segments": 'a video task\'s request_data needs segments, an integer from 1 to 50 or "maximum"',
            },
        )


class QuizRequestData(_PromptRequired):
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


class AnimatedLessonRequestData(_PromptOrContent):
    pass


class DocumentationRequestData(_PromptOrContent):
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


class TaskUpdate(BaseModel):
    """PATCH /api/tasks/{task_id}: the fields to change, at least one. A field left out keeps its
    value. request_data is checked against the stored task's type by the service (the body cannot
    know the type), with the create models and their 24 KiB bound."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    request_data: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None,
        description="The task type's request_data, as on create; only while the task is PENDING. "
        "The task is queued at once.",
    )
    priority: Priority | SkipJsonSchema[None] = Field(
        default=None, description="Not while PROCESSING; a QUEUED task is sent again on the new priority's queue."
    )
    task_source_name: SourceName | None = Field(default=None, description="null clears it.")
    task_source_id: SourceId | None = Field(default=None, description="null clears it.")
    task_source_group_id: SourceId | None = Field(default=None, description="null clears it.")

    @field_validator("request_data", "priority")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for a value the body gave: null cannot remove request_data or a priority.
        if value is None:
            raise PydanticCustomError("not_null", "may not be null; leave the field out to keep its value")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> TaskUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "empty_update",
                "name at least one field to change: request_data, priority, task_source_name, "
                "task_source_id or task_source_group_id",
            )
        return self
