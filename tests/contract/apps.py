"""The app under contract test: create_app() with its dependencies overridden, over the in-memory
fakes or over the real DynamoDB adapter on moto (tables from template.yaml), and one valid API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
from fastapi import FastAPI
from moto import mock_aws

from infra.provision import provision
from infra.template import LocalNames
from taskapi.auth.api_keys import generate_key
from taskapi.http.app import create_app
from taskapi.http.deps import get_repository
from taskapi.settings import Settings, get_settings
from taskapi.store.base import TaskRepository
from taskapi.store.dynamodb import DynamoTaskRepository
from taskapi.store.memory import InMemoryTaskRepository
from tests.fakes import Fakes

ACCOUNT = "acct_contract"


@dataclass
class AppUnderTest:
    """An app whose repository can be swapped after the app (and the schema built from it) exist."""

    app: FastAPI
    api_key: str
    repository: TaskRepository = field(default_factory=InMemoryTaskRepository)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


def build_app() -> AppUnderTest:
    """create_app() over the in-memory fakes of every adapter, with a key store holding one valid key."""
    app = create_app()
    fakes = Fakes()
    fakes.install(app)
    key, record = generate_key(ACCOUNT)
    fakes.keys.put(record)
    under_test = AppUnderTest(app=app, api_key=key, repository=fakes.repo)
    # A deployment that lets tasks choose their provider: every request the schema allows is one
    # some deployment accepts (on the default one, request_data.provider "bedrock" is a 422).
    model = "anthropic.claude-haiku-4-5-20251001-v1:0"
    settings = Settings(
        allow_provider_override=True,
        quiz_model_id=model,
        documentation_model_id=model,
        animated_lesson_model_id=model,
        video_script_model_id=model,
    )
    app.dependency_overrides[get_settings] = lambda: settings
    # Looked up per request, so that a fixture can point the app at another repository.
    app.dependency_overrides[get_repository] = lambda: under_test.repository
    return under_test


@contextmanager
def dynamodb_repository() -> Iterator[DynamoTaskRepository]:
    """The real DynamoDB adapter on moto, on the tables template.yaml declares."""
    with mock_aws():
        session = boto3.Session(region_name=LocalNames().region)
        refs = provision(session, LocalNames())
        yield DynamoTaskRepository(session.client("dynamodb"), refs["TasksTable"])
