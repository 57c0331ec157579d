"""Typed configuration, read once from the environment that template.yaml (or the local stack) sets."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The documented local-only HS256 secret. It is refused when TASKAPI_ENVIRONMENT=aws.
DEV_JWT_SECRET = "taskapi-local-development-only-secret"  # noqa: S105 - a documented development default


class Settings(BaseSettings):
    """Every knob of the service. Environment variables are prefixed with TASKAPI_."""

    model_config = SettingsConfigDict(env_prefix="TASKAPI_", extra="ignore", frozen=True)

    environment: Literal["local", "aws"] = "local"
    tasks_table: str = "taskapi-local-TasksTable"
    api_keys_table: str = "taskapi-local-ApiKeysTable"
    counters_table: str = "taskapi-local-CountersTable"
    """Counts of tasks per account, group and source by status, kept from the tasks table's stream."""
    root_path: str = ""

    # Queues: one per priority, each with a dead-letter queue (template.yaml sets the URLs).
    queue_url_urgent: str = ""
    queue_url_high: str = ""
    queue_url_normal: str = ""
    queue_url_low: str = ""
    dlq_url_urgent: str = ""
    dlq_url_high: str = ""
    dlq_url_normal: str = ""
    dlq_url_low: str = ""
    results_bucket: str = "taskapi-local-resultsbucket"
    uploads_table: str = "taskapi-local-UploadsTable"
    uploads_bucket: str = "taskapi-local-uploadsbucket"
    upload_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    """Largest file a presigned upload accepts."""
    upload_url_expiry_seconds: int = Field(default=900, ge=60, le=7 * 86400)
    processor_function: str = "taskapi-local-processor"

    # Push (issue 16): webhook endpoints and deliveries, the account's events for 7 days, the
    # delivery queue and the EventBridge bus of task state changes.
    webhooks_table: str = "taskapi-local-WebhooksTable"
    events_table: str = "taskapi-local-EventsTable"
    webhook_queue_url: str = ""
    event_bus_name: str = ""
    """The custom EventBridge bus task state changes go to; empty: none."""
    webhook_max_endpoints: int = Field(default=10, ge=1, le=100)
    webhook_secret_grace_seconds: int = Field(default=86400, ge=0, le=30 * 86400)
    """After a rotation, deliveries are signed with the old secret too for this long."""
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=30)
    webhook_retry_delays_seconds: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    """Waits before each retry of a failed delivery (about 28 h in all, then it is failed); a JSON
    list in TASKAPI_WEBHOOK_RETRY_DELAYS_SECONDS (the local stack's drills shorten it)."""
    local_mappings_parameter_prefix: str = "/taskapi-local/event-source-mappings"
    """Locally (no Lambda service) the pollers' mapping states live in SSM parameters here."""

    presign_expiry_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    retry_delay_seconds: int = Field(default=30, ge=0, le=900)
    """Delay before an engine failure's next try: this many seconds times the tries so far."""
    progress_interval_seconds: float = Field(default=5, ge=0, le=900)
    """At most one progress write per this many seconds of a run (each write costs DynamoDB write
    units; completion is always written, and a cancel stops the run at its next write)."""
    reconcile_pending_after_seconds: int = Field(default=120, ge=0)
    """A PENDING task with request_data this old is enqueued by the reconciler."""
    requeue_queued_after_seconds: int = Field(default=900, ge=0)
    """requeue-pending re-sends QUEUED tasks this old: their message is presumed lost."""
    reconcile_batch_limit: int = Field(default=500, ge=1, le=10_000)
    """Most tasks of one state a reconciler run handles (the rest wait for the next minute)."""

    stack_name: str = "taskapi-local"
    """Names the usage plans "<stack_name>-<plan>" (template.yaml and the local stack alike)."""
    default_plan: Literal["free", "standard", "enterprise"] = "free"
    """The plan of an account that no API key or enrolment puts on another."""
    max_unfinished_free: int = Field(default=1_000, ge=1)
    max_unfinished_standard: int = Field(default=20_000, ge=1)
    max_unfinished_enterprise: int = Field(default=200_000, ge=1)
    """Most unfinished tasks (PENDING + QUEUED + PROCESSING) an account may hold, per plan: bulk
    create beyond it answers 429 and writes nothing (usage plans throttle requests, not work)."""
    ceiling_retry_after_seconds: int = Field(default=60, ge=1, le=3600)

    quiz_provider: Literal["builtin", "bedrock"] = "builtin"
    documentation_provider: Literal["builtin", "bedrock"] = "builtin"
    animated_lesson_provider: Literal["builtin", "bedrock"] = "builtin"
    video_script_provider: Literal["builtin", "bedrock"] = "builtin"
    """Who writes each task type's content: the builtin engines (offline, deterministic; the
    default everywhere) or a model of Amazon Bedrock (template parameters QuizProvider, ...)."""
    quiz_model_id: str = ""
    documentation_model_id: str = ""
    animated_lesson_model_id: str = ""
    video_script_model_id: str = ""
    """The id Bedrock's Converse is called with for each task type: a foundation model id or an
    inference profile id (template.yaml sets "<geography>.<model id>"). Required where the provider
    is bedrock."""
    allow_provider_override: bool = False
    """Whether a task's request_data.provider may pick another provider than the deployment's."""
    generation_time_budget_seconds: float = Field(default=300, gt=0, le=840)
    """How long one model generation may take, retries of throttled calls included (the processor
    times out at 900 s)."""

    narration_provider: Literal["espeak", "polly"] = "espeak"
    """Who narrates video tasks: eSpeak NG offline (the local stack, tests; x86_64 only) or Amazon
    Polly (the template's default in AWS)."""
    polly_engine: Literal["neural", "standard", "generative", "long-form"] = "neural"
    media_fetch_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    """Deadline of one fetch of a logo or an intro/outro video (connect + read)."""
    media_logo_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    media_clip_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    """Largest intro or outro video a task may name."""

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "taskapi-local"
    jwt_audience: str = "taskapi"
    jwt_jwks_url: str = ""
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    @model_validator(mode="after")
    def _bedrock_needs_a_model(self) -> Self:
        """A task type whose provider is bedrock cannot run without the model it calls."""
        model_ids = generation_model_ids(self)
        for task_type, provider in generation_providers(self).items():
            if provider == "bedrock" and not model_ids[task_type]:
                prefix = "TASKAPI_" + ("VIDEO_SCRIPT" if task_type == "video" else task_type.upper())
                raise ValueError(
                    f"{prefix}_PROVIDER=bedrock needs {prefix}_MODEL_ID: the Bedrock model or inference "
                    f"profile id that {task_type} tasks are generated with"
                )
        return self

    @property
    def bearer_algorithm(self) -> Literal["RS256", "HS256"] | None:
        """RS256 when a JWKS URL is configured; HS256 only with a secret fit for the environment."""
        if self.jwt_jwks_url:
            return "RS256"
        if self.environment == "aws" and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            return None
        return "HS256"


PLANS: tuple[str, ...] = ("free", "standard", "enterprise")


def max_unfinished_tasks(settings: Settings, plan: str | None) -> int:
    limits = {
        "free": settings.max_unfinished_free,
        "standard": settings.max_unfinished_standard,
        "enterprise": settings.max_unfinished_enterprise,
    }
    return limits.get(plan or settings.default_plan, limits[settings.default_plan])


def usage_plan_name(settings: Settings, plan: str) -> str:
    return f"{settings.stack_name}-{plan}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def queue_urls(settings: Settings) -> dict[str, str]:
    """Queue URL by priority name."""
    return {
        "urgent": settings.queue_url_urgent,
        "high": settings.queue_url_high,
        "normal": settings.queue_url_normal,
        "low": settings.queue_url_low,
    }


def dead_letter_queue_urls(settings: Settings) -> dict[str, str]:
    return {
        "urgent": settings.dlq_url_urgent,
        "high": settings.dlq_url_high,
        "normal": settings.dlq_url_normal,
        "low": settings.dlq_url_low,
    }


def generation_providers(settings: Settings) -> dict[str, str]:
    """The deployment's generation provider ("builtin" or "bedrock") by task type."""
    return {
        "quiz": settings.quiz_provider,
        "documentation": settings.documentation_provider,
        "animated_lesson": settings.animated_lesson_provider,
        "video": settings.video_script_provider,
    }


def generation_model_ids(settings: Settings) -> dict[str, str]:
    """The model or inference profile id Converse is called with, by task type ("" when unset)."""
    return {
        "quiz": settings.quiz_model_id,
        "documentation": settings.documentation_model_id,
        "animated_lesson": settings.animated_lesson_model_id,
        "video": settings.video_script_model_id,
    }


def generation_provider(settings: Settings, task_type: str) -> str:
    """The deployment's generation provider of one task type ("video" is the video script's)."""
    return _of_task_type(generation_providers(settings), task_type)


def generation_model_id(settings: Settings, task_type: str) -> str:
    """The model id one task type's generation calls ("video" is the video script's)."""
    return _of_task_type(generation_model_ids(settings), task_type)


def _of_task_type(values: dict[str, str], task_type: str) -> str:
    if task_type not in values:
        raise ValueError(f"Unknown task type {task_type!r}: choose one of {', '.join(values)}")
    return values[task_type]
