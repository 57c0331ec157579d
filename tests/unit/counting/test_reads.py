"""Counts read from the counters (taskapi.counting.reads): which filters a counter covers, that its
answer is the query's, and the DynamoDB adapter's reads (GetItem for one key, BatchGetItem for
more, unprocessed keys retried, eventually consistent)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from taskapi.counting.memory import InMemoryCounterStore
from taskapi.counting.reads import counter_reads, covered_count
from taskapi.counting.store import CounterKey, Counts, DynamoCounterStore
from taskapi.errors import Retryable
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType
from taskapi.services.tasks import HELD_AGAINST_CEILING
from taskapi.store.base import TaskFilters
from taskapi.store.memory import InMemoryTaskRepository

ACCOUNT = "acct_a"
OPEN = (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING)


def stored_task(n: int, account: str = ACCOUNT, **fields: Any) -> Task:
    """Task n: its status, priority, type, group, source and request_data cycle independently."""
    at = f"2025-01-01T00:00:{n % 60:02d}.{n:06d}Z"
    values: dict[str, Any] = {
        "account_id": account,
        "task_id": f"t{n:04d}",
        "user_id": "user_1",
        "task_type": list(TaskType)[n % 4],
        "priority": list(Priority)[(n // 2) % 4],
        "status": list(TaskStatus)[n % 6],
        "created_at": at,
        "updated_at": at,
        "task_source_group_id": None if n % 7 == 0 else f"g{n % 3}",
        "task_source_id": None if n % 5 == 0 else f"s{n % 4}",
        "request_data": None if n % 3 == 0 else {"topic": "Pythagoras"},
    }
    values.update(fields)
    return Task(**values)


@pytest.fixture(scope="module")
def repo() -> InMemoryTaskRepository:
    repository = InMemoryTaskRepository()
    repository.insert_new([stored_task(n) for n in range(240)])
    repository.insert_new([stored_task(n, account="acct_b") for n in range(30)])  # another account
    return repository


def is_covered(filters: TaskFilters) -> bool:
    """The README's rule, written out independently of counting.reads."""
    if filters.task_ids or filters.task_type is not None:
        return False
    place = filters.group_id is not None or bool(filters.source_ids)
    if filters.queueable is not None:
        return filters.queueable and set(filters.statuses) == set(OPEN) and not place and filters.priority is None
    if filters.priority is not None:
        in_flight = {TaskStatus.QUEUED, TaskStatus.PROCESSING}
        return not place and bool(filters.statuses) and set(filters.statuses) <= in_flight
    return not (filters.group_id is not None and filters.source_ids)


COMBINATIONS = [
    TaskFilters(
        group_id=group,
        source_ids=sources,
        task_ids=ids,
        statuses=statuses,
        task_type=task_type,
        priority=priority,
        queueable=queueable,
    )
    for group, sources, ids, statuses, task_type, priority, queueable in itertools.product(
        (None, "g1"),
        ((), ("s1",), ("s1", "s2", "s1")),
        ((), ("t0001", "t0004")),
        (
            (),
            (TaskStatus.QUEUED,),
            (TaskStatus.PROCESSING, TaskStatus.QUEUED),
            (TaskStatus.COMPLETED, TaskStatus.PENDING),
            OPEN,
            (TaskStatus.FAILED, TaskStatus.FAILED),
        ),
        (None, TaskType.QUIZ),
        (None, Priority.HIGH),
        (None, True, False),
    )
]


def test_every_filter_combination_is_answered_by_a_counter_exactly_when_one_covers_it(repo):
    counters = InMemoryCounterStore(tasks=repo.all_tasks)
    covered = 0
    for filters in COMBINATIONS:
        counted = covered_count(counters, ACCOUNT, filters)
        if not is_covered(filters):
            assert counted is None, filters
            continue
        covered += 1
        assert counted == repo.count(ACCOUNT, filters), filters
    # 6 status sets x 4 places (none, group, one source, sources), 2 priorities' QUEUED/PROCESSING, HELD
    assert covered == 6 * 4 + 2 + 1


@pytest.mark.parametrize(
    ("filters", "reads"),
    [
        (TaskFilters(), [("A#acct_a", ("PENDING", "QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"))]),
        (TaskFilters(statuses=(TaskStatus.FAILED, TaskStatus.QUEUED)), [("A#acct_a", ("FAILED", "QUEUED"))]),
        (TaskFilters(group_id="g#1", statuses=(TaskStatus.QUEUED,)), [("G#acct_a#g#1", ("QUEUED",))]),
        (
            TaskFilters(source_ids=("s1", "s2", "s1"), statuses=(TaskStatus.COMPLETED,)),
            [("S#acct_a#s1", ("COMPLETED",)), ("S#acct_a#s2", ("COMPLETED",))],
        ),
        (HELD_AGAINST_CEILING, [("A#acct_a", ("HELD",))]),
        (
            TaskFilters(statuses=(TaskStatus.QUEUED, TaskStatus.PROCESSING), priority=Priority.LOW),
            [("A#acct_a", ("QUEUED#low", "PROCESSING#low"))],
        ),
        (TaskFilters(statuses=(TaskStatus.QUEUED,), queueable=True), None),
        (TaskFilters(priority=Priority.LOW), None),
        (TaskFilters(statuses=(TaskStatus.PENDING,), priority=Priority.LOW), None),
        (TaskFilters(group_id="g1", source_ids=("s1",)), None),
        (TaskFilters(group_id="g1", statuses=(TaskStatus.QUEUED,), priority=Priority.LOW), None),
        (TaskFilters(task_type=TaskType.VIDEO), None),
        (TaskFilters(task_ids=("t1",)), None),
    ],
)
def test_the_counter_attributes_read_for_a_count(filters, reads):
    assert counter_reads(ACCOUNT, filters) == reads


def test_the_ceiling_reads_one_item_and_several_sources_one_batch(repo):
    counters = InMemoryCounterStore(tasks=repo.all_tasks)

    held = covered_count(counters, ACCOUNT, HELD_AGAINST_CEILING)
    assert (counters.calls, counters.items_read) == (1, 1)
    assert held == repo.count(ACCOUNT, HELD_AGAINST_CEILING) > 0

    covered_count(counters, ACCOUNT, TaskFilters(source_ids=tuple(f"s{n}" for n in range(50))))
    assert (counters.calls, counters.items_read) == (2, 51)


def test_a_counter_that_does_not_exist_counts_zero():
    assert covered_count(InMemoryCounterStore(), "acct_new", TaskFilters()) == 0


def test_counter_keys_parse_back_even_when_a_group_id_holds_the_separator():
    assert CounterKey.parse("A#acct_a") == CounterKey("A", "acct_a")
    assert CounterKey.parse("G#acct_a#g#1") == CounterKey("G", "acct_a", "g#1")
    assert CounterKey.parse("S#acct_a#") == CounterKey("S", "acct_a", "")
    assert [CounterKey.parse(key) for key in ("M#event-1", "R#cursor", "A#", "G#acct_a", "X#y")] == [None] * 5
    assert "HELD" in CounterKey("A", "acct_a").attributes
    assert CounterKey("G", "acct_a", "g").attributes == tuple(status.value for status in TaskStatus)


def test_counts_treat_absent_attributes_as_zero():
    counts = Counts({"QUEUED": 3, "FAILED": 1}, rev=4)
    assert counts.of("PENDING") == 0
    assert counts.statuses() == 4
    assert counts.statuses([TaskStatus.QUEUED, TaskStatus.QUEUED]) == 3
    assert counts.total(["QUEUED", "QUEUED#low"]) == 3
    assert dict(counts) == {"QUEUED": 3, "FAILED": 1}


# ------------------------------------------------------------------ the DynamoDB adapter's reads
def item(key: str, **amounts: int) -> dict[str, Any]:
    return {
        "counter_key": {"S": key},
        **{name: {"N": str(amount)} for name, amount in amounts.items()},
        "rev": {"N": "7"},
        "changed_at": {"S": "2025-01-01T00:00:00.000000Z"},
    }


class ScriptedClient:
    """Answers GetItem and BatchGetItem from a dict of items; the first `unprocessed` BatchGetItem
    calls leave their last key unprocessed, as DynamoDB may."""

    def __init__(self, items: dict[str, dict[str, Any]], unprocessed: int = 0) -> None:
        self.items = items
        self.unprocessed = unprocessed
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("GetItem", kwargs))
        found = self.items.get(kwargs["Key"]["counter_key"]["S"])
        return {} if found is None else {"Item": found}

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("BatchGetItem", kwargs))
        ((table, request),) = kwargs["RequestItems"].items()
        keys = request["Keys"]
        left: list[dict[str, Any]] = []
        if self.unprocessed:
            self.unprocessed -= 1
            keys, left = keys[:-1], keys[-1:]
        answer: dict[str, Any] = {
            "Responses": {
                table: [self.items[k["counter_key"]["S"]] for k in keys if k["counter_key"]["S"] in self.items]
            }
        }
        if left:
            answer["UnprocessedKeys"] = {table: {"Keys": left}}
        return answer


def test_one_key_is_one_eventually_consistent_get_item():
    client = ScriptedClient({"A#acct_a": item("A#acct_a", QUEUED=2, HELD=3)})

    counts = DynamoCounterStore(client, "counters").get(["A#acct_a", "A#acct_a"])

    assert list(counts) == ["A#acct_a"]
    assert dict(counts["A#acct_a"]) == {"QUEUED": 2, "HELD": 3}
    assert counts["A#acct_a"].rev == 7
    ((operation, call),) = client.calls
    assert operation == "GetItem"
    assert "ConsistentRead" not in call


def test_several_keys_are_one_batch_get_item_per_hundred_with_unprocessed_keys_retried(monkeypatch):
    monkeypatch.setattr("taskapi.counting.store.time.sleep", lambda seconds: None)
    keys = [f"S#acct_a#s{n}" for n in range(150)]
    client = ScriptedClient({key: item(key, COMPLETED=n) for n, key in enumerate(keys) if n % 2 == 0}, unprocessed=1)

    counts = DynamoCounterStore(client, "counters").get(keys)

    assert [counts[key].of("COMPLETED") for key in keys] == [n if n % 2 == 0 else 0 for n in range(150)]
    assert [operation for operation, _ in client.calls] == ["BatchGetItem"] * 3  # 100, its 1 left over, 50
    assert [len(call["RequestItems"]["counters"]["Keys"]) for _, call in client.calls] == [100, 1, 50]
    assert all("ConsistentRead" not in call["RequestItems"]["counters"] for _, call in client.calls)


def test_keys_left_unprocessed_again_and_again_are_a_retryable_error(monkeypatch):
    monkeypatch.setattr("taskapi.counting.store.time.sleep", lambda seconds: None)
    client = ScriptedClient({}, unprocessed=100)

    with pytest.raises(Retryable):
        DynamoCounterStore(client, "counters").get(["A#a", "A#b"])
