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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
