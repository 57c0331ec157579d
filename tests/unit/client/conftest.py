"""The client against the real app over the in-memory fakes (tests.fakes), through starlette's
TestClient (an httpx.Client), so no socket is opened."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from taskapi.client import TaskApiClient
from taskapi.client.cli import main
from taskapi.client.cli.runtime import ENV_API_KEY, ENV_URL, Runtime
from tests.fakes import Fakes
from tests.unit.client.support import Ran

BASE_URL = "http://testserver"


@pytest.fixture
def app_http(http_app: TestClient) -> TestClient:
    """The app over the fakes (tests/unit/conftest.py), as the client's transport."""
    return http_app


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


@pytest.fixture
def cli(app_http: TestClient, api_key: str, sleeps: list[float]) -> Callable[..., Ran]:
    """`taskapi ARGV` (the user commands) against the app: its exit code and stdout. The
    environment holds the URL and the API key unless env= replaces it; other keywords set fields
    of the Runtime (sleep: sleeps.append unless given)."""

    def run(*argv: object, env: dict[str, str] | None = None, **runtime: object) -> Ran:
        stdout = io.StringIO()
        environment = {ENV_URL: BASE_URL, ENV_API_KEY: api_key} if env is None else env
        options: dict = {"http": app_http, "sleep": sleeps.append, **runtime}
        code = main([str(a) for a in argv], Runtime(env=environment, stdout=stdout, **options))
        return Ran(code, stdout.getvalue())

    return run
