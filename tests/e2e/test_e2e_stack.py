"""The local stack itself: its banner, its curl line, reuse of an existing endpoint, shutdown,
and the schedule that runs the reconciler."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from taskapi.auth.tokens import issue_local_token
from taskapi.settings import Settings
from tests.e2e.support import (
    SESSION_JWT_AUDIENCE,
    SESSION_SCHEDULE_SECONDS,
    CliRunner,
    messages,
    processing_paused,
    wait_for_status,
    wait_until,
)

pytestmark = pytest.mark.e2e


def _run_curl_line(line: str) -> tuple[int, str]:
    """Run the printed line in a shell exactly as a developer pastes it; replay it with httpx
    when this machine has no curl."""
    shell, curl = shutil.which("bash") or shutil.which("sh"), shutil.which("curl")
    if shell and curl:
        done = subprocess.run([shell, "-c", line], capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return 200, done.stdout
    words = shlex.split(line)
    assert words[0] == "curl"
    method, headers, body, url = "GET", {}, None, None
    position = 1
    while position < len(words):
        word = words[position]
        if word in ("-X", "-H", "-d"):
            value = words[position + 1]
            position += 2
            if word == "-X":
                method = value
            elif word == "-H":
                name, _, header_value = value.partition(":")
                headers[name.strip()] = header_value.strip()
            else:
                body = value
        elif word.startswith("-"):
            position += 1
        else:
            url, position = word, position + 1
    assert url is not None
    response = httpx.request(method, url, headers=headers, content=body, timeout=10)
    return response.status_code, response.text


def test_the_banner_names_the_api_the_docs_and_demo_credentials(stack: Any, client: httpx.Client) -> None:
    assert stack.fields["Docs"] == f"{stack.api_url}/docs"
    assert stack.api_key.startswith(f"tk.{stack.account_id}.")
    assert client.get("/health").json()["status"] == "ok"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    # Served at the root: no API Gateway stage prefix ("/v1") in the docs' links.
    assert "url: '/openapi.json'" in docs.text
    openapi = client.get("/openapi.json").json()
    assert "/api/tasks/bulk" in openapi["paths"]
    assert [server["url"] for server in openapi.get("servers", [{"url": "/"}])] == ["/"]
    bearer = {"Authorization": f"Bearer {stack.bearer_token}", "X-Account-ID": stack.account_id}
    assert client.get("/api/tasks", headers=bearer).status_code == 200
    assert client.get("/api/tasks", headers={"X-API-Key": stack.api_key}).status_code == 200
    operator = client.get("/api/tasks/queue/status", headers={"X-API-Key": stack.operator_key}).json()
    assert all("source" in mapping for mapping in operator["event_source_mappings"])


def test_a_jwt_audience_from_the_environment_wins_over_the_template(stack: Any, client: httpx.Client) -> None:
    """The session stack runs with TASKAPI_JWT_AUDIENCE set: its tokens (the banner's, `taskapi
    token`'s) carry it, and a token for the template's audience is refused."""
    import jwt

    assert jwt.decode(stack.bearer_token, options={"verify_signature": False})["aud"] == SESSION_JWT_AUDIENCE
    settings = Settings(jwt_audience="taskapi")  # the template's audience, the local default secret and issuer
    stale = issue_local_token(settings, subject="someone", accounts=[stack.account_id])
    refused = client.get("/api/tasks", headers={"Authorization": f"Bearer {stale}", "X-Account-ID": stack.account_id})
    assert refused.status_code == 401, refused.text


def test_the_banner_says_what_processes_tasks(stack: Any) -> None:
    banner = stack.stdout_path.read_text()

    assert "Processing: ProcessorFunction polls High x2, Low x2, Normal x2, Urgent x2" in banner
    assert "Processing: DeadLetterFunction polls HighDeadLetters x2" in banner
    assert f"Schedule: ReconcilerFunction every {SESSION_SCHEDULE_SECONDS} s (template: rate(1 minute))" in banner
    assert "Stream: CountersFunction reads taskapi-local-TasksTable's stream (TaskChanges, batches of up to" in banner
    assert "taskapi queue pause / resume" in banner
    assert "Fault injection" not in banner


def test_the_printed_curl_line_works_as_printed(stack: Any, client: httpx.Client, run_cli: CliRunner) -> None:
    headers = {"X-API-Key": stack.api_key}
    with processing_paused(run_cli):
        status, output = _run_curl_line(stack.curl_line)

        assert status == 200, output
        (task,) = json.loads(output)
        assert task["account_id"] == stack.account_id
        assert task["status"] == "QUEUED"
        assert messages(task) == ["Task pending", "Task added to quiz processing queue"]
        stored = client.get(f"/api/tasks/{task['task_id']}", headers=headers)
        assert stored.json() == task
        # Running it again is harmless: the same task comes back.
        assert json.loads(_run_curl_line(stack.curl_line)[1]) == [task]

    # Once processing resumes, the task is processed to COMPLETED.
    done = wait_for_status(client, headers, [task["task_id"]])[task["task_id"]]
    assert done["progress"] == 100
    assert done["result_summary"]["requested_questions"] == 5  # "easy" asks for five
    assert done["result_summary"]["produced_questions"] >= 1


def test_the_schedule_runs_the_reconciler_every_period(stack: Any) -> None:
    def runs() -> list[dict[str, Any]]:
        found = []
        for line in stack.stdout_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"message":"reconciled"' in line:
                found.append(json.loads(line))
        return found

    reports = wait_until(lambda: len(runs()) >= 2 and runs(), 4 * SESSION_SCHEDULE_SECONDS, "two reconciler runs")

    assert all(r["location"].startswith("reconcile:") for r in reports)
    assert {"pending_found", "enqueued", "processing_found", "timed_out"} <= set(reports[-1])
    # (Every function shares this process's Powertools logger, so a record's function_name may
    # name another function invoked at the same moment: the report's own keys identify it.)
