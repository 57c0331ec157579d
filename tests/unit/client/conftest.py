"""The client against the real app over the in-memory fakes (tests.fakes), through starlette's
TestClient (an httpx.Client), so no socket is opened."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from taskapi.client import TaskApiClient
from taskapi.http.app import create_app
from tests.fakes import Fakes

BASE_URL = "http://testserver"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def app_http(fakes: Fakes) -> TestClient:
    return TestClient(fakes.install(create_app()), raise_server_exceptions=False)


@pytest.fixture
def seen(app_http: TestClient) -> list[httpx.Request]:
    """Every request the app receives, in order."""
    requests: list[httpx.Request] = []
    app_http.event_hooks = {"request": [requests.append], "response": []}
    return requests


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api_key(fakes: Fakes) -> str:
    return fakes.api_key("acct_a")["X-API-Key"]


@pytest.fixture
def api(app_http: TestClient, api_key: str, sleeps: list[float]) -> TaskApiClient:
    return TaskApiClient(BASE_URL, api_key=api_key, http=app_http, sleep=sleeps.append)


Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler, sleeps: list[float], **options) -> TaskApiClient:
    """A client over httpx.MockTransport; rand is fixed at 0.5 so backoff waits are exact."""
    options.setdefault("api_key", "tk.acct_a.key.secret")
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return TaskApiClient("http://api.test/v1", http=http, sleep=sleeps.append, rand=lambda: 0.5, **options)
