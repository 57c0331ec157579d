"""What each change of a task does to the counters (taskapi.counting.contributions), read from the
item images the repository writes (task_to_item), as the stream carries them."""

from __future__ import annotations

from typing import Any

import pytest

from taskapi.counting.contributions import contributions, delta
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType
from taskapi.store.dynamodb import task_to_item

NOW = "2026-01-02T03:04:05.000000Z"
LATER = "2026-01-02T03:05:00.000000Z"
A = "A#acct_a"
REQUEST = {"story_prompt": "Pythagoras discovered a theorem about right triangles."}


def task(**changes: Any) -> Task:
    fields: dict[str, Any] = {
        "account_id": "acct_a",
        "task_id": "t1",
        "user_id": "u1",
        "task_type": TaskType.QUIZ,
        "priority": Priority.HIGH,
        "created_at": NOW,
        "updated_at": NOW,
        "request_data": REQUEST,
    }
    return Task(**(fields | changes))


def image(t: Task) -> dict[str, Any]:
    return task_to_item(t)


def moved(t: Task, status: TaskStatus, **changes: Any) -> Task:
    return t.moved_to(status, LATER, f"now {status.value}", **changes)


# ------------------------------------------------------------------ contributions of one item
def test_a_queued_task_with_a_group_and_a_source_counts_in_its_account_group_and_source():
    queued = task(status=TaskStatus.QUEUED, task_source_group_id="g1", task_source_id="s1")

    assert contributions(image(queued)) == {
        A: {"QUEUED": 1, "QUEUED#high": 1, "HELD": 1},
        "G#acct_a#g1": {"QUEUED": 1},
        "S#acct_a#s1": {"QUEUED": 1},
    }


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
def test_a_final_task_counts_its_status_alone(status):
    assert contributions(image(task(status=status))) == {A: {status.value: 1}}


def test_an_item_that_is_not_a_task_or_no_item_counts_nothing():
    assert contributions(None) == {}
    assert contributions({}) == {}
    assert contributions({"account_id": {"S": "acct_a"}, "task_id": {"S": "t1"}}) == {}  # no status
    assert contributions({"account_id": {"S": "a"}, "task_id": {"S": "t"}, "status": {"S": "DONE"}}) == {}
    assert contributions({"counter_key": {"S": "A#acct_a"}, "QUEUED": {"N": "3"}}) == {}


def test_the_has_request_data_flag_alone_holds_a_place_too():
    """Index projections carry has_request_data (BOOL) for items whose request_data they omit."""
    item = image(task(request_data=None)) | {"has_request_data": {"BOOL": True}}
    assert contributions(item) == {A: {"PENDING": 1, "HELD": 1}}


# ------------------------------------------------------------------ transitions
def test_create_with_request_data_holds_a_place_without_it_does_not():
    assert delta(None, image(task(status=TaskStatus.QUEUED))) == {A: {"QUEUED": 1, "QUEUED#high": 1, "HELD": 1}}
    assert delta(None, image(task(request_data=None))) == {A: {"PENDING": 1}}
    assert delta(None, image(task())) == {A: {"PENDING": 1, "HELD": 1}}  # PENDING, its send refused


def test_queued_to_processing_to_completed_moves_status_and_priority_and_frees_the_place():
    queued = task(status=TaskStatus.QUEUED, task_source_group_id="g1")
    processing = moved(queued, TaskStatus.PROCESSING)
    completed = moved(processing, TaskStatus.COMPLETED, progress=100.0)

    assert delta(image(queued), image(processing)) == {
        A: {"QUEUED": -1, "QUEUED#high": -1, "PROCESSING": 1, "PROCESSING#high": 1},
        "G#acct_a#g1": {"QUEUED": -1, "PROCESSING": 1},
    }
    assert delta(image(processing), image(completed)) == {
        A: {"PROCESSING": -1, "PROCESSING#high": -1, "COMPLETED": 1, "HELD": -1},
        "G#acct_a#g1": {"PROCESSING": -1, "COMPLETED": 1},
    }


@pytest.mark.parametrize("before", [TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING])
def test_cancel_moves_the_task_to_cancelled_and_frees_its_place(before):
    running = task(status=before, task_source_id="s1")
    cancelled = moved(running, TaskStatus.CANCELLED, error_message="Cancelled: no longer needed")

    change = delta(image(running), image(cancelled))

    expected = {before.value: -1, "CANCELLED": 1, "HELD": -1}
    if before in (TaskStatus.QUEUED, TaskStatus.PROCESSING):
        expected[f"{before.value}#high"] = -1
    assert change == {A: expected, "S#acct_a#s1": {before.value: -1, "CANCELLED": 1}}


def test_regenerate_takes_a_final_task_back_to_pending_holding_a_place_again():
    failed = task(status=TaskStatus.FAILED, task_source_group_id="g1")
    regenerated = moved(failed, TaskStatus.PENDING, attempt=2, tries=0)
    queued = moved(regenerated, TaskStatus.QUEUED)

    assert delta(image(failed), image(regenerated)) == {
        A: {"FAILED": -1, "PENDING": 1, "HELD": 1},
        "G#acct_a#g1": {"FAILED": -1, "PENDING": 1},
    }
    assert delta(image(regenerated), image(queued)) == {
        A: {"PENDING": -1, "QUEUED": 1, "QUEUED#high": 1},
        "G#acct_a#g1": {"PENDING": -1, "QUEUED": 1},
    }


def test_patch_giving_request_data_to_a_stored_task_holds_a_place():
    stored = task(request_data=None)
    given = stored.model_copy(update={"request_data": REQUEST, "updated_at": LATER})

    assert delta(image(stored), image(given)) == {A: {"HELD": 1}}


def test_patch_setting_changing_and_clearing_group_and_source_moves_their_counters():
    plain = task(status=TaskStatus.QUEUED)
    grouped = plain.model_copy(update={"task_source_group_id": "g1", "task_source_id": "s1"})
    regrouped = grouped.model_copy(update={"task_source_group_id": "g2"})
    cleared = regrouped.model_copy(update={"task_source_group_id": None, "task_source_id": None})

    assert delta(image(plain), image(grouped)) == {"G#acct_a#g1": {"QUEUED": 1}, "S#acct_a#s1": {"QUEUED": 1}}
    assert delta(image(grouped), image(regrouped)) == {"G#acct_a#g1": {"QUEUED": -1}, "G#acct_a#g2": {"QUEUED": 1}}
    assert delta(image(regrouped), image(cleared)) == {"G#acct_a#g2": {"QUEUED": -1}, "S#acct_a#s1": {"QUEUED": -1}}


def test_a_priority_change_while_queued_moves_the_per_priority_count_only():
    high = task(status=TaskStatus.QUEUED, task_source_group_id="g1")
    urgent = high.model_copy(update={"priority": Priority.URGENT})

    assert delta(image(high), image(urgent)) == {A: {"QUEUED#high": -1, "QUEUED#urgent": 1}}
    pending = task()
    assert delta(image(pending), image(pending.model_copy(update={"priority": Priority.LOW}))) == {}


def test_a_progress_write_or_an_event_moves_no_counter():
    processing = task(status=TaskStatus.PROCESSING, task_source_group_id="g1", task_source_id="s1")
    progressed = processing.model_copy(
        update={"progress": 40.0, "progress_message": "Writing questions", "updated_at": LATER, "version": 2}
    )

    assert delta(image(processing), image(progressed)) == {}


def test_deletion_takes_every_contribution_back():
    queued = task(status=TaskStatus.QUEUED, task_source_group_id="g1", task_source_id="s1")

    assert delta(image(queued), None) == {
        A: {"QUEUED": -1, "QUEUED#high": -1, "HELD": -1},
        "G#acct_a#g1": {"QUEUED": -1},
        "S#acct_a#s1": {"QUEUED": -1},
    }


def test_a_task_moved_to_another_id_or_account_is_a_removal_and_an_insertion():
    """The key never changes on a MODIFY, but delta only compares images: any two tasks work."""
    one = task(status=TaskStatus.QUEUED)
    other = task(account_id="acct_b", status=TaskStatus.QUEUED)

    assert delta(image(one), image(other)) == {
        A: {"QUEUED": -1, "QUEUED#high": -1, "HELD": -1},
        "A#acct_b": {"QUEUED": 1, "QUEUED#high": 1, "HELD": 1},
    }
