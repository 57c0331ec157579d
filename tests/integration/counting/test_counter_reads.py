"""Counts read from the counters table on moto (DynamoCounterStore: GetItem, BatchGetItem), the
ceiling's one GetItem whatever the backlog, counts that agree with the queries once the stream is
applied, and the reconciler's recount: a drifted counter repaired, one the consumer changed
meanwhile left alone, the drift reported, the Scan's cursor kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taskapi import wiring
from taskapi.counting.apply import DynamoCounterWriter
from taskapi.counting.reads import covered_count
from taskapi.counting.store import CURSOR_KEY, DynamoCounterStore
from taskapi.engines import get_engine
from taskapi.errors import TooManyRequests
from taskapi.models.domain import Priority, TaskStatus, isoformat
from taskapi.models.requests import BulkCreateRequest
from taskapi.services import reconcile as reconcile_module
from taskapi.services import tasks as task_service
from taskapi.services.lifecycle import cancel_tasks
from taskapi.services.processing import Processor
from taskapi.services.reconcile import reconcile
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository, task_to_item
from tests import factories
from tests.integration.counting.support import changes, recount, stored_counters, stream_records
from tests.unit.counting.test_reads import stored_task
from tests.unit.processing.support import create, load_function, principal

ACCOUNT = "acct_a"
LONG_AGO = "2020-01-01T00:00:00.000000Z"


@pytest.fixture
def counters_table(aws_env) -> str:
    return aws_env["CountersTable"]


@pytest.fixture
def store(dynamodb, counters_table) -> DynamoCounterStore:
    return DynamoCounterStore(dynamodb, counters_table)


@pytest.fixture
def queue(aws_env):
    return wiring.get_queue()


def put_counter(dynamodb: Any, table: str, key: str, *, rev: int = 1, changed_at: str = LONG_AGO, **amounts: int):
    """A counter item as the consumer writes it."""
    item = {"counter_key": {"S": key}, "rev": {"N": str(rev)}, "changed_at": {"S": changed_at}}
    item.update({name.replace("__", "#"): {"N": str(amount)} for name, amount in amounts.items()})
    dynamodb.put_item(TableName=table, Item=item)


def counter_item(dynamodb: Any, table: str, key: str) -> dict[str, Any]:
    return dynamodb.get_item(TableName=table, Key={"counter_key": {"S": key}}, ConsistentRead=True).get("Item", {})


def fill(dynamodb: Any, table: str, count: int) -> None:
    """`count` QUEUED tasks with request_data written straight into the tasks table (BatchWriteItem)."""
    items = [task_to_item(stored_task(n, status=TaskStatus.QUEUED, request_data={"topic": "x"})) for n in range(count)]
    for offset in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[offset : offset + 25]]
        dynamodb.batch_write_item(RequestItems={table: batch})


# ------------------------------------------------------------------ reads
def test_counts_come_from_the_counter_items(dynamodb, counters_table, store, calls):
    put_counter(dynamodb, counters_table, "A#acct_a", QUEUED=5, COMPLETED=2, QUEUED__high=4, QUEUED__low=1, HELD=5)
    put_counter(dynamodb, counters_table, "G#acct_a#g 1", QUEUED=3, FAILED=1)
    for n in range(3):
        put_counter(dynamodb, counters_table, f"S#acct_a#s{n}", COMPLETED=n, QUEUED=1)
    put_counter(dynamodb, counters_table, "A#acct_b", QUEUED=100)
    calls.clear()

    assert covered_count(store, ACCOUNT, TaskFilters()) == 7
    assert covered_count(store, ACCOUNT, TaskFilters(statuses=(TaskStatus.COMPLETED, TaskStatus.PENDING))) == 2
    assert covered_count(store, ACCOUNT, TaskFilters(group_id="g 1")) == 4
    assert covered_count(store, ACCOUNT, task_service.HELD_AGAINST_CEILING) == 5
    assert covered_count(store, ACCOUNT, TaskFilters(statuses=(TaskStatus.QUEUED,), priority=Priority.HIGH)) == 4
    assert covered_count(store, ACCOUNT, TaskFilters(group_id="nobody")) == 0
    assert calls == ["GetItem"] * 6

    calls.clear()
    sources = TaskFilters(source_ids=("s0", "s1", "s2", "s9"), statuses=(TaskStatus.COMPLETED,))
    assert covered_count(store, ACCOUNT, sources) == 0 + 1 + 2
    assert calls == ["BatchGetItem"]

    counts = store.get(["A#acct_a"])["A#acct_a"]
    assert (counts.rev, counts.changed_at) == (1, LONG_AGO)


def test_once_the_stream_is_applied_the_counters_answer_what_the_queries_count(
    repo, queue, dynamodb, aws_env, counters_table, store
):
    bodies = [
        factories.quiz(f"q{n}", task_source_group_id=f"g{n % 2}", task_source_id=f"s{n % 3}", priority="high")
        for n in range(9)
    ]
    create(repo, queue, *bodies, factories.documentation("bare", request_data=None, task_source_group_id="g0"))
    cancel_tasks(repo, principal(), ["q0", "q4"], reason="not needed")
    DynamoCounterWriter(dynamodb, counters_table).apply(changes(stream_records(dynamodb, aws_env["TasksTable"])))

    for filters in [
        TaskFilters(),
        TaskFilters(statuses=(TaskStatus.QUEUED,)),
        TaskFilters(statuses=(TaskStatus.CANCELLED, TaskStatus.PENDING)),
        TaskFilters(group_id="g0"),
        TaskFilters(group_id="g0", statuses=(TaskStatus.QUEUED,)),
        TaskFilters(source_ids=("s0", "s2")),
        TaskFilters(source_ids=("s1",), statuses=(TaskStatus.CANCELLED,)),
        TaskFilters(statuses=(TaskStatus.QUEUED,), priority=Priority.HIGH),
        task_service.HELD_AGAINST_CEILING,
    ]:
        assert covered_count(store, ACCOUNT, filters) == repo.count(ACCOUNT, filters), filters


# ------------------------------------------------------------------ the ceiling
@pytest.mark.parametrize("backlog", [50, 1_000])
def test_the_ceiling_reads_one_counter_item_whatever_the_backlog(
    repo, queue, dynamodb, aws_env, counters_table, store, calls, backlog
):
    fill(dynamodb, aws_env["TasksTable"], backlog)
    put_counter(dynamodb, counters_table, "A#acct_a", QUEUED=backlog, HELD=backlog)
    ceiling = task_service.Ceiling(max_unfinished=backlog + 10, retry_after_seconds=60, counters=store)
    calls.clear()

    task_service.ensure_room(repo, principal(), 10, ceiling)
    assert calls == ["GetItem"]

    calls.clear()
    with pytest.raises(TooManyRequests):
        task_service.ensure_room(repo, principal(), 11, ceiling)
    assert calls == ["GetItem"]

    calls.clear()
    request = BulkCreateRequest.model_validate(factories.bulk(*[factories.quiz() for _ in range(10)]))
    task_service.create_bulk(repo, queue, principal(), request, ceiling)
    assert calls.count("GetItem") == 1  # the ceiling: the create path itself reads no counter
    assert "Query" not in calls
    assert "Scan" not in calls


# ------------------------------------------------------------------ recount
def processor_over(repository: DynamoTaskRepository) -> Processor:
    return Processor(
        repository=repository,
        queue=wiring.get_queue(),
        results=wiring.get_results(),
        engine_for=get_engine,
        retry_delay_seconds=0,
    )


@pytest.fixture
def drift(monkeypatch) -> list[float]:
    emitted: list[float] = []

    def add_metric(name: str, unit: str, value: float, **_: Any) -> None:
        if name == "CounterDrift":
            emitted.append(value)

    monkeypatch.setattr(reconcile_module.metrics, "add_metric", add_metric)
    return emitted


def tasks_for_recount(repo: DynamoTaskRepository) -> None:
    final = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]
    repo.insert_new([stored_task(n, status=final[n % 3]) for n in range(24)])
    repo.insert_new([stored_task(n, status=TaskStatus.QUEUED, request_data={"topic": "x"}) for n in range(24, 30)])


def test_the_recount_repairs_a_drifted_counter_and_reports_the_drift(
    repo, dynamodb, aws_env, counters_table, store, drift
):
    tasks_for_recount(repo)
    truth = recount(repo, dynamodb, aws_env["TasksTable"])
    account = truth["A#acct_a"]
    wrong = {**account, "QUEUED": account["QUEUED"] + 2, "COMPLETED": account["COMPLETED"] - 1}
    put_counter(dynamodb, counters_table, "A#acct_a", rev=7, **{k.replace("#", "__"): v for k, v in wrong.items()})
    put_counter(dynamodb, counters_table, "G#acct_a#g1", rev=3, **truth["G#acct_a#g1"])
    recent = isoformat(datetime.now(UTC) - timedelta(seconds=20))
    put_counter(dynamodb, counters_table, "G#acct_a#g2", rev=3, changed_at=recent, QUEUED=50)
    dynamodb.put_item(TableName=counters_table, Item={"counter_key": {"S": "M#event-1"}, "applied": {"N": "3"}})

    report = reconcile(processor_over(repo), pending_after_seconds=120, limit=100, counters=store)

    assert (report.counters_checked, report.counters_repaired, report.counters_changed_meanwhile) == (2, 1, 0)
    assert report.counter_drift == 3
    assert drift == [3]
    assert stored_counters(dynamodb, counters_table)["A#acct_a"] == account
    assert counter_item(dynamodb, counters_table, "A#acct_a")["rev"] == {"N": "8"}
    assert counter_item(dynamodb, counters_table, "G#acct_a#g2")["QUEUED"] == {"N": "50"}  # not quiescent yet
    assert "after" not in counter_item(dynamodb, counters_table, CURSOR_KEY)  # the Scan reached the end


class ConsumerMeanwhile(DynamoTaskRepository):
    """The stream consumer adds to the counter while the recount is querying the tasks."""

    def __init__(self, client: Any, table: str, counters_table: str, key: str) -> None:
        super().__init__(client, table)
        self.counters_table, self.key, self.updates = counters_table, key, 0

    def count(self, account_id: str, filters: TaskFilters, *, at_most: int | None = None) -> int:
        if not self.updates:
            self.updates += 1
            self._client.update_item(
                TableName=self.counters_table,
                Key={"counter_key": {"S": self.key}},
                UpdateExpression="ADD #q :one, #rev :one SET changed_at = :now",
                ExpressionAttributeNames={"#q": "QUEUED", "#rev": "rev"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"S": isoformat(datetime.now(UTC))}},
            )
        return super().count(account_id, filters, at_most=at_most)


def test_a_counter_the_consumer_changed_meanwhile_is_not_overwritten(dynamodb, aws_env, counters_table, store, drift):
    repository = ConsumerMeanwhile(dynamodb, aws_env["TasksTable"], counters_table, "S#acct_a#s1")
    tasks_for_recount(repository)
    put_counter(dynamodb, counters_table, "S#acct_a#s1", rev=4, COMPLETED=40)

    report = reconcile(processor_over(repository), pending_after_seconds=120, limit=100, counters=store)

    assert (report.counters_checked, report.counters_repaired, report.counters_changed_meanwhile) == (1, 0, 1)
    assert drift == [0]
    item = counter_item(dynamodb, counters_table, "S#acct_a#s1")
    assert (item["COMPLETED"], item["QUEUED"], item["rev"]) == ({"N": "40"}, {"N": "1"}, {"N": "5"})


def test_each_run_scans_on_from_its_cursor_and_goes_around(dynamodb, counters_table):
    store = DynamoCounterStore(dynamodb, counters_table, scan_items=10)
    keys = sorted(f"S#acct_a#x{n:02d}" for n in range(12))
    for key in keys:
        put_counter(dynamodb, counters_table, key)
    for n in range(30):  # markers and busy counters: scanned, never answered
        dynamodb.put_item(TableName=counters_table, Item={"counter_key": {"S": f"M#e{n:02d}"}, "applied": {"N": "1"}})
    now = isoformat(datetime.now(UTC))

    runs = [[record.key for record in store.quiescent(changed_before=now, want=5)] for _ in range(12)]

    # moto scans in key order: 30 markers and the cursor item (3 runs of 10 items), then the
    # counters 5 at a time, then around again from the start.
    assert [len(run) for run in runs] == [0, 0, 0, 5, 5, 2] * 2
    assert [key for run in runs[:6] for key in run] == keys
    assert [key for run in runs[6:] for key in run] == keys


def test_the_reconciler_handler_recounts_and_emits_counter_drift_in_its_metrics(
    repo, dynamodb, aws_env, counters_table, monkeypatch, capsys
):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    tasks_for_recount(repo)
    put_counter(dynamodb, counters_table, "G#acct_a#g0", rev=2, COMPLETED=99)
    function = load_function("reconciler")

    answer = function.handler({}, factories.LambdaContext())

    expected = recount(repo, dynamodb, aws_env["TasksTable"])["G#acct_a#g0"]
    stored_before = {"COMPLETED": 99}
    drift = sum(abs(expected.get(s.value, 0) - stored_before.get(s.value, 0)) for s in TaskStatus)
    assert (answer["counters_checked"], answer["counters_repaired"], answer["counter_drift"]) == (1, 1, drift)
    assert stored_counters(dynamodb, counters_table)["G#acct_a#g0"] == expected
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [metric["CounterDrift"] for metric in emitted if "CounterDrift" in metric] == [[drift]]
