"""The events a stream record makes (taskapi.webhooks.events): each task transition exactly its
event, task.progress at most once per task per 5-second window, group.completed when a group's
last open task ends, upload events; the same records always make the same ids; bodies < 64 KB."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from taskapi.models.domain import Priority, TaskStatus
from taskapi.results import InMemoryResultStore
from taskapi.uploads.model import Upload, UploadCounts, UploadStatus
from taskapi.webhooks.events import (
    MAX_BODY_BYTES,
    events_of_records,
    upload_event,
)
from taskapi.webhooks.models import parse_time
from tests.unit.webhooks.stream_support import (
    ACCOUNT,
    COUNTERS_TABLE,
    TASKS_TABLE,
    at,
    counter_image,
    counter_record,
    lifecycle,
    moved,
    progressed,
    record,
    task,
    task_record,
)

RESULTS = InMemoryResultStore()


def derive(records: list[dict[str, Any]]):
    return events_of_records(records, tasks_table=TASKS_TABLE, counters_table=COUNTERS_TABLE, results=RESULTS)


def types(records: list[dict[str, Any]]) -> list[str]:
    return [event.type for event in derive(records)]


def payload(event) -> dict[str, Any]:
    return json.loads(event.body)


# ------------------------------------------------------------------ task transitions
def test_a_task_from_insert_to_completion_makes_queued_started_progress_completed():
    records = [task_record(old, new) for old, new in lifecycle()]

    assert types(records) == ["task.queued", "task.started", "task.progress", "task.completed"]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (TaskStatus.PENDING, TaskStatus.QUEUED, "task.queued"),
        (TaskStatus.QUEUED, TaskStatus.PROCESSING, "task.started"),
        (TaskStatus.PROCESSING, TaskStatus.QUEUED, "task.queued"),  # a failed try, retried
        (TaskStatus.PROCESSING, TaskStatus.COMPLETED, "task.completed"),
        (TaskStatus.PROCESSING, TaskStatus.FAILED, "task.failed"),
        (TaskStatus.QUEUED, TaskStatus.CANCELLED, "task.cancelled"),
        (TaskStatus.PENDING, TaskStatus.CANCELLED, "task.cancelled"),
        (TaskStatus.QUEUED, TaskStatus.FAILED, "task.failed"),  # dead-lettered
    ],
)
def test_each_transition_makes_exactly_its_event(start, end, expected):
    before = task(status=start)
    after = moved(before, end, 3)

    events = derive([task_record(before, after)])

    assert [event.type for event in events] == [expected]
    body = payload(events[0])
    assert body["data"]["status"] == end.value
    assert body["sequence"] == after.version
    assert body["created_at"] == after.updated_at


def test_writes_that_are_no_transition_make_no_event():
    queued = task(status=TaskStatus.QUEUED)
    reprioritised = queued.model_copy(update={"priority": Priority.LOW, "updated_at": at(2), "version": 2})
    pending = task(status=TaskStatus.PENDING, request_data=None)
    noted = pending.model_copy(update={"updated_at": at(3), "version": 2})
    regenerated = moved(task(status=TaskStatus.COMPLETED), TaskStatus.PENDING, 4, attempt=2)

    assert types([task_record(queued, reprioritised), task_record(pending, noted)]) == []
    assert types([task_record(task(status=TaskStatus.COMPLETED), regenerated)]) == []
    assert types([task_record(queued, None)]) == []  # a removal


def test_a_regenerated_task_is_queued_started_and_completed_again_with_new_ids():
    first_run = [task_record(old, new) for old, new in lifecycle()]
    done = lifecycle()[-1][1]
    reopened = moved(done, TaskStatus.PENDING, 20, attempt=2)
    requeued = moved(reopened, TaskStatus.QUEUED, 21)
    again = moved(requeued, TaskStatus.PROCESSING, 22)
    finished = moved(again, TaskStatus.COMPLETED, 30)
    second_run = [
        task_record(a, b) for a, b in [(done, reopened), (reopened, requeued), (requeued, again), (again, finished)]
    ]

    first, second = derive(first_run), derive(second_run)

    assert [e.type for e in second] == ["task.queued", "task.started", "task.completed"]
    assert not {e.event_id for e in first} & {e.event_id for e in second}
    assert payload(second[-1])["data"]["attempt"] == 2


def test_a_claim_taken_over_after_its_lease_is_started_again_once():
    claimed = moved(task(status=TaskStatus.QUEUED), TaskStatus.PROCESSING, 1)
    reclaimed = moved(claimed, TaskStatus.PROCESSING, 3000, tries=2)  # a new state_since
    progress_after = progressed(reclaimed, 3010, 40.0)

    assert types([task_record(claimed, reclaimed), task_record(reclaimed, progress_after)]) == [
        "task.started",
        "task.progress",
    ]


def test_progress_makes_at_most_one_event_per_task_per_five_second_window():
    claimed = moved(task(status=TaskStatus.QUEUED), TaskStatus.PROCESSING, 0.5)
    writes = [claimed]
    for second in range(1, 21):  # a write every second for 20 s
        writes.append(progressed(writes[-1], second + 0.5, float(second)))
    records = [task_record(old, new) for old, new in itertools.pairwise(writes)]

    events = derive(records)

    assert all(event.type == "task.progress" for event in events)
    windows = [int(parse_time(event.created_at).timestamp() // 5) for event in events]
    assert len(windows) == len(set(windows)) == 4  # windows starting at 5, 10, 15 and 20 s
    assert [payload(e)["data"]["progress"] for e in events] == [5.0, 10.0, 15.0, 20.0]


def test_a_completed_task_carries_its_result_url_as_get_answers_it():
    done = lifecycle()[-1][1]

    (event,) = derive([task_record(lifecycle()[-1][0], done)])

    body = payload(event)
    assert body["data"]["result_url"] == RESULTS.url("results/acct_a/t1/quiz.json")
    assert body["data"]["task_id"] == "t1"
    assert body["data"]["request_data"] == done.request_data
    assert body["group_id"] == "g1"
    assert body["account_id"] == ACCOUNT
    assert body["id"] == event.event_id
    assert (event.task_id, event.group_id) == ("t1", "g1")


def test_a_task_too_large_for_a_body_is_sent_without_request_data_and_says_truncated():
    big = task(status=TaskStatus.QUEUED, request_data={"story_prompt": "x" * 70_000})
    started = moved(big, TaskStatus.PROCESSING, 1)

    (event,) = derive([task_record(big, started)])

    assert len(event.body.encode()) < MAX_BODY_BYTES
    data = payload(event)["data"]
    assert data["truncated"] is True
    assert "request_data" not in data
    assert data["status"] == "PROCESSING"


def test_a_small_task_is_not_truncated():
    (event,) = derive([task_record(None, task(status=TaskStatus.QUEUED))])

    assert "truncated" not in payload(event)["data"]


# ------------------------------------------------------------------ replay
def test_the_same_records_derived_again_make_the_same_events():
    records = [task_record(old, new) for old, new in lifecycle()]

    first, again = derive(records), derive(records)

    assert [(e.event_id, e.type) for e in first] == [(e.event_id, e.type) for e in again]
    assert len({e.event_id for e in first}) == 4
    assert all(e.event_id.startswith("evt_20260301100") for e in first)
    assert [e.event_id for e in first] == sorted(e.event_id for e in first)  # ids sort by time


# ------------------------------------------------------------------ groups
def test_a_group_whose_last_open_task_ends_is_completed_once_with_counts():
    open_ = counter_image("g1", rev=4, changed_at=at(10), COMPLETED=2, PROCESSING=1)
    closed = counter_image("g1", rev=5, changed_at=at(12), COMPLETED=2, FAILED=1, PROCESSING=0)
    later = counter_image("g1", rev=6, changed_at=at(15), COMPLETED=3, FAILED=0, PROCESSING=0)

    events = derive([counter_record(open_, closed), counter_record(closed, later)])

    assert [e.type for e in events] == ["group.completed"]  # the later move among final tasks: none
    body = payload(events[0])
    assert body["data"] == {
        "group_id": "g1",
        "counts": {"PENDING": 0, "QUEUED": 0, "PROCESSING": 0, "COMPLETED": 2, "FAILED": 1, "CANCELLED": 0},
        "total": 3,
    }
    assert (body["sequence"], body["group_id"], body["created_at"]) == (5, "g1", at(12))


def test_a_group_reopened_by_a_regenerate_is_completed_again_with_another_id():
    open_ = counter_image("g1", rev=1, changed_at=at(1), QUEUED=1)
    closed = counter_image("g1", rev=2, changed_at=at(2), COMPLETED=1, QUEUED=0)
    reopened = counter_image("g1", rev=3, changed_at=at(3), COMPLETED=0, PENDING=1, QUEUED=0)
    closed_again = counter_image("g1", rev=4, changed_at=at(9), COMPLETED=1, PENDING=0, QUEUED=0)
    records = [
        counter_record(open_, closed),
        counter_record(closed, reopened),
        counter_record(reopened, closed_again),
    ]

    events = derive(records)

    assert [e.type for e in events] == ["group.completed", "group.completed"]
    assert events[0].event_id != events[1].event_id
    assert [e.event_id for e in derive(records)] == [e.event_id for e in events]


def test_counters_that_are_not_a_closing_group_make_no_event():
    still_open = counter_image("g1", rev=2, changed_at=at(2), COMPLETED=1, PROCESSING=1)
    account = {"counter_key": {"S": "A#acct_a"}, "rev": {"N": "3"}, "changed_at": {"S": at(3)}, "QUEUED": {"N": "0"}}
    account_before = {**account, "rev": {"N": "2"}, "QUEUED": {"N": "1"}}
    marker = {"counter_key": {"S": "M#rec-1"}, "applied": {"N": "3"}}
    emptied = counter_image("g1", rev=3, changed_at=at(3), PROCESSING=0)

    assert (
        types(
            [
                counter_record(counter_image("g1", rev=1, changed_at=at(1), PROCESSING=2), still_open),
                counter_record(account_before, account),
                counter_record(None, marker),
                counter_record(counter_image("g1", rev=2, changed_at=at(2), PROCESSING=1), emptied),  # no tasks left
            ]
        )
        == []
    )


def test_records_are_told_apart_by_their_table():
    group = counter_record(
        counter_image("g1", rev=1, changed_at=at(1), QUEUED=1),
        counter_image("g1", rev=2, changed_at=at(2), QUEUED=0, CANCELLED=1),
    )
    foreign = record(None, task_record(None, task(status=TaskStatus.QUEUED))["dynamodb"]["NewImage"], table="Other")

    assert types([task_record(None, task(status=TaskStatus.QUEUED)), group, foreign]) == [
        "task.queued",
        "group.completed",
    ]


# ------------------------------------------------------------------ uploads
def upload(status: UploadStatus, **changes: Any) -> Upload:
    fields: dict[str, Any] = {
        "account_id": ACCOUNT,
        "upload_id": "6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c",
        "user_id": "u1",
        "auth_method": "jwt",
        "format": "jsonl",
        "status": status,
        "created_at": at(0),
        "updated_at": at(30),
        "object_key": "uploads/acct_a/6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c",
        "task_source_group_id": "g1",
        "counts": UploadCounts(created=2, existing=1, invalid=1),
    }
    return Upload(**(fields | changes))


def test_a_final_upload_makes_its_event_with_the_summary_get_answers():
    done = upload(UploadStatus.COMPLETED, report_key="reports/acct_a/x.jsonl")

    event = upload_event(done, report_url="https://example.test/report")
    failed = upload_event(upload(UploadStatus.FAILED, error="The file is empty"))

    assert event is not None
    assert failed is not None
    body = payload(event)
    assert (body["type"], body["group_id"]) == ("upload.completed", "g1")
    assert body["data"]["rows"] == 4
    assert body["data"]["created"] == 2
    assert body["data"]["report_url"] == "https://example.test/report"
    assert payload(failed)["type"] == "upload.failed"
    assert payload(failed)["data"]["error"] == "The file is empty"
    assert upload_event(done, report_url="https://example.test/other").event_id == event.event_id


def test_an_upload_not_final_makes_no_event():
    assert upload_event(upload(UploadStatus.PROCESSING)) is None
    assert upload_event(upload(UploadStatus.PENDING)) is None


def test_a_task_too_large_even_without_request_data_keeps_its_short_fields():
    big = task(status=TaskStatus.PROCESSING, request_data={"story_prompt": "x" * 70_000})
    failed = moved(big, TaskStatus.FAILED, 2, error_message="e" * 70_000)

    (event,) = derive([task_record(big, failed)])

    data = payload(event)["data"]
    assert len(event.body.encode()) < MAX_BODY_BYTES
    assert (data["truncated"], data["status"], data["task_id"]) == (True, "FAILED", "t1")
    assert "error_message" not in data
