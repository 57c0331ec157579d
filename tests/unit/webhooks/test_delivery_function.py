"""functions/webhook_delivery: a batch's endpoints are served at once (a slow receiver does not
hold the others back), each endpoint's records one at a time, each record's failure is its own, and
a crash fails the whole batch."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from taskapi.webhooks.delivery import Deliverer, schedule_deliveries
from taskapi.webhooks.models import Endpoint, Secret, StoredEvent, event_id_for
from taskapi.webhooks.queue import MemoryDeliveryQueue
from taskapi.webhooks.signing import new_secret
from taskapi.webhooks.store import MemoryWebhookStore
from taskapi.webhooks.transport import PostResult
from tests.unit.processing.support import load_function

ACCOUNT = "acct-1"
STAMP = "2026-12-07T10:00:00.000000Z"
RECORDS = 5


class AllAtOnce:
    """A receiver that answers nobody until RECORDS POSTs are waiting together: a handler that
    attempted its records one after the other would never get past the first."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(RECORDS, timeout=10)
        self.posts: list[str] = []
        self.lock = threading.Lock()

    def post(
        self, url: str, body: bytes, headers: Any, *, timeout_seconds: float, allow_loopback_http: bool
    ) -> PostResult:
        with self.lock:
            self.posts.append(headers["webhook-id"])
        self.barrier.wait()
        return PostResult(200)


def batch(transport: Any, endpoints: int = RECORDS) -> tuple[list[dict[str, Any]], Deliverer, MemoryWebhookStore]:
    """RECORDS deliveries spread over `endpoints` endpoints, as SQS records."""
    store, queue, kept = MemoryWebhookStore(), MemoryDeliveryQueue(), {}
    records = []
    for n in range(RECORDS):
        endpoint = store.get_endpoint(ACCOUNT, f"we_{n % endpoints:024d}") or store.create_endpoint(
            Endpoint(
                endpoint_id=f"we_{n % endpoints:024d}",
                account_id=ACCOUNT,
                url=f"https://hooks{n % endpoints}.example.com/",
                secrets=[Secret(secret=new_secret())],
                created_at=STAMP,
                updated_at=STAMP,
            ),
            limit=10,
        )
        event_id = event_id_for(ACCOUNT, f"t{n}", 1, "task.completed", STAMP)
        event = StoredEvent(account_id=ACCOUNT, event_id=event_id, type="task.completed", created_at=STAMP, body="{}")
        kept[(ACCOUNT, event_id)] = event
        assert schedule_deliveries(store, queue, endpoint, [event], now=STAMP) == {}
    for n, (message, _) in enumerate(queue.drain()):
        records.append({"messageId": f"m{n}", "body": message.to_json()})

    class Events:
        def get(self, account_id: str, event_id: str) -> StoredEvent | None:
            return kept.get((account_id, event_id))

    return records, Deliverer(store, Events(), queue, transport), store


def test_a_batchs_endpoints_are_served_at_once():
    function = load_function("webhook_delivery")
    receiver = AllAtOnce()
    records, deliverer, store = batch(receiver)

    answer = function.deliver_batch(records, deliverer)

    assert answer == {"batchItemFailures": []}
    assert len(receiver.posts) == RECORDS
    assert {d.status for d in store.deliveries.values()} == {"succeeded"}


def test_one_endpoints_records_are_attempted_one_at_a_time():
    function = load_function("webhook_delivery")

    class OneAtATime:
        def __init__(self) -> None:
            self.busy = threading.Lock()
            self.overlaps = 0
            self.posts = 0

        def post(self, *args: Any, **kwargs: Any) -> PostResult:
            if not self.busy.acquire(blocking=False):
                self.overlaps += 1
                return PostResult(200)
            try:
                self.posts += 1
                threading.Event().wait(0.02)  # long enough for a parallel attempt to show
                return PostResult(200)
            finally:
                self.busy.release()

    receiver = OneAtATime()
    records, deliverer, store = batch(receiver, endpoints=1)

    assert function.deliver_batch(records, deliverer) == {"batchItemFailures": []}
    assert (receiver.posts, receiver.overlaps) == (RECORDS, 0)  # none came back busy, none overlapped
    assert {d.status for d in store.deliveries.values()} == {"succeeded"}


def test_a_poison_record_fails_alone():
    function = load_function("webhook_delivery")

    class Accepting:
        def post(self, *args: Any, **kwargs: Any) -> PostResult:
            return PostResult(200)

    records, deliverer, store = batch(Accepting())
    answer = function.deliver_batch([*records, {"messageId": "poison", "body": json.dumps({"nope": 1})}], deliverer)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert {d.status for d in store.deliveries.values()} == {"succeeded"}


def test_a_crash_fails_the_whole_batch():
    function = load_function("webhook_delivery")

    class Dying(BaseException):
        pass

    class Crashing:
        def post(self, *args: Any, **kwargs: Any) -> PostResult:
            raise Dying

    records, deliverer, _ = batch(Crashing())
    with pytest.raises(Dying):
        function.deliver_batch(records, deliverer)
