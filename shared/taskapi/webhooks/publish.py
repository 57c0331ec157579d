"""Publishing events: stored once (looked up first, then written 25 a call), fanned out to the account's endpoints
that want them (pending deliveries and their queue messages, by
taskapi.webhooks.delivery.schedule_deliveries) and put on the EventBridge bus.

A new event goes to the bus first and is then stored once with what is left to do (fanned_out,
bus_sent: true when nothing is), so most events cost one write; the fan-out is recorded in one
more. A replayed batch finds its events stored and sends only what they record as missing; a crash
between the bus and the store puts the event on the bus again under the same id (EventBridge
delivers at least once anyway: rules and targets see detail.id). Within the fan-out, deliveries
are deduplicated by their Delivery item (endpoint, event): an endpoint reached before the crash
gets no second delivery. What could not be sent raises Retryable once the rest is done and recorded: the
stream batch (or the ingest message) is delivered again, and only the missing sends happen.

The bus gets every event but task.progress (chatty, not a state change): detail-type "Task State
Change" for task events, "Group Completed" and "Upload State Change" for the others, source
"taskapi", detail the delivered body. No payload is ever logged: ids, types and counts only."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, translate
from taskapi.errors import Retryable
from taskapi.models.domain import utc_now
from taskapi.observability import logger, tracer
from taskapi.uploads.files import UploadFiles
from taskapi.uploads.model import Upload
from taskapi.webhooks.delivery import schedule_deliveries
from taskapi.webhooks.events import upload_event
from taskapi.webhooks.eventstore import EventStore
from taskapi.webhooks.models import Endpoint, StoredEvent, parse_time
from taskapi.webhooks.queue import DeliveryQueue
from taskapi.webhooks.store import WebhookStore

SOURCE = "taskapi"
BUS_EXCLUDED_TYPES = frozenset({"task.progress"})
PUT_EVENTS_ENTRIES = 10
"""PutEvents takes at most 10 entries..."""
PUT_EVENTS_BYTES = 240 * 1024
"""...and 256 KB in all: a request is cut before this many bytes of entries (a margin kept)."""


def detail_type(event_type: str) -> str:
    if event_type.startswith("task."):
        return "Task State Change"
    if event_type.startswith("group."):
        return "Group Completed"
    return "Upload State Change"


def goes_to_bus(event: StoredEvent) -> bool:
    return event.type not in BUS_EXCLUDED_TYPES


# ---------------------------------------------------------------------- the bus
class EventBus(Protocol):
    def put(self, events: Sequence[StoredEvent]) -> dict[int, str]:
        """Put every event on the bus; answers the refused ones: index -> reason."""
        ...


def bus_entry(event: StoredEvent, bus_name: str) -> dict[str, Any]:
    return {
        "Time": parse_time(event.created_at),
        "Source": SOURCE,
        "DetailType": detail_type(event.type),
        "Detail": event.body,
        "EventBusName": bus_name,
    }


def _entry_size(entry: dict[str, Any]) -> int:
    """PutEvents' size of an entry: Time (14), Source, DetailType and Detail in UTF-8."""
    return 14 + sum(len(str(entry[name]).encode()) for name in ("Source", "DetailType", "Detail"))


class EventBridgeBus:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def put(self, events: Sequence[StoredEvent]) -> dict[int, str]:
        """PutEvents by tens (and under its 256 KB). A request the call itself fails for is
        refused entry by entry, so the caller retries rather than loses it."""
        refused: dict[int, str] = {}
        for indexes in self._requests(events):
            entries = [bus_entry(events[index], self._bus) for index in indexes]
            try:
                answer = self._client.put_events(Entries=entries)
            except AWS_ERRORS as exc:
                translate(exc, service="EventBridge")  # logs a configuration error
                refused.update(dict.fromkeys(indexes, f"EventBridge refused the request ({type(exc).__name__})"))
                continue
            for index, result in zip(indexes, answer.get("Entries", []), strict=False):
                if result.get("ErrorCode"):
                    refused[index] = f"EventBridge refused the event: {result['ErrorCode']}"
        return refused

    def _requests(self, events: Sequence[StoredEvent]) -> list[list[int]]:
        requests: list[list[int]] = []
        current: list[int] = []
        size = 0
        for index, event in enumerate(events):
            entry_size = _entry_size(bus_entry(event, self._bus))
            if current and (len(current) == PUT_EVENTS_ENTRIES or size + entry_size > PUT_EVENTS_BYTES):
                requests.append(current)
                current, size = [], 0
            current.append(index)
            size += entry_size
        if current:
            requests.append(current)
        return requests


@dataclass
class MemoryEventBus:
    """Records what was put; `refuse` makes chosen puts fail (fault injection)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    refuse: Callable[[StoredEvent], str | None] | None = None
    bus_name: str = "memory"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, events: Sequence[StoredEvent]) -> dict[int, str]:
        refused: dict[int, str] = {}
        with self._lock:
            for index, event in enumerate(events):
                reason = self.refuse(event) if self.refuse else None
                if reason:
                    refused[index] = reason
                else:
                    self.entries.append(bus_entry(event, self.bus_name))
        return refused


# ---------------------------------------------------------------------- the publisher
@dataclass
class PublishReport:
    events: int = 0
    """Events given."""
    stored: int = 0
    """Stored by this call (the rest were stored before: a replay or a redelivery)."""
    fanned_out: int = 0
    """Events fanned out by this call (whether or not an endpoint wanted them)."""
    deliveries: int = 0
    """(endpoint, event) pairs scheduled by this call."""
    bus_sent: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    """event_id -> why a send failed (the call raised Retryable after recording the rest)."""

    def as_dict(self) -> dict[str, int]:
        return {
            "events": self.events,
            "stored": self.stored,
            "fanned_out": self.fanned_out,
            "deliveries": self.deliveries,
            "bus_sent": self.bus_sent,
            "refused": len(self.refused),
        }


class EventPublisher:
    def __init__(
        self,
        events: EventStore,
        webhooks: WebhookStore,
        queue: DeliveryQueue,
        bus: EventBus | None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.events = events
        self.webhooks = webhooks
        self.queue = queue
        self.bus = bus
        self.clock = clock

    @tracer.capture_method(capture_response=False)
    def publish(self, events: Sequence[StoredEvent]) -> PublishReport:
        """Store, fan out and put on the bus whatever of these events is not done yet. Raises
        Retryable when a send failed (after recording every one that did not).

        The batch's events are looked up first (one BatchGetItem): a new event goes to the bus
        before it is stored, and is stored once with what is left to do (nothing, unless an
        endpoint wants it or the bus refused it). An event stored before (a replayed batch) gets
        only what its record says is missing, recorded in one more write."""
        report = PublishReport(events=len(events))
        endpoints = self._endpoints({event.account_id for event in events})
        unique = list({(event.account_id, event.event_id): event for event in events}.values())
        stored = self.events.get_many([(event.account_id, event.event_id) for event in unique])
        new = [event for event in unique if (event.account_id, event.event_id) not in stored]
        on_bus = self._send_to_bus([event for event in new if self.bus is not None and goes_to_bus(event)], report)
        prepared = [
            event.model_copy(
                update={
                    "fanned_out": not any(e.wants(event.type, event.group_id) for e in endpoints[event.account_id]),
                    "bus_sent": self.bus is None
                    or not goes_to_bus(event)
                    or (event.account_id, event.event_id) in on_bus,
                }
            )
            for event in new
        ]
        # Unconditional writes, 25 a call: get_many found them absent, and a stream shard's batches
        # are processed one at a time (ParallelizationFactor 1), so nothing else writes these ids.
        if prepared:
            self.events.put_many(prepared)
        report.stored += len(prepared)
        current = list(stored.values()) + prepared
        fanned = self._fan_out([e for e in current if not e.fanned_out], endpoints, report)
        sent = self._send_to_bus([e for e in current if not e.bus_sent and goes_to_bus(e)], report)
        done = [
            event.model_copy(
                update={
                    "fanned_out": event.fanned_out or (event.account_id, event.event_id) in fanned,
                    "bus_sent": event.bus_sent or (event.account_id, event.event_id) in sent,
                }
            )
            for event in current
            if (event.account_id, event.event_id) in fanned or (event.account_id, event.event_id) in sent
        ]
        if done:
            self.events.put_many(done)  # what was sent, recorded in whole items, 25 a call
        logger.info("events published", extra=report.as_dict())
        if report.refused:
            first = next(iter(report.refused.values()))
            raise Retryable(f"{len(report.refused)} events could not be sent ({first}); the batch is retried")
        return report

    def _endpoints(self, accounts: set[str]) -> dict[str, list[Endpoint]]:
        """Each account's enabled endpoints: one query per account of the batch."""
        return {
            account_id: [e for e in self.webhooks.list_endpoints(account_id) if e.enabled] for account_id in accounts
        }

    def _fan_out(
        self, events: Sequence[StoredEvent], endpoints: dict[str, list[Endpoint]], report: PublishReport
    ) -> set[tuple[str, str]]:
        """Deliveries of each event to the endpoints that want it; answers the events done."""
        by_account: dict[str, list[StoredEvent]] = defaultdict(list)
        for event in events:
            by_account[event.account_id].append(event)
        now = self.clock()
        done: set[tuple[str, str]] = set()
        for account_id, account_events in by_account.items():
            refused: dict[str, str] = {}
            for endpoint in endpoints.get(account_id, []):
                wanted = [e for e in account_events if endpoint.wants(e.type, e.group_id)]
                if not wanted:
                    continue
                failed = schedule_deliveries(self.webhooks, self.queue, endpoint, wanted, now=now)
                report.deliveries += len(wanted) - len(failed)
                for event_id, reason in failed.items():
                    refused.setdefault(event_id, reason)
            for event in account_events:
                if event.event_id in refused:
                    report.refused[event.event_id] = refused[event.event_id]
                    continue
                done.add((account_id, event.event_id))
                report.fanned_out += 1
        return done

    def _send_to_bus(self, events: Sequence[StoredEvent], report: PublishReport) -> set[tuple[str, str]]:
        """The events on the bus; answers those it took."""
        if not events or self.bus is None:
            return set()
        refused = self.bus.put(events)
        done: set[tuple[str, str]] = set()
        for index, event in enumerate(events):
            if index in refused:
                report.refused.setdefault(event.event_id, refused[index])
                continue
            done.add((event.account_id, event.event_id))
            report.bus_sent += 1
        return done


class UploadEventPublisher:
    """The ingest's hook (taskapi.uploads.ingest.Ingestor's on_final): the upload.completed or
    upload.failed event of an upload that is final, with its report's presigned URL. Called again
    for an upload final already (a redelivered notification), it sends only what was not sent."""

    def __init__(self, publisher: EventPublisher, files: UploadFiles) -> None:
        self.publisher = publisher
        self.files = files

    def __call__(self, upload: Upload) -> None:
        report_url = self.files.url(upload.report_key) if upload.report_key else None
        event = upload_event(upload, report_url=report_url)
        if event is not None:
            self.publisher.publish([event])
