"""Webhook deliveries against a real receiver on 127.0.0.1, through the real transport: what a
receiver sees (POSTs, their webhook-id and signatures) and what the account sees (the delivery's
status, the endpoint disabled with a reason). Stores and the queue are the in-memory fakes; the
clock is injected, so a 10-hour retry takes no time.

Sockets: tests/unit blocks them; this module allows loopback only, so a delivery that connected
to 10.0.0.1 or 169.254.169.254 fails loudly here instead of reaching out."""

from __future__ import annotations

import email.utils
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pytest_socket import enable_socket, socket_allow_hosts
from standardwebhooks.webhooks import Webhook

from taskapi.errors import Retryable
from taskapi.models.domain import isoformat
from taskapi.webhooks.delivery import RETRY_DELAYS, Deliverer, Outcome, schedule_deliveries
from taskapi.webhooks.models import DeliveryMessage, Endpoint, Secret, StoredEvent, event_id_for, new_endpoint_id
from taskapi.webhooks.queue import MemoryDeliveryQueue
from taskapi.webhooks.signing import new_secret
from taskapi.webhooks.store import MemoryWebhookStore
from taskapi.webhooks.transport import HttpTransport
from tests.support.isolation import captured_logs
from tests.support.resolver import FakeResolver

ACCOUNT = "acct-1"
START = datetime.now(UTC).replace(microsecond=0)
"""The clock starts at the real time: the reference library checks a webhook's timestamp against it."""


def signed_with(secret: str, request: Received) -> bool:
    """Whether one of the request's signatures is the reference library's for its id, timestamp
    and body (a later attempt's timestamp is in the injected clock's future, which the library's
    own verify would refuse as such)."""
    stamp = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], stamp, request.body.decode())
    return expected in request.headers["webhook-signature"].split(" ")


# ------------------------------------------------------------------ the receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def log_message(self, *_: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        server = self.server
        with server.lock:
            server.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
            status, headers = server.script.pop(0) if server.script else (200, {})
        server.release.wait(5)  # set unless a test holds requests open
        with server.lock:
            server.in_flight -= 1
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        """The answers to give, in order (status, headers); 200 once it is empty."""
        self.release = threading.Event()
        self.release.set()
        self.in_flight = self.most_in_flight = 0
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server_address[1]}{path}"

    def answer(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        self.script.extend(a if isinstance(a, tuple) else (a, {}) for a in answers)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (the timeout test) is not an error here


@pytest.fixture(autouse=True)
def _loopback_only() -> None:
    """Sockets again (tests/unit disables them), but connections to loopback only; pytest-socket
    lifts the restriction after the test."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1", "::1"])


@pytest.fixture
def receiver(_loopback_only: None) -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.release.set()
    running.shutdown()
    running.server_close()


# ------------------------------------------------------------------ the world around a deliverer


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Events:
    kept: dict[tuple[str, str], StoredEvent] = field(default_factory=dict)

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        return self.kept.get((account_id, event_id))


RESOLVER = FakeResolver(
    {"hooks.test": ["127.0.0.1"], "internal.example": ["10.0.0.1"], "metadata.example": ["169.254.169.254"]}
)


class World:
    def __init__(self, url: str, *, allow_loopback_http: bool = True, timeout_seconds: float = 2.0) -> None:
        self.clock = Clock()
        self.store = MemoryWebhookStore()
        self.events = Events()
        self.queue = MemoryDeliveryQueue()
        self.secret = new_secret()
        self.deliverer = Deliverer(
            self.store,
            self.events,
            self.queue,
            HttpTransport(resolver=RESOLVER),
            self.clock,
            allow_loopback_http,
            timeout_seconds=timeout_seconds,
            jitter=lambda seconds: seconds,
        )
        stamp = isoformat(START)
        self.endpoint = self.store.create_endpoint(
            Endpoint(
                endpoint_id=new_endpoint_id(),
                account_id=ACCOUNT,
                url=url,
                secrets=[Secret(secret=self.secret)],
                created_at=stamp,
                updated_at=stamp,
            ),
            limit=10,
        )

    def event(self, task_id: str = "t1", sequence: int = 1) -> StoredEvent:
        created = isoformat(self.clock())
        event_id = event_id_for(ACCOUNT, task_id, sequence, "task.completed", created)
        body = {"id": event_id, "type": "task.completed", "created_at": created, "data": {"task_id": task_id}}
        event = StoredEvent(
            account_id=ACCOUNT,
            event_id=event_id,
            type="task.completed",
            created_at=created,
            body=json.dumps(body, separators=(",", ":")),
            task_id=task_id,
        )
        self.events.kept[(ACCOUNT, event_id)] = event
        return event

    def schedule(self, *events: StoredEvent) -> dict[str, str]:
        return schedule_deliveries(self.store, self.queue, self.current_endpoint(), events, now=self.clock())

    def run(self, *, steps: int = 500) -> list[Outcome]:
        """Deliver what the queue holds, each message when SQS would (the clock moves by its delay)."""
        outcomes = []
        for _ in range(steps):
            sent = self.queue.drain()
            if not sent:
                return outcomes
            for message, delay in sent:
                self.clock.advance(delay)
                outcomes.append(self.deliverer.deliver(message))
        raise AssertionError("the queue never emptied")

    def delivery(self, event: StoredEvent):
        return self.store.get_delivery(self.endpoint.endpoint_id, event.event_id)

    def current_endpoint(self) -> Endpoint:
        endpoint = self.store.get_endpoint(ACCOUNT, self.endpoint.endpoint_id)
        assert endpoint is not None
        return endpoint


def attempts(outcomes: list[Outcome]) -> list[Outcome]:
    """The outcomes of attempts: without the re-sends of a message that was not due yet."""
    return [o for o in outcomes if o is not Outcome.WAITING]


# ------------------------------------------------------------------ retries and success


def test_two_500s_then_200_is_three_posts_with_one_webhook_id_each_signed(receiver):
    world = World(receiver.url())
    event = world.event()
    receiver.answer(500, 500)

    world.schedule(event)
    outcomes = world.run()

    assert attempts(outcomes) == [Outcome.RETRYING, Outcome.RETRYING, Outcome.DELIVERED]
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event.event_id}
    assert Webhook(world.secret).verify(receiver.requests[0].body, receiver.requests[0].headers) == json.loads(
        event.body
    )
    for request in receiver.requests:
        assert request.body == event.body.encode()
        assert signed_with(world.secret, request)
        assert request.headers["content-type"] == "application/json"
    delivery = world.delivery(event)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert world.clock.now - START == timedelta(seconds=RETRY_DELAYS[0] + RETRY_DELAYS[1])


def test_every_attempt_failing_fails_the_delivery_after_the_schedule_not_the_endpoint(receiver):
    world = World(receiver.url())
    event = world.event()
    receiver.answer(*[500] * 20)

    world.schedule(event)
    world.run()

    assert len(receiver.requests) == len(RETRY_DELAYS) + 1
    assert world.clock.now - START == timedelta(seconds=sum(RETRY_DELAYS))  # about 28 h
    delivery = world.delivery(event)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 8, 500)
    assert world.current_endpoint().enabled  # 28 h of failures is not three days
    assert world.current_endpoint().failing_since == isoformat(START)


def test_a_success_ends_the_endpoints_run_of_failures(receiver):
    world = World(receiver.url())
    receiver.answer(503)

    world.schedule(world.event())
    world.run()

    assert world.current_endpoint().failing_since is None


def test_an_endpoint_failing_for_three_days_is_disabled_with_a_reason(receiver):
    world = World(receiver.url())
    since = START - timedelta(days=3, seconds=1)
    endpoint = world.current_endpoint()
    world.store.save_endpoint(
        endpoint.model_copy(update={"failing_since": isoformat(since)}), expected_version=endpoint.version
    )
    event = world.event()
    receiver.answer(500)

    world.schedule(event)
    outcomes = world.run()

    assert outcomes == [Outcome.DISABLED]
    endpoint = world.current_endpoint()
    assert not endpoint.enabled
    assert endpoint.disabled_reason is not None
    assert "failed since" in endpoint.disabled_reason
    assert world.delivery(event).status == "failed"


# ------------------------------------------------------------------ what the receiver asks for


def test_410_disables_the_endpoint_and_fails_the_delivery(receiver):
    world = World(receiver.url())
    first, second = world.event("t1"), world.event("t2")
    receiver.answer(410)

    world.schedule(first)
    assert world.run() == [Outcome.DISABLED]
    world.schedule(second)
    world.run()

    endpoint = world.current_endpoint()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "the endpoint answered 410 Gone"
    assert world.delivery(first).status == "failed"
    assert len(receiver.requests) == 1  # nothing more goes to a disabled endpoint
    assert world.delivery(second).status == "failed"  # shown as failed, so a replay can send it


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_after_in_seconds_is_honoured(receiver, status):
    world = World(receiver.url())
    event = world.event()
    receiver.answer((status, {"Retry-After": "120"}))

    world.schedule(event)
    world.deliverer.deliver(world.queue.drain()[0][0])

    [(message, delay)] = world.queue.drain()
    assert delay == 120
    assert message.attempt == 1
    assert message.not_before == isoformat(START + timedelta(seconds=120))
    assert world.delivery(event).next_attempt_at == message.not_before


def test_retry_after_as_an_http_date_is_honoured(receiver):
    world = World(receiver.url())
    receiver.answer((503, {"Retry-After": email.utils.format_datetime(START + timedelta(minutes=10), usegmt=True)}))

    world.schedule(world.event())
    world.deliverer.deliver(world.queue.drain()[0][0])

    [(message, delay)] = world.queue.drain()
    assert delay == 600
    assert message.not_before == isoformat(START + timedelta(minutes=10))


def test_retry_after_is_ignored_on_other_statuses_and_capped_on_these(receiver):
    world = World(receiver.url())
    receiver.answer((500, {"Retry-After": "120"}), (503, {"Retry-After": "9999999"}))
    event = world.event()

    world.schedule(event)
    world.deliverer.deliver(world.queue.drain()[0][0])
    [(first, first_delay)] = world.queue.drain()
    world.clock.advance(first_delay)
    world.deliverer.deliver(first)
    [(second, second_delay)] = world.queue.drain()

    assert first_delay == RETRY_DELAYS[0]
    assert second.not_before == isoformat(world.clock.now + timedelta(seconds=max(RETRY_DELAYS)))
    assert second_delay == 900  # SQS's longest delay: the wait goes on by re-sends
    world.clock.advance(second_delay)
    assert world.deliverer.deliver(second) is Outcome.WAITING
    assert world.queue.drain() == [(second, 900)]
    assert len(receiver.requests) == 2


# ------------------------------------------------------------------ the transport's rules


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(receiver):
    world = World(receiver.url("/moved"))
    event = world.event()
    receiver.answer((302, {"Location": receiver.url("/elsewhere")}))

    world.schedule(event)
    world.deliverer.deliver(world.queue.drain()[0][0])

    assert [r.path for r in receiver.requests] == ["/moved"]
    delivery = world.delivery(event)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 302)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://internal.example/hook", "private"),
        ("https://metadata.example/hook", "metadata"),
        ("https://10.1.2.3/hook", "private"),
        ("https://[fe80::1]/hook", "link-local"),
    ],
)
def test_an_address_that_is_not_public_is_refused_before_connecting(url, named):
    world = World(url)
    event = world.event()

    world.schedule(event)
    outcome = world.deliverer.deliver(world.queue.drain()[0][0])

    assert outcome is Outcome.RETRYING  # the address may be fixed; the schedule and the 3-day rule end it
    delivery = world.delivery(event)
    assert named in (delivery.last_error or "")
    assert delivery.last_status_code is None


def test_loopback_is_refused_without_the_local_stacks_allowance(receiver):
    world = World(receiver.url(), allow_loopback_http=False)
    event = world.event()

    world.schedule(event)
    world.deliverer.deliver(world.queue.drain()[0][0])

    assert receiver.requests == []
    assert "https" in (world.delivery(event).last_error or "")


def test_a_name_that_resolves_to_loopback_reaches_the_local_receiver(receiver):
    world = World(receiver.url(host="hooks.test"))

    world.schedule(world.event())

    assert world.run() == [Outcome.DELIVERED]
    assert receiver.requests[0].headers["host"] == f"hooks.test:{receiver.server_address[1]}"


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(receiver):
    world = World(receiver.url(), timeout_seconds=0.3)
    event = world.event()
    receiver.release.clear()  # the receiver holds every request open

    world.schedule(event)
    outcome = world.deliverer.deliver(world.queue.drain()[0][0])

    assert outcome is Outcome.RETRYING
    assert "within 0.3 s" in (world.delivery(event).last_error or "")


# ------------------------------------------------------------------ concurrency and crashes


def test_at_most_four_deliveries_are_in_flight_per_endpoint(receiver):
    world = World(receiver.url())
    events = [world.event(f"t{n}") for n in range(6)]
    world.schedule(*events)
    messages = [message for message, _ in world.queue.drain()]
    receiver.release.clear()

    outcomes: list[Outcome] = []
    workers = [threading.Thread(target=lambda m=m: outcomes.append(world.deliverer.deliver(m))) for m in messages]
    for worker in workers:
        worker.start()
    busy_deadline = datetime.now(UTC) + timedelta(seconds=5)
    while (outcomes.count(Outcome.BUSY) < 2 or receiver.in_flight < 4) and datetime.now(UTC) < busy_deadline:
        threading.Event().wait(0.01)
    receiver.release.set()
    for worker in workers:
        worker.join(5)

    assert receiver.most_in_flight == 4
    assert sorted(outcomes) == sorted([Outcome.DELIVERED] * 4 + [Outcome.BUSY] * 2)
    resent = world.queue.drain()
    assert [(m.attempt, delay) for m, delay in resent] == [(0, 10), (0, 10)]  # a wait, not an attempt
    for message, _ in resent:
        assert world.deliverer.deliver(message) is Outcome.DELIVERED
    assert world.current_endpoint().leases == {}


def test_a_crashed_workers_lease_expires_instead_of_blocking_the_endpoint(receiver):
    world = World(receiver.url())
    expiry = isoformat(START + timedelta(seconds=60))
    for lease in "abcd":  # four workers took a slot and died
        assert world.store.acquire_lease(
            ACCOUNT, world.endpoint.endpoint_id, lease, now=isoformat(START), expires_at=expiry, limit=4
        )
    world.schedule(world.event())

    outcomes = world.run()

    assert outcomes == [Outcome.BUSY] * 6 + [Outcome.DELIVERED]  # 10 s waits until the leases expire
    assert len(receiver.requests) == 1


def test_a_crash_after_the_post_sends_it_again_with_the_same_webhook_id(receiver):
    world = World(receiver.url())
    event = world.event()
    world.schedule(event)
    [(message, _)] = world.queue.drain()
    world.store.fail = lambda operation: Retryable("worker lost") if operation == "save_delivery" else None

    with pytest.raises(Retryable):
        world.deliverer.deliver(message)  # posted, then died: SQS delivers the message again
    world.store.fail = None
    assert world.deliverer.deliver(message) is Outcome.DELIVERED

    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.event_id, event.event_id]
    assert world.delivery(event).status == "succeeded"
    assert world.deliverer.deliver(message) is Outcome.SKIPPED  # a third copy posts nothing
    assert len(receiver.requests) == 2


def test_a_next_attempt_sqs_refuses_raises_so_the_message_is_delivered_again(receiver):
    world = World(receiver.url())
    event = world.event()
    world.schedule(event)
    [(message, _)] = world.queue.drain()
    receiver.answer(500, 500)
    world.queue.refuse = lambda _message: "throttled"

    with pytest.raises(Retryable, match="refused"):
        world.deliverer.deliver(message)
    assert world.delivery(event).attempts == 0  # nothing recorded that would drop the redelivery
    world.queue.refuse = None
    assert world.deliverer.deliver(message) is Outcome.RETRYING
    assert world.run() == [Outcome.DELIVERED]

    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.event_id] * 3


def test_a_duplicate_message_of_an_earlier_attempt_posts_nothing(receiver):
    world = World(receiver.url())
    event = world.event()
    receiver.answer(500)
    world.schedule(event)
    [(first, _)] = world.queue.drain()
    world.deliverer.deliver(first)

    assert world.deliverer.deliver(first) is Outcome.SKIPPED
    assert len(receiver.requests) == 1


def test_nothing_is_posted_to_a_deleted_endpoint(receiver):
    world = World(receiver.url())
    world.schedule(world.event())
    world.store.delete_endpoint(ACCOUNT, world.endpoint.endpoint_id)

    assert world.run() == [Outcome.SKIPPED]
    assert receiver.requests == []


# ------------------------------------------------------------------ scheduling and secrets


def test_scheduling_again_sends_nothing_for_a_settled_delivery_and_resets_a_failed_one(receiver):
    world = World(receiver.url())
    delivered, failed = world.event("t1"), world.event("t2")
    receiver.answer(*[500] * 8)  # the first delivery (t1's) fails every attempt
    world.schedule(delivered)
    world.run()
    assert world.delivery(delivered).status == "failed"

    world.schedule(delivered, failed)
    world.run()
    assert world.delivery(delivered).status == "succeeded"
    assert world.delivery(delivered).attempts == 1
    assert world.delivery(failed).status == "succeeded"
    posts = len(receiver.requests)

    assert world.schedule(delivered, failed) == {}
    assert world.queue.drain() == []
    assert len(receiver.requests) == posts


def test_a_replay_sends_a_succeeded_delivery_again(receiver):
    world = World(receiver.url())
    event = world.event()
    world.schedule(event)
    world.run()

    schedule_deliveries(world.store, world.queue, world.current_endpoint(), [event], now=world.clock(), replay=True)
    world.run()

    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.event_id] * 2


def test_a_send_sqs_refuses_is_reported_and_scheduling_again_sends_it(receiver):
    world = World(receiver.url())
    event = world.event()
    world.queue.refuse = lambda _message: "throttled"

    assert world.schedule(event) == {event.event_id: "throttled"}
    world.queue.refuse = None
    assert world.schedule(event) == {}
    assert world.run() == [Outcome.DELIVERED]


def test_during_a_rotation_both_secrets_sign_and_an_expired_one_does_not(receiver):
    world = World(receiver.url())
    old, new = world.secret, new_secret()
    endpoint = world.current_endpoint()
    grace = isoformat(START + timedelta(hours=24))
    world.store.save_endpoint(
        endpoint.model_copy(update={"secrets": [Secret(secret=new), Secret(secret=old, expires_at=grace)]}),
        expected_version=endpoint.version,
    )
    world.schedule(world.event("t1"))
    world.run()
    world.clock.advance(24 * 3600 + 1)
    world.schedule(world.event("t2"))
    world.run()

    during, after = receiver.requests
    assert signed_with(old, during)
    assert signed_with(new, during)
    assert signed_with(new, after)
    assert not signed_with(old, after)
    assert len(after.headers["webhook-signature"].split()) == 1


def test_no_secret_signature_or_body_is_logged(receiver, capsys, caplog):
    world = World(receiver.url("/hook?token=query-secret"))
    event = world.event()
    receiver.answer(500, 410)

    with captured_logs(capsys, caplog) as logs:
        world.schedule(event)
        world.run()

    text = logs.text()
    assert "webhook attempt" in text  # the logs were captured
    signatures = [r.headers["webhook-signature"].partition(",")[2] for r in receiver.requests]
    for secret_thing in [world.secret, world.secret.removeprefix("whsec_"), *signatures, event.body, "query-secret"]:
        assert secret_thing not in text


def test_a_poison_message_is_refused_when_parsed():
    with pytest.raises(ValueError, match="not a webhook delivery message"):
        DeliveryMessage.parse('{"account_id": "a", "endpoint_id": "", "event_id": "e"}')
    with pytest.raises(ValueError, match="not a webhook delivery message"):
        DeliveryMessage.parse('{"account_id": "a", "endpoint_id": "we", "event_id": "e", "attempt": "1"}')
    assert DeliveryMessage.parse(DeliveryMessage(account_id="a", endpoint_id="we", event_id="e").to_json()).attempt == 0
