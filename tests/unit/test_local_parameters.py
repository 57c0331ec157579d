"""The local stack takes a few template parameters from the environment of `make dev`."""

from __future__ import annotations

from infra.local_stack import stack_environment
from infra.template import LocalNames


def test_ceilings_and_upload_size_set_in_the_environment_win_over_the_template(monkeypatch):
    defaults = stack_environment(LocalNames())
    assert defaults["TASKAPI_MAX_UNFINISHED_FREE"] == "1000"

    monkeypatch.setenv("TASKAPI_MAX_UNFINISHED_FREE", "20000")
    monkeypatch.setenv("TASKAPI_UPLOAD_MAX_BYTES", "4096")
    monkeypatch.setenv("TASKAPI_TASKS_TABLE", "not-the-template-table")  # not a parameter: ignored
    env = stack_environment(LocalNames())
    assert env["TASKAPI_MAX_UNFINISHED_FREE"] == "20000"
    assert env["TASKAPI_UPLOAD_MAX_BYTES"] == "4096"
    assert env["TASKAPI_MAX_UNFINISHED_STANDARD"] == defaults["TASKAPI_MAX_UNFINISHED_STANDARD"]
    assert env["TASKAPI_TASKS_TABLE"] == defaults["TASKAPI_TASKS_TABLE"]
