"""GET /api/tasks and /api/tasks/count/total over HTTP: the API reference's list examples,
replayed on a catalog of tasks whose expected answers are computed here, newest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from tests.e2e.support import REQUEST_DATA, count, eventually, wait_for_status

pytestmark = pytest.mark.e2e

ACCOUNT = "catalog"


@dataclass(frozen=True)
class Row:
    task_id: str
    source_id: str | None
    group_id: str | None
    task_type: str


# Created one request at a time, in this order, so that each has its own created_at.
CATALOG = (
    Row("cat_01", "course_123", "batch_456", "video"),
    Row("cat_02", "course_456", "batch_456", "quiz"),
    Row("cat_03", "course_789", "batch_789", "documentation"),
    Row("cat_04", "course_123", "batch_456", "quiz"),
    Row("cat_05", None, "batch_456", "animated_lesson"),
    Row("cat_06", "course_456", "batch_789", "video"),
    Row("cat_07", "course_123", None, "documentation"),
    Row("cat_08", "math_101", "evening_batch", "quiz"),
    Row("cat_09", "course_789", "batch_456", "video"),
    Row("cat_10", None, None, "documentation"),
)
NEWEST_FIRST = tuple(reversed(CATALOG))


def _task_body(row: Row) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_id": row.task_id,
        "task_type": row.task_type,
        "request_data": REQUEST_DATA[row.task_type],
        "task_source_name": "Catalog",
    }
    if row.source_id:
        task["task_source_id"] = row.source_id
    if row.group_id:
        task["task_source_group_id"] = row.group_id
    return task


@pytest.fixture(scope="module")
def headers(client: httpx.Client, as_account: Callable[[str], dict[str, str]]) -> dict[str, str]:
    headers = as_account(ACCOUNT)
    for row in CATALOG:
        response = client.post("/api/tasks/bulk", headers=headers, json={"tasks": [_task_body(row)]})
        assert response.status_code == 200, response.text
    # The stack processes them; the status filters below are checked once all are COMPLETED,
    wait_for_status(client, headers, _ids(CATALOG))
    # and the counts once the counters (kept from the table's stream, seconds behind) agree with them.
    for params, predicate in SPEC_QUERIES:
        count_params = {k: v for k, v in params.items() if k not in ("limit", "skip")}
        eventually(partial(count, client, headers, **count_params), len(_expected(predicate)), what=str(params))
    return headers


def _ids(rows: Any) -> list[str]:
    return [row.task_id for row in rows]


def _expected(predicate: Callable[[Row], bool]) -> list[str]:
    return _ids(row for row in NEWEST_FIRST if predicate(row))


def _in(*values: str) -> Callable[[Row], bool]:
    return lambda row: row.source_id in values


# (query string of a spec example, what it must answer). Every catalog task is COMPLETED by then,
# so the spec's PENDING/PROCESSING examples answer nothing and its COMPLETED ones every match.
SPEC_QUERIES: list[tuple[dict[str, str], Callable[[Row], bool]]] = [
    ({"task_source_group_id": "batch_456", "status": "PENDING", "limit": "50"}, lambda r: False),
    ({"task_source_group_id": "batch_456", "status": "COMPLETED", "limit": "50"}, lambda r: r.group_id == "batch_456"),
    (
        {"task_source_ids": "course_123,course_456,course_789", "status": "COMPLETED"},
        _in("course_123", "course_456", "course_789"),
    ),
    ({"task_source_ids": "course_123,course_456,course_789"}, _in("course_123", "course_456", "course_789")),
    ({"task_ids": "cat_02,cat_07,uuid-1234"}, lambda r: r.task_id in ("cat_02", "cat_07")),
    (
        {"task_source_group_id": "batch_456", "task_source_ids": "course_123,course_456", "status": "PROCESSING"},
        lambda r: False,
    ),
    (
        {"task_source_group_id": "batch_456", "task_source_ids": "course_123,course_456", "status": "COMPLETED"},
        lambda r: r.group_id == "batch_456" and r.source_id in ("course_123", "course_456"),
    ),
    ({"task_ids": "cat_01,cat_03", "status": "COMPLETED"}, lambda r: r.task_id in ("cat_01", "cat_03")),
    ({"task_ids": "cat_01,cat_03", "status": "PENDING"}, lambda r: False),
    ({"task_source_ids": "course_123"}, _in("course_123")),
    ({"task_source_ids": "course_123,course_456", "status": "COMPLETED"}, _in("course_123", "course_456")),
    ({"task_source_ids": "course_123,,course_456"}, _in("course_123", "course_456")),
    ({"task_source_ids": "course_123,course_456", "limit": "20", "skip": "0"}, _in("course_123", "course_456")),
    ({"task_source_ids": "math_101,science_102,history_103"}, _in("math_101")),
    ({"task_source_group_id": "evening_batch", "task_source_ids": "course_001,course_002"}, lambda r: False),
    ({"task_source_group_id": "evening_batch", "task_source_ids": "math_101"}, _in("math_101")),
    ({"task_source_group_id": "batch_789", "task_type": "video"}, lambda r: r.task_id == "cat_06"),
    ({"status": "PENDING"}, lambda r: False),
    ({"status": "COMPLETED"}, lambda r: True),
    ({"status": "PENDING,COMPLETED"}, lambda r: True),
    ({"status": "QUEUED,PROCESSING,FAILED"}, lambda r: False),
    ({}, lambda r: True),
]


@pytest.mark.parametrize(("params", "predicate"), SPEC_QUERIES, ids=[str(q) for q, _ in SPEC_QUERIES])
def test_list_and_count_answer_the_spec_examples(
    client: httpx.Client, headers: dict[str, str], params: dict[str, str], predicate: Callable[[Row], bool]
) -> None:
    expected = _expected(predicate)

    listed = client.get("/api/tasks", headers=headers, params=params)
    count_params = {k: v for k, v in params.items() if k not in ("limit", "skip")}
    counted = client.get("/api/tasks/count/total", headers=headers, params=count_params)

    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [t["task_id"] for t in body["tasks"]] == expected
    assert body["total"] == len(expected)
    assert body["limit"] == int(params.get("limit", 100))
    assert body["skip"] == int(params.get("skip", 0))
    assert body["next_token"] is None
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"total": len(expected)}


def _without_urls(page: dict[str, Any]) -> dict[str, Any]:
    """A page without its result URLs, which are presigned afresh on every read."""
    return {**page, "tasks": [{k: v for k, v in t.items() if k != "result_url"} for t in page["tasks"]]}


def test_empty_values_in_task_source_ids_are_dropped(client: httpx.Client, headers: dict[str, str]) -> None:
    with_gap = client.get("/api/tasks", headers=headers, params={"task_source_ids": "course_123,,course_456"})
    without = client.get("/api/tasks", headers=headers, params={"task_source_ids": "course_123,course_456"})

    assert with_gap.status_code == without.status_code == 200
    assert _without_urls(with_gap.json()) == _without_urls(without.json())


def test_limit_and_skip_cut_the_same_newest_first_order(client: httpx.Client, headers: dict[str, str]) -> None:
    first = client.get("/api/tasks", headers=headers, params={"limit": 3, "skip": 0}).json()
    second = client.get("/api/tasks", headers=headers, params={"limit": 3, "skip": 3}).json()
    tail = client.get("/api/tasks", headers=headers, params={"limit": 5, "skip": 8}).json()

    assert [t["task_id"] for t in first["tasks"]] == _ids(NEWEST_FIRST[0:3])
    assert [t["task_id"] for t in second["tasks"]] == _ids(NEWEST_FIRST[3:6])
    assert [t["task_id"] for t in tail["tasks"]] == _ids(NEWEST_FIRST[8:])
    assert first["total"] == second["total"] == tail["total"] == len(CATALOG)
    assert tail["next_token"] is None


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"limit": "3"}, lambda r: True),
        (
            {"limit": "2", "task_source_ids": "course_123,course_456,course_789"},
            _in("course_123", "course_456", "course_789"),
        ),
        ({"limit": "2", "task_source_group_id": "batch_456"}, lambda r: r.group_id == "batch_456"),
        ({"limit": "1", "task_ids": "cat_01,cat_05,cat_10"}, lambda r: r.task_id in ("cat_01", "cat_05", "cat_10")),
    ],
    ids=["all", "sources", "group", "task_ids"],
)
def test_next_token_walks_every_page_once(
    client: httpx.Client, headers: dict[str, str], params: dict[str, str], predicate: Callable[[Row], bool]
) -> None:
    expected = _expected(predicate)
    limit = int(params["limit"])
    seen: list[str] = []
    token: str | None = None
    pages = 0

    while True:
        query = dict(params, next_token=token) if token else params
        response = client.get("/api/tasks", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert page["total"] == len(expected)
        assert len(page["tasks"]) <= limit
        seen += [t["task_id"] for t in page["tasks"]]
        token = page["next_token"]
        if token is None:
            break
        assert pages <= len(CATALOG), "next_token never ran out"

    assert seen == expected
    assert pages == -(-len(expected) // limit)


def test_a_next_token_only_fits_the_filters_it_was_issued_for(client: httpx.Client, headers: dict[str, str]) -> None:
    page = client.get("/api/tasks", headers=headers, params={"limit": 2}).json()

    other = client.get(
        "/api/tasks", headers=headers, params={"limit": 2, "status": "PENDING", "next_token": page["next_token"]}
    )
    forged = client.get("/api/tasks", headers=headers, params={"limit": 2, "next_token": "not-a-cursor"})

    assert other.status_code == 400
    assert "next_token" in other.json()["detail"]
    assert forged.status_code == 400
    assert "next_token" in forged.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"skip": "-1"}, "skip"),
        ({"status": "BOGUS"}, "status"),
        ({"limit": "ten"}, "limit"),
    ],
    ids=["limit=0", "limit=1001", "skip=-1", "status=BOGUS", "limit=ten"],
)
def test_invalid_list_parameters_are_422_naming_the_parameter(
    client: httpx.Client, headers: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = client.get("/api/tasks", headers=headers, params=params)

    assert response.status_code == 422, response.text
    assert [p["loc"] for p in response.json()["detail"]] == [["query", field]]


def test_limit_1000_is_accepted(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get("/api/tasks", headers=headers, params={"limit": 1000})

    assert response.status_code == 200, response.text
    assert len(response.json()["tasks"]) == len(CATALOG)
