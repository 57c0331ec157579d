"""Items read per request as one account's backlog grows: 1,000, 10,000 and 100,000 tasks, through
the real service functions (with the counters table, as the API runs them) and the DynamoDB
repository on moto, DynamoDB read units computed exactly by tests/support/capacity.py.

The table is filled fast with BatchWriteItem of task_to_item(...) items (tests.perf.support.
moto_fast_fill: moto's per-attribute size re-check and the table's stream off for the fill only):
statuses mostly QUEUED and COMPLETED (45 % each, then FAILED 4 %, PENDING 3 %, PROCESSING 3 %), 10
groups, 20 sources, four priorities, plus 2 % of the backlog spread over three other accounts
(noise). The levels grow in place (10,000 adds 9,000 newer tasks to the 1,000). The fill writes
the counters itself, where the stream consumer (functions/counters) would once caught up: each
filled item's contributions (taskapi.counting.contributions) summed, the counter items put with
BatchWriteItem. BENCH_TRACE=1 prints the time of each fill and request; BENCH_BACKLOG_MAX=10000
stops at 10,000 tasks.

Requests: a bulk create of 100 checked against the unfinished-task ceiling (a Ceiling above the
backlog, counted from the account's counter; its 100 tasks are removed again after it), the
first page of GET /api/tasks (limit 50, whose `total` comes from the counters) and GET
/api/tasks/count/total, each without filter, by status, by group, by group + status, by source
and by source + status, and GET /api/tasks/queue/status for a tenant. Issue 15: the same items
read at 1,000 and at 100,000 tasks, give or take the page itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from infra.provision import provision
from infra.template import LocalNames, function_environment
from taskapi.auth.principal import Principal
from taskapi.counting.contributions import CHANGED_AT, REV, Counts, account_key, add_into, contributions
from taskapi.counting.store import DynamoCounterStore
from taskapi.models.domain import Priority, Task, TaskEvent, TaskStatus, TaskType, isoformat
from taskapi.models.requests import BulkCreateRequest
from taskapi.queueing.control import LocalProcessingControl
from taskapi.queueing.queues import SqsTaskQueue
from taskapi.services import queue_admin
from taskapi.services import tasks as task_service
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository, task_to_item
from tests import factories
from tests.perf.support import Figure, Recorder, moto_fast_fill, moto_transactions_without_table_copies
from tests.support.capacity import Capacity, CapacityMeter, item_size

LIMIT_VARIABLE = "BENCH_BACKLOG_MAX"
BACKLOGS = (1_000, 10_000, 100_000)
ACCOUNT = "acct_backlog"
PRINCIPAL = Principal(account_id=ACCOUNT, user_id=f"api_key_user_{ACCOUNT}", auth_method="api_key")
NOISE_ACCOUNTS = ("acct_noise_0", "acct_noise_1", "acct_noise_2")
NOISE_SHARE = 50
"""One noise task (in another account) per this many backlog tasks."""
GROUPS, SOURCES = 10, 20
GROUP, SOURCE = "grp_3", "src_07"
LIMIT = 50
BULK = 100
LIST_TARGET_READ_UNITS = 30
"""Issue 15: a list page of 50 should cost at most 30 read units."""
PAGE_ITEMS = 2 * (LIMIT + 1) + LIMIT
"""Issue 15's tolerance, "the page itself": what one page of 50 may read, its index entries (the
first Query's Limit: limit + 1, twice that under a FilterExpression) and its items. Where the
smallest backlog holds fewer matches than a page (a source has 50 tasks at 1,000, 20 of them
QUEUED), a request reads less there; once its pages are full (10,000 and 100,000 here) it reads
exactly the same items, whatever the backlog."""
MAX_ITEM_BYTES = 400 * 1024

STATUS_MIX = (
    [TaskStatus.QUEUED] * 45
    + [TaskStatus.COMPLETED] * 45
    + [TaskStatus.FAILED] * 4
    + [TaskStatus.PENDING] * 3
    + [TaskStatus.PROCESSING] * 3
)
START = datetime(2025, 1, 1, tzinfo=UTC)
QUIZ_DATA = factories.quiz()["request_data"]
DOCUMENT_DATA = factories.documentation()["request_data"]


pytestmark = pytest.mark.timeout(1800)
"""The fixture fills and measures every level before the first test: beyond the suite's 300 s."""


def levels() -> tuple[int, ...]:
    most = int(os.environ.get(LIMIT_VARIABLE) or BACKLOGS[-1])
    return tuple(level for level in BACKLOGS if level <= most) or BACKLOGS[:1]


def backlog_task(account: str, n: int) -> Task:
    """Task n of an account: its status from STATUS_MIX (spread: 37 is prime to 100), events and
    result as the processor leaves them, one second newer than task n - 1."""
    status = STATUS_MIX[(n * 37) % len(STATUS_MIX)]
    at = isoformat(START + timedelta(seconds=n))
    quiz = n % 2 == 0
    task_type = TaskType.QUIZ if quiz else TaskType.DOCUMENTATION
    events = [TaskEvent(timestamp=at, message="Task pending")]
    if status is not TaskStatus.PENDING:
        events.append(TaskEvent(timestamp=at, message=f"Task added to {task_type.value} processing queue"))
    if status in (TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED):
        events.append(TaskEvent(timestamp=at, message="Processing started (try 1 of 3)"))
    extra: dict[str, Any] = {}
    if status is TaskStatus.COMPLETED:
        events.append(TaskEvent(timestamp=at, message="Task completed"))
        primary = "quiz.json" if quiz else "document.md"
        extra = {
            "progress": 100.0,
            "result_key": f"results/{account}/t{n:06d}/attempt-1/{primary}",
            "result_summary": {"title": "Pythagoras", "questions": 5} if quiz else {"title": "How to", "words": 420},
        }
    elif status is TaskStatus.FAILED:
        events.append(TaskEvent(timestamp=at, message="Task failed (cannot succeed): bad request_data"))
        extra = {"error_message": "bad request_data", "error_details": {"tries": 1, "permanent": True}}
    elif status is TaskStatus.PROCESSING:
        extra = {"progress": 40.0, "progress_message": "Writing questions", "tries": 1}
    return Task(
        account_id=account,
        task_id=f"t{n:06d}",
        user_id=f"api_key_user_{account}",
        task_type=task_type,
        priority=list(Priority)[n % len(Priority)],
        status=status,
        created_at=at,
        updated_at=at,
        state_since=at,
        task_source_name="bench",
        task_source_id=f"src_{n % SOURCES:02d}",
        task_source_group_id=f"grp_{n % GROUPS}",
        request_data=QUIZ_DATA if quiz else DOCUMENT_DATA,
        events=events,
        **extra,
    )


def write_items(client: Any, table: str, items: Iterable[dict[str, Any]]) -> int:
    """BatchWriteItem by 25 (puts or deletes), retrying what comes back unprocessed."""
    written = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        pending: dict[str, Any] = {table: batch}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    for request in items:
        batch.append(request)
        if len(batch) == 25:
            flush()
            written += len(batch)
            batch = []
    if batch:
        flush()
        written += len(batch)
    return written


@dataclass(frozen=True)
class Reading:
    items_read: int
    read_units: float
    write_units: float
    breakdown: str


@dataclass
class Backlog:
    """What each request read at each level, and how long things took."""

    readings: dict[str, dict[int, Reading]] = field(default_factory=dict)
    fill_seconds: dict[int, float] = field(default_factory=dict)
    measure_seconds: dict[int, float] = field(default_factory=dict)


@dataclass
class Context:
    repository: DynamoTaskRepository
    counters: DynamoCounterStore
    queue: SqsTaskQueue
    control: LocalProcessingControl
    plain: Any
    table: str
    backlog: int


Cleanup = Callable[[], object] | None
"""What a request leaves to undo once measured (None: nothing)."""


def _bulk(context: Context) -> Cleanup:
    """A bulk create of 100 quiz tasks, the ceiling checked (room to spare); answers their removal."""
    ids = [f"bulk-{context.backlog}-{n:03d}" for n in range(BULK)]
    request = BulkCreateRequest.model_validate(
        {"tasks": [factories.quiz(task_id, priority="normal", task_source_id=SOURCE) for task_id in ids]}
    )
    ceiling = task_service.Ceiling(
        max_unfinished=10 * context.backlog + 1_000, retry_after_seconds=60, counters=context.counters
    )
    created = task_service.create_bulk(context.repository, context.queue, PRINCIPAL, request, ceiling)
    assert len(created) == BULK
    # Once measured, gone again: every level holds exactly its backlog.
    deletes = ({"DeleteRequest": {"Key": {"account_id": {"S": ACCOUNT}, "task_id": {"S": i}}}} for i in ids)
    return lambda: write_items(context.plain, context.table, deletes)


def _lister(filters: TaskFilters) -> Callable[[Context], Cleanup]:
    def run(context: Context) -> Cleanup:
        page = task_service.list_tasks(
            context.repository, PRINCIPAL, filters, limit=LIMIT, skip=0, next_token=None, counters=context.counters
        )
        assert page.tasks, "every filter matches tasks of the backlog"
        return None

    return run


def _counter(filters: TaskFilters) -> Callable[[Context], Cleanup]:
    def run(context: Context) -> Cleanup:
        assert task_service.count_tasks(context.repository, PRINCIPAL, filters, counters=context.counters) > 0
        return None

    return run


def _queue_status(context: Context) -> Cleanup:
    answer = queue_admin.queue_status(
        context.repository, context.queue, context.control, PRINCIPAL, counters=context.counters
    )
    assert answer["success"]
    assert answer["account_task_counts"]["queued"] > 0
    return None


FILTERS = {
    "no filter": TaskFilters(),
    "status=queued": TaskFilters(statuses=(TaskStatus.QUEUED,)),
    "group": TaskFilters(group_id=GROUP),
    "group+status=completed": TaskFilters(group_id=GROUP, statuses=(TaskStatus.COMPLETED,)),
    "source": TaskFilters(source_ids=(SOURCE,)),
    "source+status=queued": TaskFilters(source_ids=(SOURCE,), statuses=(TaskStatus.QUEUED,)),
}
REQUESTS: dict[str, Callable[[Context], Cleanup]] = {
    "bulk create 100 (ceiling checked)": _bulk,
    **{f"list first page, {name}": _lister(filters) for name, filters in FILTERS.items()},
    **{f"count/total, {name}": _counter(filters) for name, filters in FILTERS.items()},
    "queue status (tenant)": _queue_status,
}


def _slug(name: str) -> str:
    keep = "".join(ch if ch.isalnum() else "_" for ch in name.lower())
    return "_".join(part for part in keep.split("_") if part)


def _filled_tasks(start: int, end: int) -> Iterator[Task]:
    """Tasks start..end-1 of the backlog, with the noise tasks of other accounts among them."""
    for n in range(start, end):
        yield backlog_task(ACCOUNT, n)
        if n % NOISE_SHARE == 0:
            yield backlog_task(NOISE_ACCOUNTS[n % 3], n)


def _noise(level: int) -> int:
    return len(range(0, level, NOISE_SHARE))


def counter_items(total: Counts, changed_at: str) -> list[dict[str, Any]]:
    """The counter items (A#, G#, S#) holding `total`, as the stream consumer leaves them."""
    items = []
    for key, attributes in sorted(total.items()):
        item: dict[str, Any] = {"counter_key": {"S": key}, REV: {"N": "1"}, CHANGED_AT: {"S": changed_at}}
        item.update({attribute: {"N": str(amount)} for attribute, amount in attributes.items()})
        items.append(item)
    return items


def fill(plain: Any, table: str, counters_table: str, region: str, start: int, end: int, total: Counts) -> int:
    """Tasks start..end-1 (and their noise) into the tasks table by BatchWriteItem; their
    contributions added to `total` and every counter item put again (BatchWriteItem), as the stream
    consumer would have left them once caught up. Answers the task items written."""

    def puts() -> Iterator[dict[str, Any]]:
        for task in _filled_tasks(start, end):
            item = task_to_item(task)
            assert item_size(item) < MAX_ITEM_BYTES  # moto's own check is off in moto_fast_fill
            add_into(total, contributions(item))
            yield {"PutRequest": {"Item": item}}

    with moto_fast_fill(table, region):
        written = write_items(plain, table, puts())
    changed_at = isoformat(datetime.now(UTC))
    write_items(plain, counters_table, ({"PutRequest": {"Item": i}} for i in counter_items(total, changed_at)))
    return written


@pytest.fixture(scope="module")
def backlog() -> Backlog:
    measured = Backlog()
    with moto_transactions_without_table_copies(), mock_aws():
        names = LocalNames()
        session = boto3.Session(region_name=names.region)
        refs = provision(session, names)
        environment = function_environment("ApiFunction", names=names, refs=refs)
        urls = {p.value: environment[f"TASKAPI_QUEUE_URL_{p.value.upper()}"] for p in Priority}
        dead = {p.value: environment[f"TASKAPI_DLQ_URL_{p.value.upper()}"] for p in Priority}
        table, counters_table = refs["TasksTable"], refs["CountersTable"]
        metered = session.client("dynamodb")
        # The fill's client: botocore's parameter validation off (a third of a fill's time on moto).
        plain = session.client("dynamodb", config=Config(parameter_validation=False))
        meter = CapacityMeter(metered, reader=session.client("dynamodb"))
        context = Context(
            repository=DynamoTaskRepository(metered, table),
            counters=DynamoCounterStore(metered, counters_table),
            queue=SqsTaskQueue(session.client("sqs"), urls, dead),
            control=LocalProcessingControl(session.client("ssm"), names.mappings_parameter_prefix, queue_urls=urls),
            plain=plain,
            table=table,
            backlog=0,
        )
        filled = 0
        total: Counts = {}
        for level in levels():
            started = time.perf_counter()
            fill(plain, table, counters_table, names.region, filled, level, total)
            measured.fill_seconds[level] = time.perf_counter() - started
            if os.environ.get("BENCH_TRACE"):
                print(f"[trace] fill {level}: {measured.fill_seconds[level]:.2f} s")
            filled = context.backlog = level
            _check_filled(plain, table, context.counters, level)
            started = time.perf_counter()
            for name, request in REQUESTS.items():
                began = time.perf_counter()
                with meter.measuring() as used:
                    cleanup = request(context)
                if os.environ.get("BENCH_TRACE"):
                    print(f"[trace] {level} {name}: {time.perf_counter() - began:.2f} s")
                measured.readings.setdefault(name, {})[level] = _reading(used)
                if cleanup is not None:
                    cleanup()
            measured.measure_seconds[level] = time.perf_counter() - started
            _check_filled(plain, table, context.counters, level)  # the bulk create's tasks are gone again
        meter.close()
    return measured


def _check_filled(client: Any, table: str, counters: DynamoCounterStore, level: int) -> None:
    """The tasks table holds the level and its noise (moto's live ItemCount), and the account's
    counter counts the level."""
    stored = client.describe_table(TableName=table)["Table"]["ItemCount"]
    assert stored == level + _noise(level)
    (account,) = counters.get([account_key(ACCOUNT)]).values()
    assert account.statuses() == level


def _reading(used: Capacity) -> Reading:
    return Reading(
        items_read=used.items_read(),
        read_units=used.read_units(),
        write_units=used.write_units(),
        breakdown=used.breakdown("items_read"),
    )


def _growth(by_level: dict[int, Reading], smaller: int, larger: int) -> int:
    return by_level[larger].items_read - by_level[smaller].items_read


def test_items_read_per_request_by_backlog(backlog: Backlog, bench: Recorder) -> None:
    shown = levels()
    skipped = [level for level in BACKLOGS if level not in shown]
    width = max(len(name) for name in REQUESTS)
    header = "".join(f"{level:>22,}" for level in shown)
    spans = [(shown[0], shown[-1])] + ([(shown[-2], shown[-1])] if len(shown) > 2 else [])
    header += "".join(f"{f'{a // 1000}k->{b // 1000}k':>11}" for a, b in spans if a != b)
    print()
    print("[bench] items read / DynamoDB read units per request, by the account's backlog (tasks), counts from the")
    print("[bench] counters table; the fill writes the counters directly, where the stream consumer would (caught up)")
    print(f"[bench]   {'request':<{width}}{header}")
    for name, by_level in backlog.readings.items():
        cells = "".join(f"{f'{r.items_read:,} / {r.read_units:g} RU':>22}" for r in (by_level[n] for n in shown))
        cells += "".join(f"{_growth(by_level, a, b):>+11,}" for a, b in spans if a != b)
        print(f"[bench]   {name:<{width}}{cells}")
    for level in shown:
        print(
            f"[bench]   backlog {level:,}: filled in {backlog.fill_seconds[level]:.1f} s (BatchWriteItem on moto, tasks"
            f" and counters), requests measured in {backlog.measure_seconds[level]:.1f} s"
        )
    print(
        f"[bench]   growth: items read at the larger backlog minus at the smaller (issue 15: at most the page itself,"
        f" {PAGE_ITEMS} items, from {shown[0]:,}; none once the pages are full)"
    )
    if skipped:
        print(f"[bench]   not measured ({LIMIT_VARIABLE}={shown[-1]}): " + ", ".join(f"{level:,}" for level in skipped))
    for name, by_level in backlog.readings.items():
        target = LIST_TARGET_READ_UNITS if name.startswith("list first page") else None
        for level in shown:
            reading = by_level[level]
            slug = f"backlog.{_slug(name)}.{level}"
            bench.record(Figure(f"{slug}.items_read", reading.items_read, "items", note=reading.breakdown))
            bench.record(Figure(f"{slug}.read_units", reading.read_units, "RRU", target))
        for (smaller, larger), allowed in zip(spans, (PAGE_ITEMS, 0), strict=False):
            if smaller == larger:
                continue
            bench.record(
                Figure(
                    f"backlog.{_slug(name)}.items_read_growth_{smaller}_to_{larger}",
                    _growth(by_level, smaller, larger),
                    "items",
                    allowed,
                    note=f"items read at {larger:,} tasks minus at {smaller:,}",
                )
            )


def test_costs_do_not_grow_with_the_backlog(backlog: Backlog) -> None:
    """Issue 15: the same items read at the smallest and the largest backlog, give or take the page
    itself; exactly the same between the two largest (every page full at both)."""
    shown = levels()
    if len(shown) < 2:
        pytest.skip("one backlog level measured")
    readings = backlog.readings.items()
    grown = {name: _growth(by_level, shown[0], shown[-1]) for name, by_level in readings}
    assert {name: growth for name, growth in grown.items() if growth > PAGE_ITEMS} == {}
    if len(shown) > 2:
        assert {name: g for name, by_level in readings if (g := _growth(by_level, shown[-2], shown[-1]))} == {}
