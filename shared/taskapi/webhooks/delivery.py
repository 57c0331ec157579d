"""The delivery rules: scheduling deliveries (the fan-out and replays) and attempting one (the
WebhookDeliveryFunction's worker).

An attempt is one POST of the stored event's exact body, signed with the endpoint's active secrets
(taskapi.webhooks.signing); webhook-id is the event id on every attempt, so a receiver deduplicates.
- 2xx: the delivery succeeded; the endpoint's run of failures (failing_since) ends.
- 410 Gone: the receiver says it is gone for good: the endpoint is disabled, with that reason.
- Anything else (other statuses, 3xx included: no redirect is followed; refusals, timeouts,
  connection failures): the next attempt after RETRY_DELAYS[n] (with jitter), or, for 429, 502,
  503 and 504, after the Retry-After the receiver asked for if that is longer (capped at the
  longest delay). After the last delay the delivery is failed. An endpoint whose every attempt
  has failed for DISABLE_AFTER is disabled, with that reason.

Nothing is lost: the next attempt's message is sent before the delivery is saved, and a send SQS
refuses raises (Retryable), so the SQS message in hand is delivered again. A worker that dies after
the POST and before its bookkeeping leaves the message to be delivered again: the same POST, the
same webhook-id. A message older than its delivery's attempt count is a duplicate and is dropped.

At most MAX_IN_FLIGHT attempts run per endpoint: each takes a lease (taskapi.webhooks.store) that
expires after LEASE_SECONDS, so a crashed worker's slot frees itself. A message that finds every
slot taken waits BUSY_DELAY_SECONDS, and that wait is not an attempt. SQS delays a message at most
15 minutes: a longer wait is a chain of re-sends of the same message until `not_before`.

Logs name the endpoint, the event, the attempt and the status; never a secret, a signature, a body
or the URL's query string.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from taskapi.errors import Conflict, Retryable
from taskapi.media.fetch import shown_url
from taskapi.models.domain import isoformat, utc_now
from taskapi.observability import logger, metrics
from taskapi.webhooks import signing
from taskapi.webhooks.models import Delivery, DeliveryMessage, Endpoint, StoredEvent, parse_time
from taskapi.webhooks.queue import MAX_DELAY_SECONDS, DeliveryQueue
from taskapi.webhooks.store import WebhookStore
from taskapi.webhooks.transport import DEFAULT_TIMEOUT_SECONDS, Transport, TransportError, parse_retry_after

RETRY_DELAYS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
"""Seconds before each retry: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 28 h in all)."""
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = max(RETRY_DELAYS)
DISABLE_AFTER = timedelta(days=3)
MAX_IN_FLIGHT = 4
LEASE_SECONDS = 30
"""Longer than an attempt can take (the 10 s deadline and the bookkeeping around it), short enough
that the slots of crashed workers come back within half a minute."""
BUSY_DELAY_SECONDS = 10
ENDPOINT_SAVE_ROUNDS = 3
MAX_ERROR_CHARS = 300

Clock = Callable[[], datetime]
Jitter = Callable[[float], float]


def default_jitter(seconds: float) -> float:
    """Spread retries by ±20 %, so the failures of one outage do not come back all at once."""
    return seconds * random.uniform(0.8, 1.2)  # noqa: S311 (timing, not security)


class EventSource(Protocol):
    """What the worker needs of the EventStore (taskapi.webhooks.eventstore)."""

    def get(self, account_id: str, event_id: str) -> StoredEvent | None: ...


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    DISABLED = "disabled"
    """The endpoint answered 410, or has failed for DISABLE_AFTER: it is disabled now."""
    SKIPPED = "skipped"
    """Nothing to do: the endpoint or event is gone or disabled, or the delivery is settled."""
    WAITING = "waiting"
    """Not due yet: the message was sent again, delayed."""
    BUSY = "busy"
    """Every slot of the endpoint is taken: the message was sent again, delayed."""


def _send(queue: DeliveryQueue, messages: Sequence[DeliveryMessage], delay_seconds: int) -> dict[int, str]:
    return queue.send(messages, delay_seconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)))


def schedule_deliveries(
    store: WebhookStore,
    queue: DeliveryQueue,
    endpoint: Endpoint,
    events: Sequence[StoredEvent],
    *,
    now: datetime | str,
    replay: bool = False,
) -> dict[str, str]:
    """Make each event a pending delivery to `endpoint` and queue its first attempt. Answers the
    events whose message SQS refused: event id -> reason (the caller retries them; doing so
    again is safe).

    Idempotent for the fan-out: a delivery that exists is left alone (its attempts are under way
    or settled), except a pending one never attempted, whose message is sent again (the previous
    send may have been refused). A failed delivery is reset to pending and sent again (a replay);
    with `replay`, so is a succeeded one (the user asked for this event again)."""
    moment = isoformat(parse_time(now))
    to_send: list[DeliveryMessage] = []
    for event in events:
        fresh = Delivery(
            account_id=endpoint.account_id,
            endpoint_id=endpoint.endpoint_id,
            event_id=event.event_id,
            event_type=event.type,
            created_at=moment,
            updated_at=moment,
        )
        if not store.put_delivery_if_absent(fresh):
            existing = store.get_delivery(endpoint.endpoint_id, event.event_id)
            if existing is None:
                store.save_delivery(fresh)  # expired between the two calls
            elif existing.status == "failed" or (replay and existing.status == "succeeded"):
                reset = {"status": "pending", "attempts": 0, "next_attempt_at": None, "updated_at": moment}
                store.save_delivery(existing.model_copy(update=reset))
            elif existing.status != "pending" or existing.attempts > 0:
                continue
        to_send.append(
            DeliveryMessage(account_id=endpoint.account_id, endpoint_id=endpoint.endpoint_id, event_id=event.event_id)
        )
    refused = _send(queue, to_send, 0) if to_send else {}
    return {to_send[index].event_id: reason for index, reason in refused.items()}


class Deliverer:
    """Attempts one delivery per message, under the rules in the module docstring."""

    def __init__(
        self,
        store: WebhookStore,
        events: EventSource,
        queue: DeliveryQueue,
        transport: Transport,
        clock: Clock = utc_now,
        allow_loopback_http: bool = False,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        jitter: Jitter = default_jitter,
        max_in_flight: int = MAX_IN_FLIGHT,
        retry_delays: Sequence[int] = RETRY_DELAYS,
    ) -> None:
        self.store, self.events, self.queue, self.transport = store, events, queue, transport
        self.clock, self.allow_loopback_http = clock, allow_loopback_http
        self.timeout_seconds, self.jitter, self.max_in_flight = timeout_seconds, jitter, max_in_flight
        self.retry_delays = tuple(retry_delays) or RETRY_DELAYS
        """Waits before attempts 2, 3, ... (Settings.webhook_retry_delays_seconds; drills shorten them)."""

    def deliver(self, message: DeliveryMessage) -> Outcome:
        now = self.clock()
        if message.not_before is not None:
            wait = (parse_time(message.not_before) - now).total_seconds()
            if wait > 0:
                self._resend(message, math.ceil(wait))
                return Outcome.WAITING
        endpoint = self.store.get_endpoint(message.account_id, message.endpoint_id)
        delivery = self.store.get_delivery(message.endpoint_id, message.event_id)
        if endpoint is None or delivery is None or delivery.status != "pending":
            return Outcome.SKIPPED
        if message.attempt < delivery.attempts:
            return Outcome.SKIPPED  # a duplicate of an attempt made already
        if not endpoint.enabled:
            self._settle(delivery, now, "failed", error="the endpoint is disabled")
            return Outcome.SKIPPED
        event = self.events.get(message.account_id, message.event_id)
        if event is None:
            self._settle(delivery, now, "failed", error="the event is no longer kept (7 days)")
            return Outcome.FAILED
        lease = uuid.uuid4().hex
        expiry = isoformat(now + timedelta(seconds=LEASE_SECONDS))
        if not self.store.acquire_lease(
            endpoint.account_id,
            endpoint.endpoint_id,
            lease,
            now=isoformat(now),
            expires_at=expiry,
            limit=self.max_in_flight,
        ):
            self._resend(message, BUSY_DELAY_SECONDS)
            return Outcome.BUSY
        try:
            return self._attempt(message, endpoint, delivery, event, now)
        finally:
            self.store.release_lease(endpoint.account_id, endpoint.endpoint_id, lease)

    def _attempt(
        self, message: DeliveryMessage, endpoint: Endpoint, delivery: Delivery, event: StoredEvent, now: datetime
    ) -> Outcome:
        body = event.body.encode()
        headers = signing.headers(endpoint.active_secrets(now), event.event_id, body, now)
        attempt = message.attempt + 1
        status: int | None = None
        retry_after: float | None = None
        try:
            result = self.transport.post(
                endpoint.url,
                body,
                headers,
                timeout_seconds=self.timeout_seconds,
                allow_loopback_http=self.allow_loopback_http,
            )
        except TransportError as exc:
            error = exc.reason
        else:
            status, error = result.status, f"the endpoint answered {result.status}"
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(result.retry_after, self.clock())
        logger.info(
            "webhook attempt",
            extra={"url": shown_url(endpoint.url), "attempt": attempt, "status_code": status},
        )
        metrics.add_metric(name="WebhookAttempts", unit="Count", value=1)
        done = self.clock()
        if status is not None and 200 <= status < 300:
            self._settle(delivery, done, "succeeded", attempts=attempt, status_code=status)
            if endpoint.failing_since is not None:
                self._update_endpoint(endpoint, lambda e: {"failing_since": None} if e.failing_since else None)
            return Outcome.DELIVERED
        metrics.add_metric(name="WebhookAttemptsFailed", unit="Count", value=1)
        if status == 410:
            reason = "the endpoint answered 410 Gone"
            self._disable(endpoint, reason, done)
            self._settle(delivery, done, "failed", attempts=attempt, status_code=status, error=error)
            return Outcome.DISABLED
        failing_since = self._note_failure(endpoint, done)
        if done - failing_since >= DISABLE_AFTER:
            self._disable(endpoint, f"every delivery has failed since {isoformat(failing_since)}", done)
            self._settle(delivery, done, "failed", attempts=attempt, status_code=status, error=error)
            return Outcome.DISABLED
        if attempt >= len(self.retry_delays) + 1:
            self._settle(delivery, done, "failed", attempts=attempt, status_code=status, error=error)
            return Outcome.FAILED
        delay = self.jitter(self.retry_delays[attempt - 1])
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        due = done + timedelta(seconds=delay)
        following = message.model_copy(update={"attempt": attempt, "not_before": isoformat(due)})
        self._resend(following, math.ceil(delay))  # before the save: a crash here re-sends, never loses
        update = {
            "attempts": attempt,
            "last_status_code": status,
            "last_error": error[:MAX_ERROR_CHARS],
            "next_attempt_at": isoformat(due),
            "updated_at": isoformat(done),
        }
        self.store.save_delivery(delivery.model_copy(update=update))
        return Outcome.RETRYING

    def _resend(self, message: DeliveryMessage, delay_seconds: int) -> None:
        refused = _send(self.queue, [message], delay_seconds)
        if refused:
            raise Retryable(f"the webhook delivery queue refused a message: {refused[0]}")

    def _settle(
        self,
        delivery: Delivery,
        now: datetime,
        status: str,
        *,
        attempts: int | None = None,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        update: dict[str, object] = {"status": status, "next_attempt_at": None, "updated_at": isoformat(now)}
        if attempts is not None:
            update["attempts"] = attempts
        if status_code is not None:
            update["last_status_code"] = status_code
        if error is not None:
            update["last_error"] = error[:MAX_ERROR_CHARS]
        self.store.save_delivery(delivery.model_copy(update=update))
        if status == "failed":  # given up: last attempt, 410, a disabled endpoint or an expired event
            metrics.add_metric(name="WebhookDeliveriesFailed", unit="Count", value=1)

    def _note_failure(self, endpoint: Endpoint, now: datetime) -> datetime:
        """When the endpoint's run of failures began (now, if this failure begins it)."""
        if endpoint.failing_since is not None:
            return parse_time(endpoint.failing_since)
        saved = self._update_endpoint(
            endpoint, lambda e: None if e.failing_since else {"failing_since": isoformat(now)}
        )
        since = saved.failing_since if saved is not None else None
        return parse_time(since) if since else now

    def _disable(self, endpoint: Endpoint, reason: str, now: datetime) -> None:
        disabled = {"enabled": False, "disabled_reason": reason, "updated_at": isoformat(now)}
        self._update_endpoint(endpoint, lambda e: disabled if e.enabled else None)
        logger.warning("webhook endpoint disabled", extra={"reason": reason})
        metrics.add_metric(name="WebhookEndpointsDisabled", unit="Count", value=1)

    def _update_endpoint(
        self, endpoint: Endpoint, change: Callable[[Endpoint], dict[str, object] | None]
    ) -> Endpoint | None:
        """Apply `change` (the fields to set, or None for nothing) to the stored endpoint, again on
        a fresh read when a concurrent save wins. Answers the endpoint as it now stands."""
        current: Endpoint | None = endpoint
        for _ in range(ENDPOINT_SAVE_ROUNDS):
            if current is None:
                return None
            update = change(current)
            if update is None:
                return current
            try:
                return self.store.save_endpoint(current.model_copy(update=update), expected_version=current.version)
            except Conflict:
                current = self.store.get_endpoint(endpoint.account_id, endpoint.endpoint_id)
        raise Retryable("the webhook endpoint kept changing; the message will be delivered again")
