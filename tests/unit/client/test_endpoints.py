"""Every endpoint method, round trip against the real app over the in-memory fakes."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from taskapi.auth.tokens import issue_local_token
from taskapi.client import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TaskApiClient,
    Unauthorized,
    UnprocessableEntity,
)
from taskapi.models.domain import TaskStatus, TaskType
from taskapi.models.requests import QuizTaskCreate, VideoTaskCreate
from taskapi.models.responses import (
    BulkCancelOut,
    BulkRegenerateOut,
    CountOut,
    HealthOut,
    ProcessPendingOut,
    QueueRestartOut,
    QueueStatusOut,
    RequeuePendingOut,
    TaskListOut,
    TaskOut,
)
from taskapi.settings import Settings
from tests import factories
from tests.unit.client.conftest import BASE_URL


def _path(request) -> str:
    return request.url.path


def test_health(api):
    answer = api.health()
    assert isinstance(answer, HealthOut)
    assert answer.status == "ok"


def test_create_task_then_get_task(api):
    created = api.create_task(factories.quiz("q1"))
    assert isinstance(created, TaskOut)
    assert (created.task_id, created.task_type, created.status) == ("q1", TaskType.QUIZ, TaskStatus.QUEUED)
    assert api.get_task("q1") == created


def test_create_task_accepts_a_model_and_fills_its_id(api, fakes):
    created = api.create_task(VideoTaskCreate.model_validate(factories.video()))
    assert uuid.UUID(created.task_id).version == 4
    assert fakes.repo.get("acct_a", created.task_id) is not None


def test_create_tasks_bulk_applies_shared_video_settings_and_fills_missing_ids(api, seen):
    specs = [factories.video("v1"), factories.quiz(), QuizTaskCreate.model_validate(factories.quiz(task_id=""))]
    created = api.create_tasks_bulk(specs, logo_url="https://example.com/logo.png")
    assert [t.task_type for t in created] == [TaskType.VIDEO, TaskType.QUIZ, TaskType.QUIZ]
    assert created[0].task_id == "v1"
    assert all(uuid.UUID(t.task_id).version == 4 for t in created[1:])
    assert created[0].request_data is not None
    assert created[0].request_data["logo_url"] == "https://example.com/logo.png"
    assert "task_id" not in specs[1], "the caller's dict is not changed"
    assert [_path(r) for r in seen] == ["/api/tasks/bulk"]


def test_create_tasks_bulk_validates_with_the_server_models_before_sending(api, seen):
    with pytest.raises(ValidationError):
        api.create_tasks_bulk([factories.video(request_data={"story_prompt": "x", "segments": 0})])
    with pytest.raises(ValidationError, match="more than 100"):
        api.create_tasks_bulk([factories.quiz() for _ in range(101)])
    assert seen == []


def test_create_tasks_chunks_250_tasks_into_3_calls_and_reports_progress(api, seen, fakes):
    progress: list[tuple[int, int | None]] = []
    created = api.create_tasks(
        [factories.quiz(task_source_group_id="g") for _ in range(250)],
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert len(created) == 250
    assert len({t.task_id for t in created}) == 250
    assert [_path(r) for r in seen] == ["/api/tasks/bulk"] * 3
    assert progress == [(100, 250), (200, 250), (250, 250)]
    assert api.count_tasks(task_source_group_id="g").total == 250


def test_create_tasks_takes_any_iterable(api, seen):
    progress: list[tuple[int, int | None]] = []
    tasks = (factories.documentation() for _ in range(5))
    created = api.create_tasks(tasks, chunk_size=2, on_progress=lambda done, total: progress.append((done, total)))
    assert len(created) == 5
    assert len(seen) == 3
    assert progress == [(2, None), (4, None), (5, None)]
    with pytest.raises(ValueError, match="chunk_size"):
        api.create_tasks([], chunk_size=101)


def test_get_task_of_no_such_id_is_not_found_and_not_retried(api, seen, sleeps):
    with pytest.raises(NotFound) as caught:
        api.get_task("nope")
    assert caught.value.status_code == 404
    assert caught.value.detail == "Task nope not found"
    assert caught.value.response is not None
    assert len(seen) == 1
    assert sleeps == []


def test_list_tasks_filters_and_pages(api):
    api.create_tasks_bulk(
        [
            factories.video("a1", task_source_group_id="g1", task_source_id="s1"),
            factories.quiz("a2", task_source_group_id="g1", task_source_id="s2"),
            factories.quiz("a3", task_source_group_id="g2", task_source_id="s1"),
        ]
    )
    page = api.list_tasks(task_source_group_id="g1")
    assert isinstance(page, TaskListOut)
    assert {t.task_id for t in page.tasks} == {"a1", "a2"}
    assert page.total == 2
    assert page.next_token is None
    assert {t.task_id for t in api.list_tasks(task_source_ids=["s1"]).tasks} == {"a1", "a3"}
    assert {t.task_id for t in api.list_tasks(task_ids="a1,a3", task_type=TaskType.QUIZ).tasks} == {"a3"}
    assert api.list_tasks(status=[TaskStatus.COMPLETED, TaskStatus.FAILED]).tasks == []
    first = api.list_tasks(limit=2)
    assert len(first.tasks) == 2
    assert first.next_token is not None
    rest = api.list_tasks(limit=2, next_token=first.next_token)
    assert [t.task_id for t in first.tasks + rest.tasks] == [t.task_id for t in api.list_tasks().tasks]
    assert [t.task_id for t in api.list_tasks(skip=1).tasks] == [t.task_id for t in api.list_tasks().tasks][1:]


def test_list_tasks_rejects_unknown_filters_and_maps_422(api, seen):
    with pytest.raises(TypeError, match="bogus"):
        api.list_tasks(bogus="x")  # type: ignore[call-arg]
    with pytest.raises(UnprocessableEntity) as caught:
        api.list_tasks(status="NOT_A_STATUS")
    assert caught.value.detail[0]["loc"] == ["query", "status"]
    assert "query.status" in str(caught.value)
    with pytest.raises(BadRequest):
        api.list_tasks(next_token="garbage")
    assert len(seen) == 2


def test_iter_tasks_walks_every_page(api, seen):
    api.create_tasks([factories.documentation(task_source_group_id="g") for _ in range(25)])
    api.create_task(factories.documentation(task_source_group_id="other"))
    seen.clear()
    tasks = list(api.iter_tasks(task_source_group_id="g", page_size=10))
    assert len(tasks) == 25
    assert len({t.task_id for t in tasks}) == 25
    assert [_path(r) for r in seen] == ["/api/tasks"] * 3
    assert [r.url.params.get("next_token") is None for r in seen] == [True, False, False]
    assert [t.task_id for t in tasks] == [t.task_id for t in api.list_tasks(task_source_group_id="g").tasks]


def test_count_tasks_and_counts_by_status(api, fakes):
    api.create_tasks_bulk([factories.quiz("c1"), factories.quiz("c2"), factories.quiz("c3")])
    api.bulk_cancel(["c3"])
    count = api.count_tasks()
    assert isinstance(count, CountOut)
    assert count.total == 3
    assert api.count_tasks(status="QUEUED").total == 2
    counts = api.counts_by_status()
    assert counts == {
        TaskStatus.PENDING: 0,
        TaskStatus.QUEUED: 2,
        TaskStatus.PROCESSING: 0,
        TaskStatus.COMPLETED: 0,
        TaskStatus.FAILED: 0,
        TaskStatus.CANCELLED: 1,
    }
    assert api.counts_by_status(status="queued,CANCELLED", task_ids=["c1", "c3"]) == {
        TaskStatus.QUEUED: 1,
        TaskStatus.CANCELLED: 1,
    }


def test_bulk_cancel(api):
    api.create_tasks_bulk([factories.quiz("k1"), factories.quiz("k2")])
    answer = api.bulk_cancel(["k1", "k2", "missing"], reason="Project changed")
    assert isinstance(answer, BulkCancelOut)
    assert answer.cancelled_count == 2
    assert answer.not_found_ids == ["missing"]
    assert answer.cancellation_reason == "Project changed"
    assert api.get_task("k1").status == TaskStatus.CANCELLED
    assert api.bulk_cancel(["k1"]).cancellation_reason == "Bulk cancellation requested"


def test_bulk_endpoints_map_400_and_413(api):
    with pytest.raises(BadRequest, match="cannot be empty"):
        api.bulk_cancel([])
    with pytest.raises(PayloadTooLarge, match="more than 100"):
        api.bulk_regenerate([f"t{n}" for n in range(101)])


def test_bulk_regenerate_with_video_overrides(api):
    api.create_tasks_bulk([factories.video("r1")])
    api.bulk_cancel(["r1"])
    answer = api.bulk_regenerate(["r1"], intro_video_url="https://example.com/intro.mp4")
    assert isinstance(answer, BulkRegenerateOut)
    assert answer.regenerated_count == 1
    task = api.get_task("r1")
    assert task.attempt == 2
    assert task.request_data is not None
    assert task.request_data["intro_video_url"] == "https://example.com/intro.mp4"
    skipped = api.bulk_regenerate(["r1"], force=True, reset_to_pending=False)
    assert skipped.details[0].status == "skipped"


def test_cancel_all_collects_every_page_then_cancels_100_per_call(api, seen):
    api.create_tasks([factories.quiz(task_source_group_id="big") for _ in range(150)])
    api.create_tasks_bulk([factories.quiz("keep", task_source_group_id="small")])
    seen.clear()
    progress: list[tuple[int, int | None]] = []
    answers = api.cancel_all(
        task_source_group_id="big", reason="batch dropped", on_progress=lambda d, t: progress.append((d, t))
    )
    assert [a.cancelled_count for a in answers] == [100, 50]
    assert progress == [(100, 150), (150, 150)]
    assert [_path(r) for r in seen] == ["/api/tasks", "/api/tasks", "/api/tasks/bulk-cancel", "/api/tasks/bulk-cancel"]
    assert seen[0].url.params["status"] == "PENDING,QUEUED,PROCESSING"
    assert api.counts_by_status(task_source_group_id="big")[TaskStatus.CANCELLED] == 150
    assert api.get_task("keep").status == TaskStatus.QUEUED
    assert api.cancel_all(task_source_group_id="big") == []


def test_cancel_all_and_regenerate_all_need_a_filter(api, seen):
    with pytest.raises(ValueError, match="at least one filter"):
        api.cancel_all()
    with pytest.raises(ValueError, match="at least one filter"):
        api.regenerate_all(task_source_group_id="", status=None)
    assert seen == []


def test_regenerate_all(api):
    api.create_tasks([factories.quiz(task_source_group_id="again") for _ in range(120)])
    api.cancel_all(task_source_group_id="again")
    progress: list[tuple[int, int | None]] = []
    answers = api.regenerate_all(
        task_source_group_id="again", status="CANCELLED", on_progress=lambda d, t: progress.append((d, t))
    )
    assert [a.regenerated_count for a in answers] == [100, 20]
    assert progress == [(100, 120), (120, 120)]
    assert api.counts_by_status(task_source_group_id="again")[TaskStatus.QUEUED] == 120
    assert all(t.attempt == 2 for t in api.iter_tasks(task_source_group_id="again"))


def test_queue_status_and_restart(api, fakes, app_http):
    api.create_tasks_bulk([factories.quiz("s1")])
    status = api.queue_status()
    assert isinstance(status, QueueStatusOut)
    assert status.queue_processing_active is True
    assert status.queued_task_ids == ["s1"]
    assert status.overall_queue_status.by_priority["normal"] == 1
    fakes.control.set_enabled(False)
    with pytest.raises(Forbidden, match="Operator role required"):
        api.queue_restart()  # a tenant's key
    operator = TaskApiClient(BASE_URL, api_key=fakes.api_key("ops", role="operator")["X-API-Key"], http=app_http)
    restarted = operator.queue_restart()
    assert isinstance(restarted, QueueRestartOut)
    assert (restarted.was_processing_before, restarted.is_processing_now) == (False, True)


def test_queue_process_pending_and_requeue_pending(api, fakes):
    fakes.queue.refuse = lambda priority, message: "queue unavailable"
    api.create_tasks_bulk([factories.quiz("p1"), factories.quiz("p2")])
    assert api.get_task("p1").status == TaskStatus.PENDING
    fakes.queue.refuse = None
    processed = api.queue_process_pending()
    assert isinstance(processed, ProcessPendingOut)
    assert processed.queued_count == 2
    assert api.get_task("p1").status == TaskStatus.QUEUED
    requeued = api.requeue_pending()
    assert isinstance(requeued, RequeuePendingOut)
    assert (requeued.queued_count, requeued.requeued_count) == (0, 0)


# ------------------------------------------------------------------ credentials


def test_api_key_is_sent_as_x_api_key(api, seen, api_key):
    api.list_tasks()
    headers = seen[0].headers
    assert headers["X-API-Key"] == api_key
    assert "Authorization" not in headers
    assert "X-Account-ID" not in headers


def test_bearer_token_is_sent_with_x_account_id(app_http, seen):
    token = issue_local_token(Settings(), subject="u1", accounts=["acct_a"])
    with TaskApiClient(BASE_URL, token=token, account_id="acct_a", http=app_http) as api:
        created = api.create_task(factories.quiz("b1"))
    assert (created.account_id, created.user_id) == ("acct_a", "u1")
    assert seen[0].headers["Authorization"] == f"Bearer {token}"
    assert seen[0].headers["X-Account-ID"] == "acct_a"
    assert "X-API-Key" not in seen[0].headers
    assert not app_http.is_closed, "an injected client is left to its owner"


def test_wrong_credentials_are_unauthorized_or_forbidden(app_http, sleeps):
    token = issue_local_token(Settings(), subject="u1", accounts=["acct_a"])
    other = TaskApiClient(BASE_URL, token=token, account_id="acct_b", http=app_http, sleep=sleeps.append)
    with pytest.raises(Forbidden, match="acct_b"):
        other.list_tasks()
    invalid = TaskApiClient(BASE_URL, api_key="tk.acct_a.nokey.secret", http=app_http, sleep=sleeps.append)
    with pytest.raises(Unauthorized, match="Invalid API key"):
        invalid.count_tasks()
    assert invalid.health().status == "ok"
    assert sleeps == []


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, "exactly one"),
        ({"api_key": "k", "token": "t", "account_id": "a"}, "exactly one"),
        ({"api_key": "", "token": ""}, "exactly one"),
        ({"token": "t"}, "account_id"),
        ({"api_key": "k", "account_id": "a"}, "own account"),
        ({"api_key": "k", "max_retries": -1}, "max_retries"),
        ({"api_key": "k", "backoff_base": -1}, "negative"),
    ],
)
def test_constructor_checks_its_arguments(credentials, message):
    with pytest.raises(ValueError, match=message):
        TaskApiClient(BASE_URL, **credentials)


def test_client_made_here_is_closed_by_the_context_manager():
    with TaskApiClient(BASE_URL, api_key="k") as api:
        http = api._http
    assert http.is_closed


def test_update_task_gives_a_stored_task_its_request_data_and_moves_its_group(api, fakes):
    api.create_tasks_bulk([{"task_id": "bare", "task_type": "quiz"}])
    assert api.get_task("bare").status == TaskStatus.PENDING

    updated = api.update_task(
        "bare",
        request_data={"story_prompt": "Pythagoras and right triangles.", "difficulty": "easy"},
        task_source_group_id="Math 101",
    )

    assert updated.status == TaskStatus.QUEUED
    assert updated.task_source_group_id == "Math 101"
    assert [t.task_id for t in api.iter_tasks(task_source_group_id="Math 101")] == ["bare"]
    with pytest.raises(NotFound):
        api.update_task("nobody", priority="urgent")
    with pytest.raises(ValidationError):
        api.update_task("bare")  # nothing to change: refused before sending
