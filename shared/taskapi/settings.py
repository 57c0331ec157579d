"""Typed configuration, read once from the environment that template.yaml (or the local stack) sets."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The documented local-only HS256 secret. It is refused when TASKAPI_ENVIRONMENT=aws.
DEV_JWT_SECRET = "taskapi-local-development-only-secret"  # noqa: S105 - a documented development default


class Settings(BaseSettings):
    """Every knob of the service. Environment variables are prefixed with TASKAPI_."""

    model_config = SettingsConfigDict(env_prefix="TASKAPI_", extra="ignore", frozen=True)

    environment: Literal["local", "aws"] = "local"
    tasks_table: str = "taskapi-local-TasksTable"
    api_keys_table: str = "taskapi-local-ApiKeysTable"
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
    local_mappings_parameter_prefix: str = "/taskapi-local/event-source-mappings"
    """Locally (no Lambda service) the pollers' mapping states live in SSM parameters here."""

    presign_expiry_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    retry_delay_seconds: int = Field(default=30, ge=0, le=900)
    """Delay before an engine failure's next try: this many seconds times the tries so far."""
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
