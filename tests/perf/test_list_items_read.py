"""DynamoDB items read (ScannedCount over Query answers) to serve one page of tasks filtered by
task_source_group_id, through services.tasks.list_tasks and the DynamoDB repository on moto.

The table holds 20,000 tasks: 20 accounts x 10 groups x 100 tasks. Target for the page query:
at most 2 x (skip + limit) items read. `total` comes from a COUNT query whenever the page did not
read every match; that query reads every match of the filter, and is reported on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from infra.template import LocalNames
from taskapi.auth.principal import Principal
from taskapi.models.domain import Priority, Task, TaskEvent, TaskStatus, TaskType, isoformat
from taskapi.services import tasks as task_service
from taskapi.services.tasks import TaskPage
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository, task_to_item
from tests.perf.support import AwsCalls, Figure, Measurement, Recorder, provision_stack

ACCOUNTS = 20
GROUPS_PER_ACCOUNT = 10
TASKS_PER_GROUP = 100
LIMIT = 50
BATCH_WRITE = 25
STATUSES = (TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED)
ACCOUNT = "acct_07"
GROUP = "grp_07_3"
PRINCIPAL = Principal(account_id=ACCOUNT, user_id=f"api_key_user_{ACCOUNT}", auth_method="api_key")


def account_id(a: int) -> str:
    return f"acct_{a:02d}"


def group_id(a: int, g: int) -> str:
    return f"grp_{a:02d}_{g}"


def all_tasks() -> Iterator[Task]:
    """Groups interleaved in time (task n of every group, then task n+1 ...), statuses in turn."""
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for a in range(ACCOUNTS):
        for n in range(TASKS_PER_GROUP):
            for g in range(GROUPS_PER_ACCOUNT):
                sequence = n * GROUPS_PER_ACCOUNT + g
                created = isoformat(start + timedelta(seconds=sequence))
                yield Task(
                    account_id=account_id(a),
                    task_id=f"t_{a:02d}_{g}_{n:03d}",
                    user_id=f"api_key_user_{account_id(a)}",
                    task_type=TaskType.DOCUMENTATION,
                    priority=Priority.NORMAL,
                    status=STATUSES[n % len(STATUSES)],
                    created_at=created,
                    updated_at=created,
                    task_source_name="bench",
                    task_source_id=f"src_{a:02d}_{g}",
                    task_source_group_id=group_id(a, g),
                    request_data={"story_prompt": f"Lesson {n} of group {g}"},
                    events=[TaskEvent(timestamp=created, message="Task pending")],
                )


@dataclass
class Table:
    repository: DynamoTaskRepository
    calls: AwsCalls

    def list(
        self, filters: TaskFilters, *, skip: int = 0, next_token: str | None = None
    ) -> tuple[TaskPage, Measurement]:
        with self.calls.measuring() as measured:
            page = task_service.list_tasks(
                self.repository, PRINCIPAL, filters, limit=LIMIT, skip=skip, next_token=next_token
            )
        return page, measured


@pytest.fixture(scope="module")
def table() -> Iterator[Table]:
    """20,000 tasks in the template's table, written with BatchWriteItem in the repository's item layout."""
    with mock_aws():
        session = boto3.Session(region_name=LocalNames().region)
        stack = provision_stack(session)
        client = session.client("dynamodb")
        name = stack.tables["TasksTable"]
        batch: list[dict] = []
        written = 0

        def flush() -> None:
            nonlocal batch, written
            requests = {name: [{"PutRequest": {"Item": item}} for item in batch]}
            while requests:
                requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            written += len(batch)
            batch = []

        for task in all_tasks():
            batch.append(task_to_item(task))
            if len(batch) == BATCH_WRITE:
                flush()
        if batch:
            flush()
        assert written == ACCOUNTS * GROUPS_PER_ACCOUNT * TASKS_PER_GROUP
        yield Table(repository=DynamoTaskRepository(client, name), calls=AwsCalls(client))


def _report(bench: Recorder, name: str, measured: Measurement, *, skip: int, page_target: float | None = None) -> None:
    page_read = measured.items_read(counting=False)
    count_read = measured.items_read(counting=True)
    print(f"[bench]      calls: {measured.breakdown()}")
    bench.record(
        Figure(
            f"{name}.page_items_read",
            page_read,
            "items",
            2 * (skip + LIMIT) if page_target is None else page_target,
            note=f"the page Query (skip={skip}, limit={LIMIT})",
        )
    )
    bench.record(Figure(f"{name}.count_items_read", count_read, "items", note="the COUNT Query for total"))
    bench.record(Figure(f"{name}.request_items_read", page_read + count_read, "items", note="page + COUNT"))


def _newest_first(page: TaskPage) -> bool:
    keys = [t.created_sk for t in page.tasks]
    return keys == sorted(keys, reverse=True)


def test_first_page_of_a_group(table: Table, bench: Recorder) -> None:
    page, measured = table.list(TaskFilters(group_id=GROUP))

    assert len(page.tasks) == LIMIT
    assert {t.task_source_group_id for t in page.tasks} == {GROUP}
    assert _newest_first(page)
    assert page.total == TASKS_PER_GROUP
    assert page.next_token is not None
    _report(bench, "list.group.first_page", measured, skip=0)
    assert measured.items_read(counting=False) <= 2 * LIMIT


def test_page_after_skipping_100_of_a_group(table: Table, bench: Recorder) -> None:
    """The group holds 100 tasks: skip=100 reads them all, answers an empty page, needs no COUNT."""
    page, measured = table.list(TaskFilters(group_id=GROUP), skip=100)

    assert page.tasks == []
    assert page.total == TASKS_PER_GROUP
    _report(bench, "list.group.skip_100", measured, skip=100)
    assert measured.items_read(counting=False) <= 2 * (100 + LIMIT)


def test_page_after_skipping_100_of_an_account(table: Table, bench: Recorder) -> None:
    """No filter (1,000 tasks in the account): a non-empty page behind 100 skipped tasks."""
    page, measured = table.list(TaskFilters(), skip=100)

    assert len(page.tasks) == LIMIT
    assert {t.account_id for t in page.tasks} == {ACCOUNT}
    assert _newest_first(page)
    assert page.total == GROUPS_PER_ACCOUNT * TASKS_PER_GROUP
    _report(bench, "list.account.skip_100", measured, skip=100)
    assert measured.items_read(counting=False) <= 2 * (100 + LIMIT)


def test_second_page_through_next_token(table: Table, bench: Recorder) -> None:
    """DESIGN.md 3: the cursor "costs only the page it reads"."""
    first, _ = table.list(TaskFilters(group_id=GROUP))
    second, measured = table.list(TaskFilters(group_id=GROUP), next_token=first.next_token)

    assert len(second.tasks) == LIMIT
    assert not {t.task_id for t in first.tasks} & {t.task_id for t in second.tasks}
    assert first.tasks[-1].created_sk > second.tasks[0].created_sk
    assert _newest_first(second)
    assert second.total == TASKS_PER_GROUP
    assert second.next_token is None
    _report(bench, "list.group.next_token_page", measured, skip=0, page_target=LIMIT + 1)
    # The cursor carries page 1's total: no COUNT query, at most one item past the page.
    assert measured.items_read(counting=True) == 0
    assert measured.items_read(counting=False) <= LIMIT + 1


def test_group_and_status(table: Table, bench: Recorder) -> None:
    """A filter the group index cannot serve by key (status) becomes a FilterExpression: items
    are read and then dropped. A quarter of the group matches."""
    page, measured = table.list(TaskFilters(group_id=GROUP, statuses=(TaskStatus.COMPLETED,)))

    assert {t.status for t in page.tasks} == {TaskStatus.COMPLETED}
    assert len(page.tasks) == page.total == TASKS_PER_GROUP // len(STATUSES)
    _report(bench, "list.group_and_status.first_page", measured, skip=0)
    assert measured.items_read(counting=False) <= 2 * LIMIT
