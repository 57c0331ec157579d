"""The counters consumer on moto: the tasks table's real stream (moto's dynamodbstreams, read as
Lambda delivers it) applied to the real counters table, idempotent under redelivery, and agreeing
with a recount by query after a burst of work done through the real services."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from taskapi import aws, wiring
from taskapi.counting.apply import DynamoCounterWriter
from taskapi.engines import get_engine
from taskapi.models.domain import TaskStatus
from taskapi.models.requests import BulkRegenerateRequest
from taskapi.queueing.messages import TaskMessage
from taskapi.services.lifecycle import cancel_tasks, regenerate_tasks
from taskapi.services.processing import Processor
from tests import factories
from tests.integration.counting.support import changes, event, markers, recount, stored_counters, stream_records
from tests.integration.processing.support import receive_all
from tests.support.isolation import captured_logs
from tests.unit.processing.support import create, load_function, principal


@pytest.fixture
def counters_table(aws_env) -> str:
    return aws_env["CountersTable"]


@pytest.fixture
def writer(dynamodb, counters_table) -> DynamoCounterWriter:
    return DynamoCounterWriter(dynamodb, counters_table)


@pytest.fixture
def queue(aws_env):
    return wiring.get_queue()


class FailingTransactions:
    """The DynamoDB client, except that the transactions whose number (1-based) is in `fail_on`
    fail as DynamoDB's 500 would."""

    def __init__(self, client: Any, fail_on: set[int]) -> None:
        self._client = client
        self._fail_on = fail_on
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        if self.transactions in self._fail_on:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems")
        return self._client.transact_write_items(**kwargs)


def grouped_quizzes(count: int, prefix: str = "q") -> list[dict[str, Any]]:
    """Quizzes each in a group of its own: every record moves a counter of its own (and A#)."""
    return [factories.quiz(f"{prefix}{n}", task_source_group_id=f"group-{prefix}{n}") for n in range(count)]


# ------------------------------------------------------------------ redelivery
def test_a_replayed_batch_counts_nothing_twice(repo, queue, dynamodb, aws_env, counters_table, writer):
    create(repo, queue, *[factories.quiz(f"q{n}", task_source_id="src-1") for n in range(5)])
    records = stream_records(dynamodb, aws_env["TasksTable"])
    assert [r["eventName"] for r in records][:5] == ["INSERT"] * 5  # (then QUEUED marks, if written apart)

    first = writer.apply(changes(records))
    after_first = stored_counters(dynamodb, counters_table)
    again = writer.apply(changes(records))

    assert after_first == {
        "A#acct_a": {"QUEUED": 5, "QUEUED#normal": 5, "HELD": 5},
        "S#acct_a#src-1": {"QUEUED": 5},
    }
    assert stored_counters(dynamodb, counters_table) == after_first
    assert (first.chunks, first.skipped) == (1, 0)
    assert (again.chunks, again.skipped) == (0, len(records))
    assert markers(dynamodb, counters_table) == {f"M#{records[0]['eventID']}": len(records)}


def test_a_longer_redelivery_from_the_same_record_counts_only_the_new_records(
    repo, queue, dynamodb, aws_env, counters_table, writer
):
    create(repo, queue, *[factories.quiz(f"q{n}") for n in range(3)])
    created = len(stream_records(dynamodb, aws_env["TasksTable"]))
    cancel_tasks(repo, principal(), ["q0"], reason="not needed")
    records = stream_records(dynamodb, aws_env["TasksTable"])
    assert len(records) == created + 1

    writer.apply(changes(records[:created]))  # the first delivery: the creation
    report = writer.apply(changes(records))  # retried with the cancel behind it

    assert report.skipped == created
    assert report.chunks == 1
    assert stored_counters(dynamodb, counters_table) == {
        "A#acct_a": {"QUEUED": 2, "QUEUED#normal": 2, "HELD": 2, "CANCELLED": 1},
    }
    assert stored_counters(dynamodb, counters_table) == recount(repo, dynamodb, aws_env["TasksTable"])


def test_a_crash_between_chunks_then_the_retry_counts_every_record_once(repo, queue, dynamodb, aws_env, counters_table):
    create(repo, queue, *grouped_quizzes(12))
    records = stream_records(dynamodb, aws_env["TasksTable"])
    assert len(records) >= 12  # one write per new task (or two: the insert, then the QUEUED mark)
    failing = FailingTransactions(dynamodb, fail_on={2})
    # Chunks of 5 counters (98 in the function): A#acct_a and 4 groups, so 4 inserts a chunk.
    crashing = DynamoCounterWriter(failing, counters_table, max_keys=5)

    with pytest.raises(ClientError, match="injected"):
        crashing.apply(changes(records))  # the first chunk commits, the second fails: Lambda retries
    partly = stored_counters(dynamodb, counters_table)
    retry = crashing.apply(changes(records))

    first_chunk = 4
    assert sum(partly["A#acct_a"].get(status.value, 0) for status in TaskStatus) == first_chunk
    assert retry.skipped == first_chunk
    assert retry.chunks >= 2
    assert stored_counters(dynamodb, counters_table) == recount(repo, dynamodb, aws_env["TasksTable"])
    assert stored_counters(dynamodb, counters_table)["A#acct_a"] == {"QUEUED": 12, "QUEUED#normal": 12, "HELD": 12}
    # a third delivery (Lambda retrying once more) finds every chunk's marker
    assert crashing.apply(changes(records)).skipped == len(records)
    assert stored_counters(dynamodb, counters_table)["A#acct_a"]["HELD"] == 12


def test_a_chunk_committed_by_another_delivery_meanwhile_is_skipped_not_counted_again(
    repo, queue, dynamodb, aws_env, counters_table, writer
):
    create(repo, queue, *[factories.quiz(f"q{n}") for n in range(3)])
    records = stream_records(dynamodb, aws_env["TasksTable"])
    writer.apply(changes(records))
    counted = stored_counters(dynamodb, counters_table)
    assert counted["A#acct_a"]["HELD"] == 3

    class MarkerReadTooEarly:
        """The marker read answers "none" once, as if it ran just before the other delivery wrote it."""

        def __init__(self, client: Any) -> None:
            self._client, self.missed = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def get_item(self, **kwargs: Any) -> Any:
            if not self.missed:
                self.missed += 1
                return {}
            return self._client.get_item(**kwargs)

    report = DynamoCounterWriter(MarkerReadTooEarly(dynamodb), counters_table).apply(changes(records))

    assert (report.chunks, report.skipped) == (0, len(records))
    assert stored_counters(dynamodb, counters_table) == counted


def test_progress_writes_alone_write_their_chunks_marker_and_no_counter(
    repo, queue, dynamodb, aws_env, counters_table, writer
):
    create(repo, queue, factories.quiz("q0"))
    records = stream_records(dynamodb, aws_env["TasksTable"])
    writer.apply(changes(records))
    task = repo.get("acct_a", "q0")
    assert task is not None
    claimed = repo.save(
        task.moved_to(TaskStatus.PROCESSING, task.updated_at, "Processing"), expected_version=task.version
    )
    for progress in (10.0, 50.0, 90.0):
        repo.record_progress("acct_a", "q0", attempt=1, progress=progress, message="working", now=claimed.updated_at)
    later = stream_records(dynamodb, aws_env["TasksTable"])[len(records) + 1 :]
    assert len(later) == 3

    before = stored_counters(dynamodb, counters_table)
    report = writer.apply(changes(later))

    assert (report.chunks, report.counter_updates) == (1, 0)
    assert markers(dynamodb, counters_table)[f"M#{later[0]['eventID']}"] == 3
    assert stored_counters(dynamodb, counters_table) == before
    assert writer.apply(changes(later)).skipped == 3


def test_a_replay_from_an_earlier_batchs_first_record_across_later_batches_counts_nothing_twice(
    repo, queue, dynamodb, aws_env, counters_table, writer
):
    """Delivered batches: the creation, then progress writes alone (a chunk that moves nothing),
    then the completion. Their markers chain, so a replay of all of it from the first record (an
    earlier batch's first record, run past its end) skips every record."""
    create(repo, queue, factories.quiz("q0"))
    created = stream_records(dynamodb, aws_env["TasksTable"])
    task = repo.get("acct_a", "q0")
    assert task is not None
    claimed = repo.save(
        task.moved_to(TaskStatus.PROCESSING, task.updated_at, "Processing"), expected_version=task.version
    )
    claim = stream_records(dynamodb, aws_env["TasksTable"])[len(created) :]
    for progress in (10.0, 50.0):
        repo.record_progress("acct_a", "q0", attempt=1, progress=progress, message="working", now=claimed.updated_at)
    progressed = repo.get("acct_a", "q0")
    assert progressed is not None
    repo.save(
        progressed.moved_to(TaskStatus.COMPLETED, task.updated_at, "Task completed"),
        expected_version=progressed.version,
    )
    records = stream_records(dynamodb, aws_env["TasksTable"])
    progress_only = records[len(created) + len(claim) : -1]
    assert len(progress_only) == 2
    batches = [created + claim, progress_only, records[-1:]]
    for batch in batches:
        writer.apply(changes(batch))
    counted = stored_counters(dynamodb, counters_table)

    replay = writer.apply(changes(records))

    assert counted == {"A#acct_a": {"COMPLETED": 1}}
    assert (replay.skipped, replay.chunks) == (len(records), 0)
    assert stored_counters(dynamodb, counters_table) == counted


# ------------------------------------------------------------------ the function, after a burst of real work
def deliver_all(sqs, queue_urls: list[str], processor: Processor) -> int:
    handled = 0
    for url in queue_urls:
        for message in receive_all(sqs, url):
            processor.process(TaskMessage.parse(message["Body"]))
            handled += 1
    return handled


def apply_in_batches(function: Any, records: list[dict[str, Any]], size: int) -> None:
    for start in range(0, len(records), size):
        function.handler(event(records[start : start + size]), factories.LambdaContext())


@pytest.fixture
def counters_function(aws_env, monkeypatch) -> Any:
    monkeypatch.setenv("TASKAPI_COUNTERS_TABLE", aws_env["CountersTable"])
    return load_function("counters")


def test_counts_agree_with_a_recount_after_a_burst_of_creates_claims_completions_cancels_and_regenerates(
    repo, queue, dynamodb, aws_env, counters_table, counters_function, capsys, caplog
):
    # Given a burst of work through the real services on moto
    sqs = aws.client("sqs")
    urls = [aws_env[f"Tasks{p}Queue"] for p in ("Urgent", "High", "Normal", "Low")]
    processor = Processor(
        repository=repo, queue=queue, results=wiring.get_results(), engine_for=get_engine, retry_delay_seconds=0
    )
    create(
        repo,
        queue,
        *[factories.quiz(f"q{n}", priority="urgent", task_source_group_id="g1") for n in range(6)],
        *[factories.documentation(f"d{n}", task_source_id=f"src-{n % 2}") for n in range(6)],
        *[{"task_type": "quiz", "task_id": f"stored{n}", "task_source_group_id": "g2"} for n in range(3)],
    )
    create(repo, queue, factories.quiz("q0"), factories.quiz("late", priority="low"))  # q0 exists already
    cancel_tasks(repo, principal(), ["q1", "d1", "stored0"], reason="changed my mind")
    assert deliver_all(sqs, urls, processor) >= 12  # claims and completions (cancelled ones are skipped)
    regenerate_tasks(repo, queue, principal(), BulkRegenerateRequest(task_ids=["q2", "d2", "q1"]))
    cancel_tasks(repo, principal(), ["q2"], reason="again")
    records = stream_records(dynamodb, aws_env["TasksTable"])
    assert {r["eventName"] for r in records} >= {"INSERT", "MODIFY"}

    # When the function gets the stream in batches, the first batch then delivered a second time
    with captured_logs(capsys, caplog) as logs:
        apply_in_batches(counters_function, records, size=7)
        counted = stored_counters(dynamodb, counters_table)
        apply_in_batches(counters_function, records[:7], size=7)
        logged = logs.text()

    # Then the counters are the recount by query, unchanged by the replay
    expected = recount(repo, dynamodb, aws_env["TasksTable"])
    assert counted == expected
    assert stored_counters(dynamodb, counters_table) == expected
    assert expected["A#acct_a"]["COMPLETED"] >= 1
    assert expected["A#acct_a"]["CANCELLED"] >= 1
    # and the function logged counts, never a task's content
    assert "story_prompt" not in logged
    assert "Pythagoras" not in logged
    assert "NewImage" not in logged
    summaries = [
        json.loads(line) for line in logged.splitlines() if line.startswith("{") and "stream batch counted" in line
    ]
    assert sum(s["records"] for s in summaries) == len(records) + 7
    assert summaries[-1]["skipped"] == 7
