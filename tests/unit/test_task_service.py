"""Task creation, reading, listing and counting against the in-memory repository."""

from __future__ import annotations

import uuid

import pytest

from taskapi.errors import InvalidRequest, NotFound
from taskapi.models.domain import TaskStatus
from taskapi.models.requests import BulkCreateRequest
from taskapi.queueing.queues import InMemoryTaskQueue
from taskapi.services import tasks as service
from taskapi.store.base import TaskFilters
from taskapi.store.memory import InMemoryTaskRepository
from tests import factories


@pytest.fixture
def repo() -> InMemoryTaskRepository:
    return InMemoryTaskRepository()


def create(repo, *tasks, principal=None, queue=None, **shared):
    request = BulkCreateRequest.model_validate(factories.bulk(*tasks, **shared))
    return service.create_bulk(repo, queue or InMemoryTaskQueue(), principal or factories.principal(), request)


def test_bulk_create_answers_every_task_in_request_order(repo):
    created = create(repo, factories.video("task_001"), factories.quiz(), factories.documentation("doc_1"))
    assert [t.task_type for t in created] == ["video", "quiz", "documentation"]
    assert created[0].task_id == "task_001"
    assert created[2].task_id == "doc_1"
    assert uuid.UUID(created[1].task_id).version == 4
    for task in created:
        assert task.status is TaskStatus.QUEUED
        assert task.progress == 0
        assert task.account_id == "acct_a"
        assert task.user_id == "user_1"
        assert [e.message for e in task.events] == [
            "Task pending",
            f"Task added to {task.task_type.value} processing queue",
        ]


def test_shared_video_settings_fill_video_tasks_only_and_never_override(repo):
    own_logo = factories.video(request_data={"story_prompt": "p", "segments": 1, "logo_url": "https://own/logo.png"})
    created = create(
        repo,
        factories.video(),
        own_logo,
        factories.quiz(),
        logo_url="https://example.com/logo.png",
        intro_video_url="https://example.com/intro.mp4",
    )
    assert created[0].request_data["logo_url"] == "https://example.com/logo.png"
    assert created[0].request_data["intro_video_url"] == "https://example.com/intro.mp4"
    assert "outro_video_url" not in created[0].request_data
    assert created[1].request_data["logo_url"] == "https://own/logo.png"
    assert "logo_url" not in created[2].request_data


def test_existing_ids_are_answered_as_stored_and_not_rewritten(repo):
    (first,) = create(repo, factories.video("t1", priority="low"))
    again = create(repo, factories.video("t1", priority="urgent"), factories.quiz("t2"))
    assert again[0] == first
    assert again[0].priority == "low"
    assert again[1].task_id == "t2"
    assert service.count_tasks(repo, factories.principal(), TaskFilters()) == 2


def test_two_accounts_own_the_same_task_id_independently(repo):
    create(repo, factories.video("shared_id"), principal=factories.principal("acct_a"))
    create(repo, factories.quiz("shared_id"), principal=factories.principal("acct_b"))
    a = service.get_task(repo, factories.principal("acct_a"), "shared_id")
    b = service.get_task(repo, factories.principal("acct_b"), "shared_id")
    assert (a.task_type, b.task_type) == ("video", "quiz")


def test_another_accounts_task_is_not_found_like_a_missing_one(repo):
    create(repo, factories.video("mine"), principal=factories.principal("acct_a"))
    with pytest.raises(NotFound) as foreign:
        service.get_task(repo, factories.principal("acct_b"), "mine")
    with pytest.raises(NotFound) as missing:
        service.get_task(repo, factories.principal("acct_b"), "never")
    assert str(foreign.value).replace("mine", "X") == str(missing.value).replace("never", "X")


def test_tasks_without_request_data_are_stored(repo):
    (task,) = create(repo, {"task_type": "video"})
    assert task.request_data is None
    assert task.status is TaskStatus.PENDING


def _seed(repo, count: int, **fields):
    for start in range(0, count, 100):
        create(repo, *[factories.documentation(f"t{n:04d}", **fields) for n in range(start, min(count, start + 100))])


def test_pages_walk_every_match_once_newest_first(repo):
    _seed(repo, 250, task_source_group_id="g1")
    seen, token, pages = [], None, 0
    while True:
        page = service.list_tasks(
            repo, factories.principal(), TaskFilters(group_id="g1"), limit=60, skip=0, next_token=token
        )
        assert page.total == 250
        seen += [t.task_id for t in page.tasks]
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 250
    everything = service.list_tasks(repo, factories.principal(), TaskFilters(), limit=1000, skip=0, next_token=None)
    assert seen == [t.task_id for t in everything.tasks]
    assert [t.created_sk for t in everything.tasks] == sorted((t.created_sk for t in everything.tasks), reverse=True)


def test_skip_and_limit(repo):
    _seed(repo, 30)
    whole = service.list_tasks(repo, factories.principal(), TaskFilters(), limit=100, skip=0, next_token=None)
    page = service.list_tasks(repo, factories.principal(), TaskFilters(), limit=10, skip=5, next_token=None)
    assert [t.task_id for t in page.tasks] == [t.task_id for t in whole.tasks[5:15]]
    assert (page.total, page.limit, page.skip) == (30, 10, 5)
    assert page.next_token is not None
    tail = service.list_tasks(repo, factories.principal(), TaskFilters(), limit=10, skip=0, next_token=page.next_token)
    assert [t.task_id for t in tail.tasks] == [t.task_id for t in whole.tasks[15:25]]
    last = service.list_tasks(repo, factories.principal(), TaskFilters(), limit=10, skip=0, next_token=tail.next_token)
    assert [t.task_id for t in last.tasks] == [t.task_id for t in whole.tasks[25:]]
    assert last.next_token is None


def test_a_cursor_only_works_with_its_own_filters(repo):
    _seed(repo, 5, task_source_group_id="g1")
    page = service.list_tasks(repo, factories.principal(), TaskFilters(group_id="g1"), limit=2, skip=0, next_token=None)
    with pytest.raises(InvalidRequest):
        service.list_tasks(repo, factories.principal(), TaskFilters(), limit=2, skip=0, next_token=page.next_token)
    with pytest.raises(InvalidRequest):
        service.list_tasks(repo, factories.principal(), TaskFilters(), limit=2, skip=0, next_token="garbage!")


def test_filters_combine(repo):
    create(
        repo,
        factories.video("v1", task_source_id="course_123", task_source_group_id="batch_456"),
        factories.quiz("q1", task_source_id="course_456", task_source_group_id="batch_456", priority="low"),
        factories.quiz("q2", task_source_id="course_789", task_source_group_id="batch_789"),
        factories.documentation("d1"),
    )

    def ids(**filters):
        page = service.list_tasks(
            repo, factories.principal(), TaskFilters(**filters), limit=100, skip=0, next_token=None
        )
        assert page.total == service.count_tasks(repo, factories.principal(), TaskFilters(**filters))
        return sorted(t.task_id for t in page.tasks)

    assert ids(group_id="batch_456") == ["q1", "v1"]
    assert ids(source_ids=("course_123", "course_789")) == ["q2", "v1"]
    assert ids(group_id="batch_456", source_ids=("course_123", "course_789")) == ["v1"]
    assert ids(task_ids=("v1", "d1", "nope")) == ["d1", "v1"]
    assert ids(task_type="quiz") == ["q1", "q2"]
    assert ids(task_type="quiz", priority="low") == ["q1"]
    assert ids(statuses=(TaskStatus.QUEUED,)) == ["d1", "q1", "q2", "v1"]
    assert ids(statuses=(TaskStatus.PENDING,)) == []
    assert ids(statuses=(TaskStatus.COMPLETED,)) == []


def test_create_tasks_reports_which_ids_it_created_and_which_existed(repo):
    create(repo, factories.quiz("old"))
    specs = BulkCreateRequest.model_validate(factories.bulk(factories.quiz("new"), factories.quiz("old"))).tasks

    creation = service.create_tasks(repo, InMemoryTaskQueue(), factories.principal(), specs)

    assert [t.task_id for t in creation.tasks] == ["new", "old"]
    assert creation.created == {"new"}
    again = service.create_tasks(repo, InMemoryTaskQueue(), factories.principal(), specs)
    assert again.created == frozenset()
