"""One task of each type through its whole life on moto, as production runs it, measured once per
test session and shared by test_task_cost and test_cost_model:

  create    services.tasks.create_tasks with the plan's ceiling (as POST /api/tasks does): insert,
            send to its priority queue, mark QUEUED
  process   the message received from that queue, given to the Processor until COMPLETED
            (claim, progress reports, the result files to S3, completion)
  read      services.tasks.get_task of it, and services.tasks.list_tasks of a page of 50 (the
            account then holds 60 completed tasks of the four types, copied from these; `total`
            from the counters, caught up with the stream first)
  counters  what the stream consumer (functions/counters) writes for a task: a bulk of 100 tasks
            of one group and source (25 of each type, one priority) created with the ceiling and
            processed until COMPLETED, the tasks table's stream records of their lives (moto's
            DynamoDB Streams, read in-process) applied by DynamoCounterWriter in batches of up to
            STREAM_BATCH records as the event source mapping delivers them, metered; per task,
            amortized over the 100

The services get the counters table wherever they take one (the ceiling, list_tasks' total).

The DynamoDB units come from tests.support.capacity (moto meters nothing); SQS and S3 calls are
counted through botocore. Handler times are the wall time of the service call in this process on
moto, the median of three unmetered runs (the meter's own reads stay out of the time).
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from moto import mock_aws
from pydantic import TypeAdapter

from infra.provision import provision
from infra.template import LocalNames, function_environment
from taskapi.auth.principal import Principal
from taskapi.counting.apply import ApplyReport, Change, DynamoCounterWriter
from taskapi.counting.contributions import account_key, group_key, source_key
from taskapi.counting.store import DynamoCounterStore
from taskapi.engines.registry import EngineRegistry
from taskapi.engines.video import VideoEngine
from taskapi.models.domain import Priority, TaskStatus, TaskType, isoformat
from taskapi.models.requests import BulkCreateRequest, TaskCreate
from taskapi.queueing.messages import TaskMessage
from taskapi.queueing.queues import SqsTaskQueue
from taskapi.results import S3ResultStore
from taskapi.services import tasks as task_service
from taskapi.services.processing import Outcome, Processor
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository, item_to_task, task_to_item
from tests import factories
from tests.perf.support import (
    AwsCalls,
    Measurement,
    moto_transactions_without_table_copies,
    stream_batches,
    stream_records,
)
from tests.support.capacity import TABLE, Capacity, CapacityMeter, item_size
from tests.unit.engines.doubles import ToneNarrator
from tests.unit.processing.support import animated_lesson

ACCOUNT = "acct_cost"
PRINCIPAL = Principal(account_id=ACCOUNT, user_id=f"api_key_user_{ACCOUNT}", auth_method="api_key")
TIMED_RUNS = 3
"""Handler times are the median of this many unmetered runs (the machine may be busy)."""


def _principal(account: str) -> Principal:
    return Principal(account_id=account, user_id=f"api_key_user_{account}", auth_method="api_key")


BULK_PRINCIPAL = _principal("acct_bulk")
"""The bulk creates run on accounts of their own, each empty (the ceiling check reads nothing)."""
TYPES = (TaskType.QUIZ, TaskType.VIDEO, TaskType.DOCUMENTATION, TaskType.ANIMATED_LESSON)
MAX_UNFINISHED = 1_000
"""The free plan's ceiling (settings.max_unfinished_free): the HTTP path checks it on every create,
from the account's counter."""
VIDEO_DATA = {"resolution": "320*180", "segments": 3}
"""A small video: 3 segments at 320*180, narrated by the tone double (eSpeak is not needed)."""
LIST_LIMIT = 50
LISTED_TASKS = 60
BULK = 100
STREAM_BATCH = 500
"""Records per invocation of the stream consumer at most (its event source mapping's BatchSize)."""
SOURCE, GROUP = "src_cost", "grp_cost"

WRITE_KINDS = ("insert", "queued mark", "claim", "progress", "complete")


def body_of(task_type: TaskType, task_id: str) -> dict[str, Any]:
    """Typical request bodies (tests/factories.py), with a source and a group as clients send them."""
    source = {"task_source_name": "bench", "task_source_id": SOURCE, "task_source_group_id": GROUP}
    if task_type is TaskType.QUIZ:
        return factories.quiz(task_id, **source)
    if task_type is TaskType.DOCUMENTATION:
        return factories.documentation(task_id, **source)
    if task_type is TaskType.ANIMATED_LESSON:
        return animated_lesson(task_id, **source)
    body = factories.video(task_id, **source)
    body["request_data"] = {**body["request_data"], **VIDEO_DATA}
    return body


def spec_of(task_type: TaskType, task_id: str) -> TaskCreate:
    return TypeAdapter(TaskCreate).validate_python(body_of(task_type, task_id))


class Phase:
    """Labels each metered DynamoDB call: a write by what it does in the task's life (from the
    status it writes, whatever the shape of the call), a read by the phase the test is in."""

    def __init__(self) -> None:
        self.name = "create"

    def __call__(self, operation: str, params: Mapping[str, Any]) -> str:
        if operation == "TransactWriteItems":
            kinds = [
                _write_kind(kind, request) for element in params["TransactItems"] for kind, request in element.items()
            ]
            return kinds[0] if len(set(kinds)) == 1 else " + ".join(dict.fromkeys(kinds))
        if operation == "PutItem":
            return _write_kind("Put", params)
        if operation == "UpdateItem":
            return _write_kind("Update", params)
        if operation in ("DeleteItem", "BatchWriteItem"):
            return operation
        return f"{operation} ({self.name})"


_STATUS_KINDS = {
    TaskStatus.QUEUED.value: "queued mark",
    TaskStatus.PROCESSING.value: "claim",
    TaskStatus.COMPLETED.value: "complete",
}


def _write_kind(kind: str, request: Mapping[str, Any]) -> str:
    """insert: a Put conditioned on the item being new; otherwise by the status written (a write
    that sets no status is a progress report)."""
    if kind == "Put" and "attribute_not_exists" in request.get("ConditionExpression", ""):
        return "insert"
    if kind == "Put":
        status = request["Item"].get("status", {}).get("S")
    elif kind == "Update":
        status = _status_set_by(request)
    else:
        return kind
    if status is None:
        return "progress"
    return _STATUS_KINDS.get(status, f"save {status}")


def _status_set_by(request: Mapping[str, Any]) -> str | None:
    """The status an UpdateExpression sets ("SET #status = :s, ..."), if it sets one."""
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    expression = request.get("UpdateExpression", "")
    for name, value in re.findall(r"([#\w]+)\s*=\s*(:\w+)", expression):
        if names.get(name, name) == "status" and value in values:
            return str(values[value].get("S"))
    return None


@dataclass(frozen=True)
class Lifecycle:
    """One task's life, measured."""

    task_type: TaskType
    life: Capacity
    """Every DynamoDB charge from the create request to COMPLETED."""
    create: Capacity
    """The create request's charges (its reads are the ceiling check)."""
    get: Capacity
    sqs: Counter[str]
    """SQS calls the code made (operation -> calls), create and processing."""
    s3: Counter[str]
    item_bytes: int
    """The stored item's size once COMPLETED."""
    result_bytes: int
    result_files: int
    process_seconds: float
    """Wall time of Processor.process (unmetered, the median of TIMED_RUNS)."""
    progress_reports: int


@dataclass(frozen=True)
class CounterCost:
    """The stream consumer's work for the lives of BULK tasks."""

    capacity: Capacity
    """Every DynamoDB charge of the counters' updates (marker reads, transactions, marker puts)."""
    report: ApplyReport
    batches: int
    seconds: float
    """Wall time of the writer's apply over every batch (unmetered, the median of TIMED_RUNS, each
    on a fresh counters table)."""
    tasks: int = BULK

    def write_units_per_task(self) -> float:
        return self.capacity.write_units() / self.tasks

    def read_units_per_task(self) -> float:
        return self.capacity.read_units() / self.tasks


@dataclass(frozen=True)
class Measured:
    lifecycles: dict[TaskType, Lifecycle]
    list_page: Capacity
    """list_tasks of the first page of 50 (no filter) over LISTED_TASKS completed tasks."""
    list_total: int
    bulk: Capacity
    """A bulk create of 100 (25 of each type, one priority) with the ceiling, metered."""
    bulk_sqs: Counter[str]
    bulk_seconds: float
    """Wall time of services.tasks.create_bulk of 100 (unmetered, the median of TIMED_RUNS)."""
    counters: CounterCost
    """The counters' updates for the lives of the bulk's 100 tasks."""
    bulk_records: list[dict[str, Any]]
    """The tasks table's stream records of those lives (GetRecords' shape), for the event cost."""


@dataclass
class _Stack:
    repository: DynamoTaskRepository
    queue: SqsTaskQueue
    processor: Processor
    sqs: Any
    s3: Any
    bucket: str
    table: str
    queue_urls: dict[str, str]
    calls: AwsCalls


def _stack(session: Any, refs: Mapping[str, str], dynamodb: Any, engine_for: Callable[..., Any]) -> _Stack:
    environment = function_environment("ProcessorFunction", refs=refs)
    queue_urls = {p.value: environment[f"TASKAPI_QUEUE_URL_{p.value.upper()}"] for p in Priority}
    dead_letter_urls = {p.value: environment[f"TASKAPI_DLQ_URL_{p.value.upper()}"] for p in Priority}
    sqs, s3 = session.client("sqs"), session.client("s3")
    repository = DynamoTaskRepository(dynamodb, refs["TasksTable"])
    queue = SqsTaskQueue(sqs, queue_urls, dead_letter_urls)
    results = S3ResultStore(s3, refs["ResultsBucket"], 900)
    processor = Processor(repository, queue, results, engine_for, retry_delay_seconds=0)
    calls = AwsCalls(sqs, s3)
    return _Stack(repository, queue, processor, sqs, s3, refs["ResultsBucket"], refs["TasksTable"], queue_urls, calls)


def _take_messages(stack: _Stack, priority: str, count: int) -> list[TaskMessage]:
    """`count` messages taken off the priority's queue, as the event source mapping would."""
    url = stack.queue_urls[priority]
    taken: list[TaskMessage] = []
    for _ in range(10 * count):
        answer = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        for message in answer.get("Messages", []):
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            taken.append(TaskMessage.parse(message["Body"]))
        if len(taken) >= count:
            return taken
    raise AssertionError(f"{len(taken)} of {count} messages on the {priority} queue")


def _take_message(stack: _Stack, priority: str) -> TaskMessage:
    """The one message on the priority's queue, taken off it as the event source mapping would."""
    url = stack.queue_urls[priority]
    answer = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    (message,) = answer["Messages"]
    stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return TaskMessage.parse(message["Body"])


def _process(stack: _Stack, message: TaskMessage) -> float:
    """Process until COMPLETED; answers the wall time of the Processor.process calls."""
    seconds = 0.0
    for _ in range(3):
        started = time.perf_counter()
        outcome = stack.processor.process(message)
        seconds += time.perf_counter() - started
        if outcome is Outcome.COMPLETED:
            return seconds
        if outcome is not Outcome.RETRY_SCHEDULED:
            break
    raise AssertionError(f"task {message.task_id} ended {outcome}")


def _code_calls(measured: Measurement, service: str) -> Counter[str]:
    """The calls the code made to one service; the receive and delete of the message, done here as
    the event source mapping does them, are left out (the cost model adds the mapping's own)."""
    mapping = {"ReceiveMessage", "DeleteMessage"}
    return Counter({op: n for (s, op), n in measured.calls.items() if s == service and op not in mapping})


def _engine_for() -> Callable[..., Any]:
    registry = EngineRegistry()
    registry.register(VideoEngine(voice=ToneNarrator(seconds_per_word=0.05)))
    return registry.get


def _copy_completed(client: Any, table: str, completed: list[dict[str, Any]], count: int) -> None:
    """`count` completed tasks in the account, copies of `completed` in turn under new ids, newer."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    requests = []
    for n in range(count):
        task = item_to_task(completed[n % len(completed)])
        created = isoformat(start + timedelta(seconds=n))
        copy = task.model_copy(update={"task_id": f"copy-{n:03d}", "created_at": created})
        requests.append({"PutRequest": {"Item": task_to_item(copy)}})
    for first in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[first : first + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _counters_table(client: Any, name: str) -> str:
    """A scratch counters table of the CountersTable's shape (for timing the writer apart)."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "counter_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "counter_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _records_of(records: list[dict[str, Any]], account_id: str) -> list[dict[str, Any]]:
    return [r for r in records if r["dynamodb"]["Keys"]["account_id"]["S"] == account_id]


def _apply(writer: DynamoCounterWriter, batches: list[list[dict[str, Any]]]) -> ApplyReport:
    """Every batch through the writer, as functions/counters applies one event; the reports summed."""
    total = ApplyReport()
    for batch in batches:
        report = writer.apply([Change.from_record(record) for record in batch])
        for name, value in report.as_dict().items():
            setattr(total, name, getattr(total, name) + value)
    return total


def _bulk_request(prefix: str) -> BulkCreateRequest:
    bodies = [body_of(TYPES[n % len(TYPES)], f"{prefix}-{n:03d}") for n in range(BULK)]
    for body in bodies:
        body["priority"] = Priority.NORMAL.value
    return BulkCreateRequest.model_validate({"tasks": bodies})


@cache
def measure() -> Measured:
    """Everything, once per session (some seconds; the videos render)."""
    with moto_transactions_without_table_copies(), mock_aws():
        session = boto3.Session(region_name=LocalNames().region)
        refs = provision(session, LocalNames())
        engine_for = _engine_for()
        metered_client, plain_client = session.client("dynamodb"), session.client("dynamodb")
        phase = Phase()
        meter = CapacityMeter(metered_client, reader=session.client("dynamodb"), classify=phase)
        metered = _stack(session, refs, metered_client, engine_for)
        plain = _stack(session, refs, plain_client, engine_for)
        counters_table = refs["CountersTable"]
        counters = DynamoCounterStore(metered_client, counters_table)
        ceiling = task_service.Ceiling(max_unfinished=MAX_UNFINISHED, retry_after_seconds=60, counters=counters)
        plain_ceiling = task_service.Ceiling(
            max_unfinished=MAX_UNFINISHED,
            retry_after_seconds=60,
            counters=DynamoCounterStore(plain_client, counters_table),
        )

        lifecycles: dict[TaskType, Lifecycle] = {}
        completed_items: list[dict[str, Any]] = []
        for task_type in TYPES:
            task_id = f"cost-{task_type.value}"
            with meter.measuring() as life, metered.calls.measuring() as aws:
                phase.name = "create"
                with meter.measuring() as create:
                    (task,) = task_service.create_tasks(
                        metered.repository, metered.queue, PRINCIPAL, [spec_of(task_type, task_id)], ceiling=ceiling
                    ).tasks
                assert task.status is TaskStatus.QUEUED
                phase.name = "process"
                message = _take_message(metered, task.priority.value)
                _process(metered, message)
            phase.name = "read"
            with meter.measuring() as get:
                done = task_service.get_task(metered.repository, PRINCIPAL, task_id)
            assert done.status is TaskStatus.COMPLETED
            item = metered_client.get_item(
                TableName=metered.table,
                Key={"account_id": {"S": ACCOUNT}, "task_id": {"S": task_id}},
                ConsistentRead=True,
            )["Item"]
            completed_items.append(item)
            result = metered.s3.list_objects_v2(Bucket=metered.bucket, Prefix=f"results/{ACCOUNT}/{task_id}/")
            objects = result.get("Contents", [])

            # The same life again, unmetered, for the handler time: the median of TIMED_RUNS.
            runs = []
            for run in range(TIMED_RUNS):
                (timed,) = task_service.create_tasks(
                    plain.repository,
                    plain.queue,
                    PRINCIPAL,
                    [spec_of(task_type, f"timed-{task_type.value}-{run}")],
                    ceiling=plain_ceiling,
                ).tasks
                runs.append(_process(plain, _take_message(plain, timed.priority.value)))
            seconds = statistics.median(runs)

            lifecycles[task_type] = Lifecycle(
                task_type=task_type,
                life=life,
                create=create,
                get=get,
                sqs=_code_calls(aws, "sqs"),
                s3=_code_calls(aws, "s3"),
                item_bytes=item_size(item),
                result_bytes=sum(o["Size"] for o in objects),
                result_files=len(objects),
                process_seconds=seconds,
                progress_reports=sum(1 for c in life.charges if c.label == "progress" and c.target == TABLE),
            )

        # A page of 50 over 60 completed tasks of the four types (the ones above, and copies), its
        # total from the counters: the stream so far applied first (unmetered), as the consumer would.
        _copy_completed(plain_client, metered.table, completed_items, LISTED_TASKS - len(TYPES) * (1 + TIMED_RUNS))
        catch_up = DynamoCounterWriter(plain_client, counters_table)
        _apply(catch_up, stream_batches(stream_records(session, metered.table), STREAM_BATCH))
        with meter.measuring() as page_capacity:
            page = task_service.list_tasks(
                metered.repository,
                PRINCIPAL,
                TaskFilters(),
                limit=LIST_LIMIT,
                skip=0,
                next_token=None,
                counters=counters,
            )
        assert len(page.tasks) == LIST_LIMIT

        # A bulk create of 100 with the ceiling: metered, then unmetered for its time.
        phase.name = "create"
        with meter.measuring() as bulk, metered.calls.measuring() as bulk_aws:
            created = task_service.create_bulk(
                metered.repository, metered.queue, BULK_PRINCIPAL, _bulk_request("bulk"), ceiling
            )
        assert len(created) == BULK
        # Its 100 tasks through their lives (unmetered: their own units are the lifecycles' above) ...
        for message in _take_messages(plain, Priority.NORMAL.value, BULK):
            _process(plain, message)
        meter.close()
        # ... and the counters' updates for those lives, from the stream, metered.
        lives = _records_of(stream_records(session, metered.table), BULK_PRINCIPAL.account_id)
        batches = stream_batches(lives, STREAM_BATCH)
        counters_client = session.client("dynamodb")
        counters_meter = CapacityMeter(counters_client, reader=session.client("dynamodb"))
        with counters_meter.measuring() as counter_capacity:
            report = _apply(DynamoCounterWriter(counters_client, counters_table), batches)
        counters_meter.close()
        _check_bulk_counters(DynamoCounterStore(plain_client, counters_table))
        counter_runs = []
        for run in range(TIMED_RUNS):
            writer = DynamoCounterWriter(plain_client, _counters_table(plain_client, f"bench-counters-timing-{run}"))
            started = time.perf_counter()
            _apply(writer, batches)
            counter_runs.append(time.perf_counter() - started)

        bulk_runs = []
        for run in range(TIMED_RUNS):
            request, principal = _bulk_request(f"timed-bulk-{run}"), _principal(f"acct_bulk_t{run}")
            started = time.perf_counter()
            task_service.create_bulk(plain.repository, plain.queue, principal, request, plain_ceiling)
            bulk_runs.append(time.perf_counter() - started)
        bulk_seconds = statistics.median(bulk_runs)
        return Measured(
            lifecycles=lifecycles,
            list_page=page_capacity,
            list_total=page.total,
            bulk=bulk,
            bulk_sqs=_code_calls(bulk_aws, "sqs"),
            bulk_seconds=bulk_seconds,
            counters=CounterCost(
                capacity=counter_capacity,
                report=report,
                batches=len(batches),
                seconds=statistics.median(counter_runs),
            ),
            bulk_records=lives,
        )


def _check_bulk_counters(store: DynamoCounterStore) -> None:
    """Once applied, the counters of the bulk's account, group and source hold its 100 COMPLETED
    tasks and nothing else."""
    account = BULK_PRINCIPAL.account_id
    keys = [account_key(account), group_key(account, GROUP), source_key(account, SOURCE)]
    for key, counts in store.get(keys).items():
        assert {name: n for name, n in counts.items() if n} == {TaskStatus.COMPLETED.value: BULK}, key


def kinds(capacity: Capacity) -> Iterator[tuple[str, Capacity]]:
    """The write kinds of a task's life, in order (WRITE_KINDS, then any other label that wrote),
    each with its charges."""
    others = [c.label for c in capacity.charges if c.write_units and c.label not in WRITE_KINDS]
    for kind in (*WRITE_KINDS, *dict.fromkeys(others)):
        yield kind, Capacity([c for c in capacity.charges if c.label == kind and c.write_units])
