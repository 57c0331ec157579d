"""The local stack takes every TASKAPI_* setting from the environment of `make dev`."""

from __future__ import annotations

from infra.local_stack import stack_environment
from infra.template import LocalNames


def test_every_taskapi_variable_of_the_environment_wins_over_the_template(monkeypatch):
    defaults = stack_environment(LocalNames())
    assert defaults["TASKAPI_MAX_UNFINISHED_FREE"] == "1000"
    assert defaults["TASKAPI_JWT_AUDIENCE"] == "taskapi"

    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "20000")
    monkeypatch.setenv("TASKAPI_UPLOAD_MAX_BYTES", "4096")
    monkeypatch.setenv("TASKAPI_JWT_AUDIENCE", "course-tools")
    monkeypatch.setenv("TASKAPI_JWT_ISSUER", "https://issuer.example")
    monkeypatch.setenv("TASKAPI_JWT_SECRET", "a-local-secret-of-the-developers-own-choosing")
    env = stack_environment(LocalNames())
    assert env["TASKAPI_MAX_UNFINISHED_FREE"] == "20000"
    assert env["TASKAPI_UPLOAD_MAX_BYTES"] == "4096"
    assert env["TASKAPI_JWT_AUDIENCE"] == "course-tools"
    assert env["TASKAPI_JWT_ISSUER"] == "https://issuer.example"
    assert env["TASKAPI_JWT_SECRET"] == "a-local-secret-of-the-developers-own-choosing"
    assert env["TASKAPI_MAX_UNFINISHED_STANDARD"] == defaults["TASKAPI_MAX_UNFINISHED_STANDARD"]
    assert env["TASKAPI_TASKS_TABLE"] == defaults["TASKAPI_TASKS_TABLE"]


def test_an_empty_issuer_from_the_environment_still_means_the_local_default(monkeypatch):
    monkeypatch.setenv("TASKAPI_JWT_ISSUER", "")
    assert "TASKAPI_JWT_ISSUER" not in stack_environment(LocalNames())
