"""Unit tests: in-memory fakes only, and no sockets (a stray AWS call fails loudly)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pytest_socket import disable_socket, enable_socket

from taskapi.http.app import create_app
from tests.fakes import Fakes


@pytest.fixture(autouse=True)
def _no_sockets():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture
def fakes() -> Fakes:
    """Every adapter as an in-memory fake (a test module may define its own)."""
    return Fakes()


@pytest.fixture
def http_app(fakes: Fakes) -> TestClient:
    """The HTTP app over `fakes`; server errors answer 500 as they would in production."""
    return TestClient(fakes.install(create_app()), raise_server_exceptions=False)


@pytest.fixture
def api(http_app: TestClient) -> TestClient:
    """http_app, under the name the HTTP tests use (the client tests' `api` is their client)."""
    return http_app
