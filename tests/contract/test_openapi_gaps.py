"""Each known gap between the OpenAPI document and the app (gaps.py), pinned by a probe.

A probe asks the app and the document the same question. While they disagree, the test raises
GapStillOpen and is an expected failure. Once someone closes the gap (in the app or in the
document), the test passes, fails the run as XPASS(strict), and the gap's entry in gaps.py and
its xfail marker here must go, so that the schemathesis run checks that rule again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.contract import gaps
from tests.contract.apps import build_app

_PINNED: set[str] = set()


class GapStillOpen(Exception):
    """The app and its OpenAPI document still disagree about a probe."""


def known_gap(key: str) -> Callable[[Callable[..., Any]], Any]:
    gap = gaps.gap(key)
    _PINNED.add(key)
    return pytest.mark.xfail(raises=GapStillOpen, strict=True, reason=f"OpenAPI gap [{key}] {gap.where}: {gap.summary}")


@pytest.fixture(scope="module")
def api():
    under_test = build_app()
    client = TestClient(under_test.app, raise_server_exceptions=False)
    client.headers.update(under_test.headers)
    return client


@pytest.fixture(scope="module")
def openapi(api) -> gaps.OpenApi:
    return gaps.OpenApi(api.app.openapi())


def _app_accepts(answer) -> bool:
    assert answer.status_code < 500, answer.text
    assert answer.status_code in (200, 422), f"a probe must be accepted or rejected as invalid: {answer.text}"
    return answer.status_code == 200


def _agree_on_body(api, openapi: gaps.OpenApi, path: str, body: dict[str, Any]) -> None:
    app_says = _app_accepts(api.post(path, json=body))
    document_says = openapi.accepts_body("POST", path, body)
    if app_says != document_says:
        raise GapStillOpen(f"POST {path} {body}: the app {'accepts' if app_says else 'rejects'} it, the document not")


def _agree_on_query(api, openapi: gaps.OpenApi, path: str, name: str, value: str) -> None:
    app_says = _app_accepts(api.get(path, params={name: value}))
    document_says = openapi.accepts_parameter("GET", path, name, value)
    if app_says != document_says:
        raise GapStillOpen(
            f"GET {path}?{name}={value}: the app {'accepts' if app_says else 'rejects'} it, the document not"
        )


def _video_with(**request_data: Any) -> dict[str, Any]:
    task = factories.video()
    task["request_data"] = {**task["request_data"], **request_data}
    return task


def _quiz_with(**request_data: Any) -> dict[str, Any]:
    task = factories.quiz()
    task["request_data"] = {**task["request_data"], **request_data}
    return task


@pytest.mark.parametrize("url", ["ftp://example.com/logo.png", "logo.png"])
def test_url_fields(api, openapi, url):
    _agree_on_body(api, openapi, "/api/tasks", _video_with(logo_url=url))
    _agree_on_body(api, openapi, "/api/tasks/bulk", factories.bulk(factories.video(), intro_video_url=url))


def test_question_types_unique(api, openapi):
    _agree_on_body(api, openapi, "/api/tasks", _quiz_with(question_types=["true_false", "true_false"]))


@pytest.mark.parametrize("rate", [0.1, 5])
def test_voice_rate_bounds(api, openapi, rate):
    _agree_on_body(api, openapi, "/api/tasks", _video_with(voice_rate=rate))


@known_gap("integral-floats")
def test_integral_floats(api, openapi):
    _agree_on_body(api, openapi, "/api/tasks", _video_with(segments=3.0))
    _agree_on_body(api, openapi, "/api/tasks", _quiz_with(num_questions=10.0))


def test_blank_prompt(api, openapi):
    _agree_on_body(api, openapi, "/api/tasks", factories.documentation(request_data={"story_prompt": "   "}))


@known_gap("filter-list-syntax")
@pytest.mark.parametrize(
    ("name", "value"),
    [("task_source_ids", "course\t123"), ("task_ids", "a b"), ("status", "BOGUS")],
)
@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/count/total"])
def test_filter_list_syntax(api, openapi, path, name, value):
    _agree_on_query(api, openapi, path, name, value)


@pytest.mark.parametrize("path", gaps.ID_LIST_OPERATIONS)
@pytest.mark.parametrize("count", [0, gaps.MAX_IDS + 1])
def test_task_id_list_bounds(api, openapi, path, count):
    body = {"task_ids": [f"t{i}" for i in range(count)]}
    answer = api.post(path, json=body)
    assert answer.status_code == (400 if count == 0 else 413), answer.text
    if openapi.accepts_body("POST", path, body):
        raise GapStillOpen(
            f"POST {path} with {count} task_ids: the app answers {answer.status_code}, the document allows it"
        )


@known_gap("empty-ids")
@pytest.mark.parametrize("field", gaps.EMPTY_MEANS_MISSING)
def test_empty_ids(api, openapi, field):
    _agree_on_body(api, openapi, "/api/tasks", factories.documentation(**{field: ""}))


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/bulk"])
def test_body_parse_400(api, openapi, path):
    answer = api.post(path, content=b"\x80", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": gaps.BODY_PARSE_ERROR}
    if "400" not in openapi.documented_statuses("POST", path):
        raise GapStillOpen(
            f"POST {path} answers 400 but documents only {sorted(openapi.documented_statuses('POST', path))}"
        )


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_allow_header_405(api, openapi, method):
    """Closed gap [allow-header-405]: Allow lists every method of the resource (RFC 9110 15.5.6),
    not only those of the first route whose path matches (taskapi.http.methods)."""
    answer = api.request(method, "/api/tasks")
    assert answer.status_code == 405, answer.text
    allowed = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
    assert allowed == openapi.methods("/api/tasks") == {"GET", "POST"}


def test_every_known_gap_is_pinned_by_a_probe():
    """A gap without a probe would stay filtered from the schemathesis run forever."""
    assert {gap.key for gap in gaps.KNOWN_GAPS} == _PINNED


@pytest.mark.parametrize(
    ("path", "body", "valid"),
    [
        ("/api/tasks", factories.video(), True),
        ("/api/tasks", _video_with(segments=0), False),
        ("/api/tasks", factories.documentation(task_source_id="a\tb"), False),
        ("/api/tasks", factories.documentation(task_source_id="Math 101/a#b"), True),
        ("/api/tasks/bulk", factories.bulk(factories.quiz(), factories.documentation()), True),
        ("/api/tasks/bulk", factories.bulk(), False),
    ],
)
def test_probes_see_agreement_where_there_is_no_gap(api, openapi, path, body, valid):
    """The probes themselves work: where app and document agree, they raise nothing."""
    assert openapi.accepts_body("POST", path, body) is valid
    _agree_on_body(api, openapi, path, body)
