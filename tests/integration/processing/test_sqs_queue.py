"""SqsTaskQueue on moto's SQS, with the queues of template.yaml: batching by ten to the right
priority queue, entries and whole batches SQS refuses (the tasks stay PENDING, not lost), depths."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from taskapi.models.domain import Priority, TaskStatus, TaskType
from taskapi.queueing.messages import TaskMessage
from taskapi.services.reconcile import reconcile
from tests.integration.processing.support import AwsCalls, receive_all
from tests.unit.processing.support import ACCOUNT, BODY_OF, create, event_messages


def bodies_on(sqs, url: str) -> list[dict]:
    return [json.loads(m["Body"]) for m in receive_all(sqs, url)]


@pytest.mark.parametrize(
    "per_priority",
    [
        {Priority.NORMAL: 100},
        {Priority.URGENT: 40, Priority.HIGH: 30, Priority.NORMAL: 20, Priority.LOW: 10},
    ],
    ids=["one priority", "four priorities"],
)
def test_100_messages_go_in_at_most_10_batches_each_to_its_priority_queue(sqs, queue, queue_urls, per_priority):
    calls = AwsCalls(sqs)
    batch = [
        (priority, TaskMessage(ACCOUNT, f"{priority.value}-{n}", 1))
        for priority, count in per_priority.items()
        for n in range(count)
    ]

    refused = queue.send(batch)

    assert refused == {}
    assert calls.calls == Counter({"sqs.SendMessageBatch": 10})
    assert all(size <= 10 for size in calls.batch_sizes)
    assert Counter(calls.queue_urls) == Counter(
        {queue_urls[priority]: count // 10 for priority, count in per_priority.items()}
    )
    for priority in Priority:
        expected = sorted(m.task_id for p, m in batch if p is priority)
        assert sorted(b["task_id"] for b in bodies_on(sqs, queue_urls[priority])) == expected


def test_a_delay_is_passed_to_every_entry(sqs, queue, queue_urls):
    assert queue.send([(Priority.HIGH, TaskMessage(ACCOUNT, "t1", 1))], delay_seconds=30) == {}

    depth = queue.depths()[Priority.HIGH]
    assert (depth.visible, depth.delayed) == (0, 1)


# ------------------------------------------------------------------ SQS refusing
class RefuseEntries:
    """SQS refusing single entries of a batch: the chosen entries are taken out of the request
    (nothing of them reaches the queue) and answered under Failed, as SQS answers them."""

    def __init__(self, sqs, entry_ids: set[str]) -> None:
        self.entry_ids = entry_ids
        self._taken = threading.local()
        sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", self._take_out)
        sqs.meta.events.register("after-call.sqs.SendMessageBatch", self._answer_failed)

    def _take_out(self, params, **_):
        self._taken.ids = [e["Id"] for e in params["Entries"] if e["Id"] in self.entry_ids]
        params["Entries"] = [e for e in params["Entries"] if e["Id"] not in self.entry_ids]
        assert params["Entries"], "refuse some entries of a batch, not all (that is a refused batch)"

    def _answer_failed(self, parsed, **_):
        parsed.setdefault("Failed", []).extend(
            {"Id": entry_id, "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            for entry_id in self._taken.ids
        )


def test_entries_sqs_refuses_leave_exactly_those_tasks_pending_and_the_reconciler_queues_them(
    sqs, repo, queue, queue_urls, processor, clock
):
    # The queue's entry ids are the indexes of the sent batch: refuse the 3rd, 12th and 40th task.
    refusing = RefuseEntries(sqs, {"2", "11", "39"})
    bodies = [BODY_OF[TaskType.QUIZ](f"q{n:02d}") for n in range(40)]

    created = create(repo, queue, *bodies)

    pending = {t.task_id for t in created if t.status is TaskStatus.PENDING}
    assert pending == {"q02", "q11", "q39"}
    assert all(t.status is TaskStatus.QUEUED for t in created if t.task_id not in pending)
    for task_id in pending:
        task = repo.get(ACCOUNT, task_id)
        assert task.status is TaskStatus.PENDING
        assert event_messages(task)[-1] == (
            "Not queued yet (SQS refused the message: InternalError try again); it will be retried"
        )
    on_queue = [b["task_id"] for b in bodies_on(sqs, queue_urls[Priority.NORMAL])]
    assert sorted(on_queue) == sorted(t.task_id for t in created if t.task_id not in pending)

    refusing.entry_ids = set()
    clock.advance(minutes=5)
    report = reconcile(processor, pending_after_seconds=120, limit=100, clock=clock)

    assert (report.pending_found, report.enqueued, report.enqueue_refused) == (3, 3, 0)
    assert sorted(b["task_id"] for b in bodies_on(sqs, queue_urls[Priority.NORMAL])) == sorted(pending)
    assert {repo.get(ACCOUNT, task_id).status for task_id in pending} == {TaskStatus.QUEUED}


def test_a_throttled_batch_leaves_its_tasks_pending_and_the_other_batches_queued(sqs, repo, queue, queue_urls):
    throttled = queue_urls[Priority.HIGH]

    def throttle(params, **_):
        if params["QueueUrl"] == throttled:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendMessageBatch"
            )

    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", throttle)
    bodies = [BODY_OF[TaskType.QUIZ](f"n{n}") for n in range(15)] + [BODY_OF[TaskType.VIDEO](f"h{n}") for n in range(5)]

    created = create(repo, queue, *bodies)

    statuses = {t.task_id: t.status for t in created}
    assert {s for task_id, s in statuses.items() if task_id.startswith("h")} == {TaskStatus.PENDING}
    assert {s for task_id, s in statuses.items() if task_id.startswith("n")} == {TaskStatus.QUEUED}
    last_event = event_messages(repo.get(ACCOUNT, "h0"))[-1]
    assert last_event.startswith("Not queued yet (SQS refused the batch:")
    assert "ThrottlingException" in last_event
    assert bodies_on(sqs, throttled) == []
    assert len(bodies_on(sqs, queue_urls[Priority.NORMAL])) == 15


# ------------------------------------------------------------------ depths
def test_depths_answer_each_prioritys_visible_in_flight_delayed_and_dead_letter_counts(
    sqs, queue, queue_urls, dead_letter_urls
):
    queue.send([(Priority.URGENT, TaskMessage(ACCOUNT, f"u{n}", 1)) for n in range(3)])
    queue.send([(Priority.LOW, TaskMessage(ACCOUNT, f"l{n}", 1)) for n in range(2)])
    queue.send([(Priority.NORMAL, TaskMessage(ACCOUNT, "later", 1))], delay_seconds=60)
    sqs.receive_message(QueueUrl=queue_urls[Priority.URGENT], MaxNumberOfMessages=1)
    for n in range(2):
        sqs.send_message(QueueUrl=dead_letter_urls[Priority.HIGH], MessageBody=f"dead {n}")

    depths = queue.depths()

    assert set(depths) == set(Priority)
    assert (depths[Priority.URGENT].visible, depths[Priority.URGENT].in_flight) == (2, 1)
    assert depths[Priority.LOW].visible == 2
    assert (depths[Priority.NORMAL].visible, depths[Priority.NORMAL].delayed) == (0, 1)
    assert depths[Priority.HIGH].dead_letter == 2
    assert sum(d.dead_letter for d in depths.values()) == 2
