"""The local stack itself: its banner, its curl line, reuse of an existing endpoint, shutdown."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

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


def test_the_printed_curl_line_works_as_printed(stack: Any, client: httpx.Client) -> None:
    status, output = _run_curl_line(stack.curl_line)

    assert status == 200, output
    (task,) = json.loads(output)
    assert task["account_id"] == stack.account_id
    assert task["status"] == "PENDING"
    stored = client.get(f"/api/tasks/{task['task_id']}", headers={"X-API-Key": stack.api_key})
    assert stored.json() == task
    # Running it again is harmless: the same task comes back.
    assert json.loads(_run_curl_line(stack.curl_line)[1]) == [task]


def test_a_second_stack_on_an_existing_endpoint_starts_no_moto_and_shares_its_tables(
    stack: Any, client: httpx.Client, tmp_path: Path, stack_tools: Any
) -> None:
    tools = stack_tools
    # Given the session stack's moto server as AWS_ENDPOINT_URL (its tables already exist)
    unused_aws_port = tools.free_port()
    env = tools.clean_environment(
        AWS_ENDPOINT_URL=stack.aws_endpoint,
        TASKAPI_PORT=str(tools.free_port()),
        TASKAPI_AWS_PORT=str(unused_aws_port),
    )

    # When a second stack starts on it
    second = tools.start_stack(tmp_path, env)
    try:
        # Then it provisioned idempotently, started no moto server, and serves the same data
        assert second.aws_endpoint == stack.aws_endpoint
        assert "external endpoint" in second.stdout_path.read_text()
        assert not tools.port_is_listening(unused_aws_port)
        created = httpx.post(
            f"{second.api_url}/api/tasks/bulk",
            headers={"X-API-Key": second.api_key},
            json={"tasks": [{"task_id": "via_second", "task_type": "documentation"}]},
            timeout=10,
        )
        assert created.status_code == 200, created.text
        assert created.json()[0]["request_data"] is None
        seen_by_first = client.get("/api/tasks/via_second", headers={"X-API-Key": second.api_key})
        assert seen_by_first.json() == created.json()[0]
    finally:
        code = tools.stop_stack(second.process)

    # And SIGTERM stopped it cleanly while the session stack's moto server kept running
    assert code == 0, second.output()
    assert "Local stack stopped." in second.stderr_path.read_text()
    # (both demo keys act for the account "demo", so the session stack sees the task too).
    after = client.get("/api/tasks/via_second", headers={"X-API-Key": stack.api_key})
    assert after.status_code == 200
    assert after.json() == created.json()[0]
