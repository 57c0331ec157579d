"""Tenant isolation, part A: acting as account A with A's own valid credentials, another
account's ids, groups and sources are indistinguishable from ids nobody holds, over every
endpoint, and nothing of B's (tasks with their versions, queue messages, results, keys,
enrolments, uploads) ever changes.

Every case runs four ways: an API key and a bearer token, each through the app verifying
credentials itself (TestClient) and through API Gateway's shape (the REQUEST authorizer event
through functions/authorizer, then a REST proxy event with the authorizer's context through
functions/api). Logs are captured at DEBUG during each case and must hold no credential and no
whole event (part D)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from taskapi.models.domain import Priority, TaskStatus
from tests import factories
from tests.support.isolation import (
    A_IDS,
    ACCOUNT_A,
    ACCOUNT_B,
    B_ONLY_IDS,
    GROUP_A,
    GROUP_B,
    SHARED_ID,
    SOURCE_A,
    SOURCE_B,
    UNKNOWN_IDS,
    UNKNOWN_UPLOAD_ID,
    Gateway,
    Local,
    Logs,
    Reply,
    World,
    account_part,
    assert_nothing_confirmed,
    build_world,
    captured_logs,
    differences,
    load_handlers,
    local_client,
    snapshot,
)

CALLERS = ("local-key", "local-bearer", "gateway-key", "gateway-bearer")


@pytest.fixture(scope="module")
def handlers() -> tuple[ModuleType, ModuleType]:
    return load_handlers()


@pytest.fixture(scope="module")
def local_app() -> Iterator[Any]:
    yield from local_client()


@dataclass
class Caller:
    """Account A, calling through one transport with one kind of credential."""

    world: World
    transport: Local | Gateway
    kind: str
    logs: Logs
    before: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return self.world.key_a if self.kind == "key" else self.world.bearer_a

    @property
    def headers_b(self) -> dict[str, str]:
        return self.world.key_b if self.kind == "key" else self.world.bearer_b

    def __call__(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None) -> Reply:
        reply = self.transport(method, path, headers=self.headers, query=query, body=body)
        assert reply.reached_api, reply.body
        assert_nothing_confirmed(reply)
        return reply

    def as_b(self, method: str, path: str, *, query: dict[str, str] | None = None) -> Reply:
        return self.transport(method, path, headers=self.headers_b, query=query)

    def as_operator(self, method: str, path: str) -> Reply:
        """The same transport and kind of credential, held by the operator (its own account)."""
        headers = self.world.key_ops if self.kind == "key" else self.world.bearer_ops
        return self.transport(method, path, headers=headers)

    # ------------------------------------------------------------------ "nothing changed"
    def now(self) -> dict[str, Any]:
        return snapshot(self.world.fakes)

    def assert_nothing_changed(self) -> None:
        after = self.now()
        assert after == self.before, f"changed: {differences(self.before, after)}"
        self.assert_logs_clean()

    def assert_b_unchanged(self) -> None:
        before, after = account_part(self.before, ACCOUNT_B), account_part(self.now(), ACCOUNT_B)
        assert after == before, f"B's changed: {differences(before, after)}"
        self.assert_logs_clean()

    def new_messages(self) -> list[tuple[Any, ...]]:
        return self.now()["messages"][len(self.before["messages"]) :]

    def assert_logs_clean(self) -> None:
        self.logs.assert_clean(self.world.secrets)


@pytest.fixture(params=CALLERS)
def a(request, handlers, local_app, capsys, caplog) -> Iterator[Caller]:
    where, kind = request.param.split("-")
    world = build_world()
    transport: Local | Gateway = Local(local_app) if where == "local" else Gateway(*handlers)
    transport.bind(world)
    with captured_logs(capsys, caplog) as logs:
        caller = Caller(world, transport, kind, logs, snapshot(world.fakes))
        yield caller
        caller.assert_logs_clean()


def ids_of(reply: Reply) -> set[str]:
    return {task["task_id"] for task in reply.body["tasks"]}


def assert_all_a(tasks: list[dict[str, Any]]) -> None:
    assert {task["account_id"] for task in tasks} <= {ACCOUNT_A}


def replaced(body: Any, old: list[str], new: list[str]) -> Any:
    """body with each id of `old` replaced by the id at the same place in `new`."""
    text = json.dumps(body)
    for before, after in zip(old, new, strict=True):
        text = text.replace(f'"{before}"', f'"{after}"')
    return json.loads(text)


# ------------------------------------------------------------------ GET /api/tasks/{id}
@pytest.mark.parametrize("task_id", B_ONLY_IDS)
def test_get_of_a_foreign_id_is_404_exactly_like_an_unknown_id(a, task_id):
    reply = a("GET", f"/api/tasks/{task_id}")
    unknown = a("GET", f"/api/tasks/{UNKNOWN_IDS[0]}")
    assert (reply.status, reply.body) == (404, {"detail": f"Task {task_id} not found"})
    assert (unknown.status, unknown.body) == (404, {"detail": f"Task {UNKNOWN_IDS[0]} not found"})
    assert reply.headers.get("content-type") == unknown.headers.get("content-type")
    a.assert_nothing_changed()


def test_get_of_an_id_both_accounts_hold_answers_a_own_task(a):
    reply = a("GET", f"/api/tasks/{SHARED_ID}")
    assert reply.status == 200
    task = reply.body
    assert (task["account_id"], task["task_type"], task["status"]) == (ACCOUNT_A, "quiz", "PENDING")
    assert (task["task_source_group_id"], task["task_source_id"]) == (GROUP_A, SOURCE_A)
    a.assert_nothing_changed()


# ------------------------------------------------------------------ list and count filters
A_PENDING = {SHARED_ID, "a-pending"}
FILTERS: dict[str, tuple[dict[str, str], set[str]]] = {
    "no-filter": ({}, set(A_IDS)),
    "task_ids=b-only": ({"task_ids": ",".join(B_ONLY_IDS)}, set()),
    "task_ids=one-b-id": ({"task_ids": "b-processing"}, set()),
    "task_ids=mixed": ({"task_ids": f"{SHARED_ID},b-pending,a-pending,{UNKNOWN_IDS[0]},b-completed"}, A_PENDING),
    "group=b": ({"task_source_group_id": GROUP_B}, set()),
    "group=a": ({"task_source_group_id": GROUP_A}, set(A_IDS)),
    "source=b": ({"task_source_ids": SOURCE_B}, set()),
    "sources=b,a": ({"task_source_ids": f"{SOURCE_B},{SOURCE_A}"}, {SHARED_ID}),
    "group=b+task_ids=b+status": (
        {"task_source_group_id": GROUP_B, "task_ids": "b-pending,b-queued", "status": "PENDING,QUEUED"},
        set(),
    ),
    "status=PROCESSING": ({"status": "PROCESSING"}, set()),
    "status=QUEUED": ({"status": "QUEUED"}, {"a-queued"}),
    "status=PENDING": ({"status": "PENDING"}, A_PENDING),
    "status=FAILED,CANCELLED": ({"status": "FAILED,CANCELLED"}, set()),
    "status=COMPLETED": ({"status": "COMPLETED"}, {"a-completed"}),
    "status=every": ({"status": ",".join(s.value for s in TaskStatus)}, set(A_IDS)),
    "task_type=video": ({"task_type": "video"}, set()),
    "task_type=documentation": ({"task_type": "documentation"}, set()),
    "priority=high": ({"priority": "high"}, set()),
}


@pytest.mark.parametrize(("query", "expected"), list(FILTERS.values()), ids=list(FILTERS))
def test_list_never_answers_b_tasks(a, query, expected):
    reply = a("GET", "/api/tasks", query={**query, "limit": "100"})
    assert reply.status == 200, reply.body
    assert_all_a(reply.body["tasks"])
    assert ids_of(reply) == expected
    assert reply.body["total"] == len(expected)
    assert reply.body["next_token"] is None
    a.assert_nothing_changed()


@pytest.mark.parametrize(("query", "expected"), list(FILTERS.values()), ids=list(FILTERS))
def test_count_counts_only_a_tasks(a, query, expected):
    reply = a("GET", "/api/tasks/count/total", query=query)
    assert (reply.status, reply.body) == (200, {"total": len(expected)})
    a.assert_nothing_changed()


def test_a_cursor_issued_to_b_pages_only_a_tasks(a):
    first = a.as_b("GET", "/api/tasks", query={"limit": "1"})
    assert first.status == 200
    assert first.body["next_token"]
    reply = a("GET", "/api/tasks", query={"limit": "100", "next_token": first.body["next_token"]})
    assert reply.status == 200
    assert_all_a(reply.body["tasks"])
    assert ids_of(reply) <= set(A_IDS)
    a.assert_nothing_changed()


# ------------------------------------------------------------------ bulk cancel
FOREIGN_LISTS = {
    "b-only-ids": list(B_ONLY_IDS),
    "one-b-id": ["b-processing"],
    "b-ids-and-unknown": ["b-pending", UNKNOWN_IDS[0], "b-queued"],
}


@pytest.mark.parametrize("ids", list(FOREIGN_LISTS.values()), ids=list(FOREIGN_LISTS))
def test_bulk_cancel_of_foreign_ids_answers_exactly_as_for_unknown_ids(a, ids):
    reply = a("POST", "/api/tasks/bulk-cancel", body={"task_ids": ids})
    unknown_ids = [f"nobody-{n}" for n in range(len(ids))]
    unknown = a("POST", "/api/tasks/bulk-cancel", body={"task_ids": unknown_ids})
    assert reply.status == 200
    assert reply.body["not_found_ids"] == ids
    assert reply.body["cancelled_count"] == 0
    assert reply.body == replaced(unknown.body, unknown_ids, ids)
    a.assert_nothing_changed()


def test_bulk_cancel_of_a_mixed_list_cancels_a_tasks_and_reports_b_ids_not_found(a):
    ids = ["a-pending", "b-pending", UNKNOWN_IDS[0], SHARED_ID, "b-processing", "a-completed"]
    reply = a("POST", "/api/tasks/bulk-cancel", body={"task_ids": ids})
    assert reply.status == 200
    body = reply.body
    assert body["not_found_ids"] == ["b-pending", UNKNOWN_IDS[0], "b-processing"]
    assert body["not_found_count"] == 3
    assert {d["task_id"]: d["status"] for d in body["details"]} == {
        "a-pending": "cancelled",
        SHARED_ID: "cancelled",
        "a-completed": "skipped",
    }
    tasks = a.world.fakes.repo
    assert tasks.get(ACCOUNT_A, "a-pending").status is TaskStatus.CANCELLED
    assert tasks.get(ACCOUNT_A, SHARED_ID).status is TaskStatus.CANCELLED
    assert tasks.get(ACCOUNT_B, SHARED_ID).status is TaskStatus.QUEUED
    a.assert_b_unchanged()


# ------------------------------------------------------------------ bulk regenerate
@pytest.mark.parametrize("ids", list(FOREIGN_LISTS.values()), ids=list(FOREIGN_LISTS))
def test_bulk_regenerate_of_foreign_ids_answers_exactly_as_for_unknown_ids(a, ids):
    body = {"task_ids": ids, "force": True}
    reply = a("POST", "/api/tasks/bulk-regenerate", body=body)
    unknown_ids = [f"nobody-{n}" for n in range(len(ids))]
    unknown = a("POST", "/api/tasks/bulk-regenerate", body={"task_ids": unknown_ids, "force": True})
    assert reply.status == 200
    assert reply.body["not_found_ids"] == ids
    assert reply.body == replaced(unknown.body, unknown_ids, ids)
    a.assert_nothing_changed()


def test_bulk_regenerate_of_a_mixed_list_regenerates_a_tasks_only(a):
    ids = ["b-completed", "a-completed", UNKNOWN_IDS[1], "b-failed", SHARED_ID]
    reply = a("POST", "/api/tasks/bulk-regenerate", body={"task_ids": ids, "force": True})
    assert reply.status == 200
    assert reply.body["not_found_ids"] == ["b-completed", UNKNOWN_IDS[1], "b-failed"]
    regenerated = {d["task_id"] for d in reply.body["details"] if d["status"] == "regenerated"}
    assert regenerated == {"a-completed", SHARED_ID}
    assert {(m[1], m[2]) for m in a.new_messages()} == {(ACCOUNT_A, "a-completed"), (ACCOUNT_A, SHARED_ID)}
    assert a.world.fakes.repo.get(ACCOUNT_A, "a-completed").attempt == 2
    a.assert_b_unchanged()


# ------------------------------------------------------------------ create with B's ids
def test_create_with_an_id_only_b_holds_creates_a_own_task(a):
    reply = a("POST", "/api/tasks", body=factories.quiz("b-completed", task_source_group_id=GROUP_B))
    assert reply.status == 200, reply.body
    assert (reply.body["account_id"], reply.body["task_id"], reply.body["status"]) == (
        ACCOUNT_A,
        "b-completed",
        "QUEUED",
    )
    assert reply.body["result_url"] is None  # not B's result
    assert a.world.fakes.repo.get(ACCOUNT_A, "b-completed") is not None
    assert {(m[1], m[2]) for m in a.new_messages()} == {(ACCOUNT_A, "b-completed")}
    a.assert_b_unchanged()


def test_bulk_create_with_b_ids_creates_a_tasks_and_answers_a_stored_shared_one(a):
    body = factories.bulk(
        factories.video("b-queued"),
        factories.quiz("b-processing", task_source_id=SOURCE_B),
        factories.video(SHARED_ID),
    )
    reply = a("POST", "/api/tasks/bulk", body=body)
    assert reply.status == 200, reply.body
    assert_all_a(reply.body)
    by_id = {task["task_id"]: task for task in reply.body}
    assert by_id["b-queued"]["status"] == by_id["b-processing"]["status"] == "QUEUED"
    # An id A already holds is answered as A stored it (idempotent), never as B's task.
    assert (by_id[SHARED_ID]["task_type"], by_id[SHARED_ID]["task_source_group_id"]) == ("quiz", GROUP_A)
    # Messages go before the insert learns which ids exist: the one for A's stored task is A's too,
    # and the processor runs that task at most once for its attempt (never B's).
    assert {(m[1], m[2]) for m in a.new_messages()} == {
        (ACCOUNT_A, "b-queued"),
        (ACCOUNT_A, "b-processing"),
        (ACCOUNT_A, SHARED_ID),
    }
    a.assert_b_unchanged()


# ------------------------------------------------------------------ queue endpoints
# Every field of the queue status answer, and what a tenant's value of it is about.
STATUS_FIELDS = {
    "success",
    "queue_processing_active",  # the processor's switch: a state, not a figure about anyone's tasks
    "current_processing_task",
    "overall_queue_status",
    "account_task_counts",
    "pending_task_ids",
    "queued_task_ids",
    "event_source_mappings",
}
OVERALL_FIELDS = {
    "total_queued",
    "processing",
    "by_priority",
    "in_flight_by_priority",
    "dead_letter_by_priority",
    "dead_letter_total",
}
NOTHING = {"urgent": 0, "high": 0, "normal": 0, "low": 0}


def assert_tenant_view(body: dict[str, Any]) -> None:
    """The shape every tenant gets: no queue depth, no mapping id, no ARN or queue URL."""
    assert set(body) == STATUS_FIELDS
    assert set(body["overall_queue_status"]) == OVERALL_FIELDS
    assert body["overall_queue_status"]["dead_letter_by_priority"] is None
    assert body["overall_queue_status"]["dead_letter_total"] is None
    mappings = body["event_source_mappings"]
    assert sorted(m["priority"] for m in mappings) == ["high", "low", "normal", "urgent"]
    assert all(set(m) == {"priority", "state", "enabled"} for m in mappings)
    text = json.dumps(body)
    assert "arn:" not in text
    assert "sqs" not in text
    assert "mapping-" not in text


def test_queue_status_for_tenant_a_counts_only_a_tasks(a):
    reply = a("GET", "/api/tasks/queue/status")
    assert reply.status == 200
    body = reply.body
    assert_tenant_view(body)
    assert body["success"] is True
    assert body["queue_processing_active"] is False  # the world starts paused
    assert body["account_task_counts"] == {"pending": 2, "queued": 1, "processing": 0}
    assert set(body["pending_task_ids"]) == A_PENDING
    assert body["queued_task_ids"] == ["a-queued"]
    assert body["current_processing_task"] is None  # B's PROCESSING task is never named
    # B's two QUEUED tasks (three queue messages in all) and its PROCESSING task are not counted.
    assert body["overall_queue_status"]["total_queued"] == 1
    assert body["overall_queue_status"]["by_priority"] == {**NOTHING, "normal": 1}
    assert body["overall_queue_status"]["processing"] == 0
    assert body["overall_queue_status"]["in_flight_by_priority"] == NOTHING
    assert all(m["enabled"] is False and m["state"] == "Disabled" for m in body["event_source_mappings"])
    a.assert_nothing_changed()


def test_queue_status_for_tenant_b_counts_only_b_tasks(a):
    reply = a.as_b("GET", "/api/tasks/queue/status")
    assert reply.status == 200
    body = reply.body
    assert_tenant_view(body)
    assert body["account_task_counts"] == {"pending": 2, "queued": 2, "processing": 1}
    assert body["current_processing_task"] == "b-processing"
    assert body["overall_queue_status"]["total_queued"] == 2
    assert body["overall_queue_status"]["by_priority"] == {**NOTHING, "high": 1, "normal": 1}
    assert body["overall_queue_status"]["processing"] == 1
    assert body["overall_queue_status"]["in_flight_by_priority"] == {**NOTHING, "normal": 1}
    assert not set(body["pending_task_ids"] + body["queued_task_ids"]) & set(A_IDS) - {SHARED_ID}
    a.assert_nothing_changed()


def test_queue_status_for_the_operator_shows_the_real_queues_and_mappings(a):
    a.world.fakes.queue.dead_letter[Priority.LOW] = 2  # two messages dead-lettered, tenant unknown
    reply = a.as_operator("GET", "/api/tasks/queue/status")
    assert reply.status == 200
    body = reply.body
    assert set(body) == STATUS_FIELDS
    overall = body["overall_queue_status"]
    assert set(overall) == OVERALL_FIELDS
    # Every tenant's messages: A's a-queued, B's shared-1 and b-queued.
    assert overall["total_queued"] == 3
    assert overall["by_priority"] == {**NOTHING, "high": 1, "normal": 2}
    assert overall["dead_letter_by_priority"] == {**NOTHING, "low": 2}
    assert overall["dead_letter_total"] == 2
    mappings = body["event_source_mappings"]
    assert all(set(m) == {"id", "source", "priority", "state", "enabled"} for m in mappings)
    assert all(m["source"].startswith("arn:aws:sqs:") for m in mappings)
    # Its own account holds no task: the task lists are about that account, as for anyone.
    assert body["account_task_counts"] == {"pending": 0, "queued": 0, "processing": 0}
    assert body["pending_task_ids"] == body["queued_task_ids"] == []
    assert body["current_processing_task"] is None


def test_process_pending_queues_only_a_tasks(a):
    reply = a("POST", "/api/tasks/queue/process-pending")
    assert reply.status == 200
    assert {d["task_id"] for d in reply.body["details"]} == A_PENDING
    assert reply.body["total_pending"] == 2
    assert {(m[1], m[2]) for m in a.new_messages()} == {(ACCOUNT_A, t) for t in A_PENDING}
    a.assert_b_unchanged()


def test_requeue_pending_resends_only_a_stale_queued_tasks(a):
    reply = a("POST", "/api/tasks/requeue-pending")
    assert reply.status == 200
    requeued = {d["task_id"] for d in reply.body["details"] if d["status"] == "requeued"}
    assert requeued == {"a-queued"}  # B's stale QUEUED shared-1 and b-queued are not re-sent
    assert {(m[1], m[2]) for m in a.new_messages()} == {(ACCOUNT_A, t) for t in {*A_PENDING, "a-queued"}}
    a.assert_b_unchanged()


def test_queue_restart_by_tenant_a_is_403_and_changes_nothing(a):
    reply = a("POST", "/api/tasks/queue/restart")
    assert (reply.status, reply.body) == (403, {"detail": "Operator role required"})
    a.assert_nothing_changed()  # processing stays paused


def test_queue_restart_by_tenant_b_is_403_and_changes_nothing(a):
    reply = a.as_b("POST", "/api/tasks/queue/restart")
    assert (reply.status, reply.body) == (403, {"detail": "Operator role required"})
    a.assert_nothing_changed()


def test_queue_restart_by_the_operator_turns_processing_on_and_touches_no_task(a):
    reply = a.as_operator("POST", "/api/tasks/queue/restart")
    assert reply.status == 200, reply.body
    assert reply.body["was_processing_before"] is False
    assert reply.body["is_processing_now"] is True
    after = a.now()
    assert all(m.enabled for m in after["processing"])
    assert {k: v for k, v in after.items() if k != "processing"} == {
        k: v for k, v in a.before.items() if k != "processing"
    }
    a.assert_logs_clean()


def test_a_tenant_sees_the_operator_restart_as_a_state_only(a):
    a.as_operator("POST", "/api/tasks/queue/restart")
    body = a("GET", "/api/tasks/queue/status").body
    assert body["queue_processing_active"] is True
    assert_tenant_view(body)


# ------------------------------------------------------------------ uploads
def test_get_of_b_upload_is_404_exactly_like_an_unknown_upload(a):
    reply = a("GET", f"/api/uploads/{a.world.upload_b}")
    unknown = a("GET", f"/api/uploads/{UNKNOWN_UPLOAD_ID}")
    assert (reply.status, reply.body) == (404, {"detail": f"Upload {a.world.upload_b} not found"})
    assert (unknown.status, unknown.body) == (404, {"detail": f"Upload {UNKNOWN_UPLOAD_ID} not found"})
    a.assert_nothing_changed()


def test_get_of_a_own_upload_answers_it(a):
    reply = a("GET", f"/api/uploads/{a.world.upload_a}")
    assert reply.status == 200
    assert reply.body["upload_id"] == a.world.upload_a
    a.assert_nothing_changed()


def test_create_upload_with_b_group_writes_only_a_upload(a):
    reply = a("POST", "/api/uploads", body={"format": "jsonl", "task_source_group_id": GROUP_B})
    assert reply.status == 201, reply.body
    assert reply.body["upload"]["fields"]["key"] == f"uploads/{ACCOUNT_A}/{reply.body['upload_id']}"
    assert a.world.fakes.uploads.get(ACCOUNT_A, reply.body["upload_id"]) is not None
    a.assert_b_unchanged()


# ------------------------------------------------------------------ the log capture itself (part D)
def test_the_log_capture_sees_powertools_json_on_stdout_and_every_record(a):
    """The "nothing logged" assertions are only worth something if the capture sees the logs."""
    from taskapi.observability import logger

    logger.debug("isolation canary", extra={"canary": "debug-level"})
    a("POST", "/api/tasks", body=factories.quiz("canary-1"))
    out = a.logs.text()
    assert '"level":"DEBUG","location":"test_the_log_capture_sees' in out  # Powertools' JSON on stdout
    assert '"message":"isolation canary"' in out
    assert "tasks created" in out
    if isinstance(a.transport, Gateway):
        assert "request authorized" in out
        assert a.world.fakes.keys.get(a.world.key_a["X-API-Key"].split(".")[2]) is not None
