"""POST /api/tasks/bulk-cancel and /api/tasks/bulk-regenerate over HTTP: limits and their texts,
counts, and another account's ids reported as not found and left untouched."""

from __future__ import annotations

import pytest

from taskapi.models.domain import TaskStatus, TaskType
from taskapi.services.processing import Outcome
from tests.unit.processing.support import ACCOUNT, BODY_OF, OTHER_ACCOUNT, create, deliver

ENDPOINTS = {
    "cancel": ("/api/tasks/bulk-cancel", "Cannot cancel more than 100 tasks at once"),
    "regenerate": ("/api/tasks/bulk-regenerate", "Cannot regenerate more than 100 tasks at once"),
}


@pytest.mark.parametrize("verb", list(ENDPOINTS))
def test_an_empty_id_list_is_refused(api, fakes, verb):
    path, _ = ENDPOINTS[verb]

    answer = api.post(path, headers=fakes.api_key(ACCOUNT), json={"task_ids": []})

    assert answer.status_code == 400
    assert answer.json() == {"detail": "task_ids list cannot be empty"}


@pytest.mark.parametrize("verb", list(ENDPOINTS))
def test_more_than_100_ids_are_refused_and_nothing_changes(api, fakes, verb):
    path, text = ENDPOINTS[verb]
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("t0"))
    before = fakes.repo.get(ACCOUNT, "t0")

    answer = api.post(path, headers=fakes.api_key(ACCOUNT), json={"task_ids": [f"t{i}" for i in range(101)]})

    assert answer.status_code == 413
    assert answer.json() == {"detail": text}
    assert fakes.repo.get(ACCOUNT, "t0") == before


@pytest.mark.parametrize("verb", list(ENDPOINTS))
def test_100_ids_and_repeats_counted_once_are_accepted(api, fakes, verb):
    path, _ = ENDPOINTS[verb]
    ids = [f"t{i}" for i in range(100)]

    answer = api.post(path, headers=fakes.api_key(ACCOUNT), json={"task_ids": ids + ids[:5]})

    assert answer.status_code == 200
    body = answer.json()
    assert body["total_requested"] == 100
    assert body["not_found_count"] == 100
    assert body["not_found_ids"] == ids


def test_bulk_cancel_of_a_mixed_list_cancels_only_the_callers_tasks(api, fakes):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("mine"), BODY_OF[TaskType.QUIZ]("same_id"))
    create(
        fakes.repo,
        fakes.queue,
        BODY_OF[TaskType.QUIZ]("theirs"),
        BODY_OF[TaskType.QUIZ]("same_id"),
        account=OTHER_ACCOUNT,
    )
    theirs = {task_id: fakes.repo.get(OTHER_ACCOUNT, task_id) for task_id in ("theirs", "same_id")}

    answer = api.post(
        "/api/tasks/bulk-cancel",
        headers=fakes.api_key(ACCOUNT),
        json={"task_ids": ["mine", "theirs", "same_id", "nobody"], "reason": "Course cancelled"},
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["not_found_ids"] == ["theirs", "nobody"]
    assert body["not_found_count"] == 2
    assert body["cancelled_count"] == 2
    assert body["total_requested"] == 4
    assert body["cancellation_reason"] == "Course cancelled"
    assert [d["task_id"] for d in body["details"]] == ["mine", "same_id"]
    assert {d["status"] for d in body["details"]} == {"cancelled"}
    for task_id in ("mine", "same_id"):
        assert fakes.repo.get(ACCOUNT, task_id).status is TaskStatus.CANCELLED
    assert {task_id: fakes.repo.get(OTHER_ACCOUNT, task_id) for task_id in theirs} == theirs


def test_bulk_regenerate_of_a_mixed_list_regenerates_only_the_callers_tasks(api, fakes):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("mine"), BODY_OF[TaskType.QUIZ]("same_id"))
    create(
        fakes.repo,
        fakes.queue,
        BODY_OF[TaskType.QUIZ]("theirs"),
        BODY_OF[TaskType.QUIZ]("same_id"),
        account=OTHER_ACCOUNT,
    )
    assert set(deliver(fakes, fakes.processor())) == {Outcome.COMPLETED}
    theirs = {task_id: fakes.repo.get(OTHER_ACCOUNT, task_id) for task_id in ("theirs", "same_id")}

    answer = api.post(
        "/api/tasks/bulk-regenerate",
        headers=fakes.api_key(ACCOUNT),
        json={"task_ids": ["theirs", "mine", "same_id"]},
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["not_found_ids"] == ["theirs"]
    assert body["regenerated_count"] == 2
    assert body["message"] == "Regenerated 2 tasks, 0 failures"
    assert [d["task_id"] for d in body["details"]] == ["mine", "same_id"]
    for task_id in ("mine", "same_id"):
        task = fakes.repo.get(ACCOUNT, task_id)
        assert (task.status, task.attempt) == (TaskStatus.QUEUED, 2)
    assert {task_id: fakes.repo.get(OTHER_ACCOUNT, task_id) for task_id in theirs} == theirs
    assert sorted((m.account_id, m.task_id) for _, m, _ in fakes.queue.sent) == [
        (ACCOUNT, "mine"),
        (ACCOUNT, "same_id"),
    ]


def test_bulk_cancel_answers_the_reference_shape_for_queued_pending_and_final_tasks(api, fakes):
    fakes.queue.refuse = lambda priority, message: "refused" if message.task_id == "pending" else None
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("queued"), BODY_OF[TaskType.QUIZ]("pending"))
    fakes.queue.refuse = None
    fakes.queue.drain()  # the queued task's message waits in SQS
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("done"))
    assert deliver(fakes, fakes.processor()) == [Outcome.COMPLETED]

    answer = api.post(
        "/api/tasks/bulk-cancel",
        headers=fakes.api_key(ACCOUNT),
        json={"task_ids": ["queued", "pending", "done"], "reason": "User requested cancellation"},
    )

    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "message": "Cancelled 2 tasks, 1 failures",
        "cancelled_count": 2,
        "failed_count": 1,
        "not_found_count": 0,
        "not_found_ids": [],
        "total_requested": 3,
        "cancellation_reason": "User requested cancellation",
        "details": [
            {
                "task_id": "queued",
                "status": "cancelled",
                "reason": "Successfully cancelled: User requested cancellation",
                "queue_result": "Task cancelled from queue",
            },
            {
                "task_id": "pending",
                "status": "cancelled",
                "reason": "Successfully cancelled: User requested cancellation",
                "queue_result": "Not in queue",
            },
            {
                "task_id": "done",
                "status": "skipped",
                "reason": "Task already in final state: COMPLETED",
            },
        ],
    }
