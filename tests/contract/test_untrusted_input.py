"""Input a client can forge that schemathesis does not generate: cursors (base64 JSON, opaque in
the document) and non-standard JSON numbers. DESIGN.md section 6: never a 500 for anything a
client can send. Known defects are strict xfails naming the fix; they fail as XPASS once fixed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.contract.apps import build_app, dynamodb_repository


class KnownDefect(Exception):
    """The app still answers a forged input the way the defect describes."""


def cursor(fields: dict[str, Any]) -> str:
    """A next_token as the API encodes one: unpadded URL-safe base64 of compact JSON."""
    raw = json.dumps(fields, separators=(",", ":"))  # allow_nan: Python writes Infinity, as a client may
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.fixture(params=["memory", "dynamodb"])
def api(request):
    under_test = build_app()
    client = TestClient(under_test.app, raise_server_exceptions=False)
    client.headers.update(under_test.headers)
    if request.param == "memory":
        yield client
        return
    with dynamodb_repository() as repository:
        under_test.repository = repository
        yield client


def _first_page_token(api) -> tuple[dict[str, Any], dict[str, str]]:
    """A real cursor's fields, so that forged ones differ from it in one field only."""
    assert (
        api.post("/api/tasks/bulk", json=factories.bulk(*(factories.documentation() for _ in range(3)))).status_code
        == 200
    )
    first = api.get("/api/tasks", params={"limit": 1})
    assert first.status_code == 200, first.text
    token = first.json()["next_token"]
    assert token
    fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return fields, {"limit": "1"}


def _refused_as_bad_request(answer) -> None:
    if answer.status_code >= 500:
        raise KnownDefect(f"{answer.status_code} {answer.text}")
    assert answer.status_code == 400, answer.text
    assert "next_token" in answer.json()["detail"]


def test_a_real_cursor_reads_the_next_page(api):
    """The baseline the forged cursors below are made from."""
    fields, params = _first_page_token(api)
    second = api.get("/api/tasks", params={**params, "next_token": cursor(fields)})
    assert second.status_code == 200, second.text
    assert len(second.json()["tasks"]) == 1


@pytest.mark.parametrize("offset", ["not a number", -1, None, [1]])
def test_cursor_with_a_malformed_offset_is_refused(api, offset):
    fields, params = _first_page_token(api)
    _refused_as_bad_request(api.get("/api/tasks", params={**params, "next_token": cursor({**fields, "o": offset})}))


def test_cursor_with_an_infinite_offset_is_refused(api):
    fields, params = _first_page_token(api)
    _refused_as_bad_request(
        api.get("/api/tasks", params={**params, "next_token": cursor({**fields, "o": float("inf")})})
    )


@pytest.mark.parametrize(
    "api",
    ["memory", "dynamodb"],
    indirect=True,
)
def test_cursor_with_an_empty_position_is_not_a_server_error(api):
    fields, params = _first_page_token(api)
    answer = api.get("/api/tasks", params={**params, "next_token": cursor({**fields, "a": ""})})
    if answer.status_code >= 500:
        raise KnownDefect(f"{answer.status_code} {answer.text}")
    assert answer.status_code in (200, 400), answer.text


def test_non_finite_numbers_in_request_data_are_refused(api):
    body = '{"task_type": "documentation", "request_data": {"story_prompt": "x", "weight": NaN, "scale": Infinity}}'
    answer = api.post("/api/tasks", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        raise KnownDefect(f"accepted: {answer.json()['request_data']}")
    assert answer.status_code == 422, answer.text
