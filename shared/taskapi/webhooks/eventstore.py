"""EventStore: the account's events for 7 days (template.yaml, EventsTable), each with the exact
body every endpoint receives and the two flags of its fan-out (fanned_out: deliveries scheduled;
bus_sent: put on the EventBridge bus). The DynamoDB adapter and the in-memory fake.

Item layout: key account_id (HASH) + event_id (RANGE); type, created_at, body, task_id?, group_id?,
fanned_out (BOOL), bus_sent (BOOL), expires_at (epoch seconds, created_at + 7 days: the TTL).
Event ids begin with the creation time as 20 digits ("evt_YYYYMMDDHHMMSSffffff_..."), so a Query
in key order reads the account's events oldest first, and a time window is a key range."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, AwsError, translate
from taskapi.errors import Retryable, TaskApiError
from taskapi.models.domain import utc_now
from taskapi.webhooks.items import string_attr as _s
from taskapi.webhooks.models import StoredEvent, parse_time

RETENTION = timedelta(days=7)
"""Events are kept (and listed) this long."""
ID_PREFIX = "evt_"
UPPER = "~"
"""Sorts after every character of an event id: "evt_<stamp>~" is past every id of that stamp."""
QUERY_PAGE = 100
BATCH_GET = 100
"""BatchGetItem takes at most 100 keys."""
BATCH_WRITE = 25
"""BatchWriteItem takes at most 25 items."""


def stamp_of(moment: str | datetime) -> str:
    """The 20 digits an event id of this moment begins with (after "evt_")."""
    return parse_time(moment).strftime("%Y%m%d%H%M%S%f")


def expiry_of(created_at: str) -> int:
    return int((parse_time(created_at) + RETENTION).timestamp())


class EventStore(Protocol):
    def get(self, account_id: str, event_id: str) -> StoredEvent | None: ...

    def put_many(self, events: Sequence[StoredEvent]) -> None:
        """Store these events as they are, flags included, replacing what is stored under their
        ids (BatchWriteItem, 25 a call): for events get_many just found absent, and to record
        what a publisher sent. An event's content never changes, only its flags."""
        ...

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredEvent]:
        """The stored events of these (account_id, event_id) keys (strongly consistent); the
        missing ones are absent from the answer."""
        ...

    def after(self, account_id: str, cursor: str | None, limit: int) -> list[StoredEvent]:
        """Up to `limit` of the account's events of the last 7 days, oldest first, with
        event_id > cursor (from the first when None)."""
        ...

    def between(self, account_id: str, since: str, until: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events created from `since` to `until` (ISO times, both included) and
        within the last 7 days, oldest first."""
        ...


def _lower_bound(now: datetime, cursor: str | None) -> tuple[str, bool]:
    """(key, exclusive): the first id a listing may answer, given the retention and a cursor."""
    oldest = ID_PREFIX + stamp_of(now - RETENTION)
    if cursor is not None and cursor >= oldest:
        return cursor, True
    return oldest, False


def _window(now: datetime, since: str, until: str) -> tuple[str, str]:
    low = max(ID_PREFIX + stamp_of(since), ID_PREFIX + stamp_of(now - RETENTION))
    return low, ID_PREFIX + stamp_of(until) + UPPER


# ---------------------------------------------------------------------- DynamoDB
def event_to_item(event: StoredEvent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "account_id": _s(event.account_id),
        "event_id": _s(event.event_id),
        "type": _s(event.type),
        "created_at": _s(event.created_at),
        "body": _s(event.body),
        "fanned_out": {"BOOL": event.fanned_out},
        "bus_sent": {"BOOL": event.bus_sent},
        "expires_at": {"N": str(expiry_of(event.created_at))},
    }
    if event.task_id is not None:
        item["task_id"] = _s(event.task_id)
    if event.group_id is not None:
        item["group_id"] = _s(event.group_id)
    return item


def item_to_event(item: dict[str, Any]) -> StoredEvent:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    def flag(name: str) -> bool:
        value = item.get(name)
        return bool(value and value.get("BOOL"))

    return StoredEvent(
        account_id=item["account_id"]["S"],
        event_id=item["event_id"]["S"],
        type=item["type"]["S"],
        created_at=item["created_at"]["S"],
        body=item["body"]["S"],
        task_id=text("task_id"),
        group_id=text("group_id"),
        fanned_out=flag("fanned_out"),
        bus_sent=flag("bus_sent"),
    )


def _store_error(exc: AwsError) -> TaskApiError:
    return translate(exc, service="DynamoDB", unavailable="The event store did not answer; retry")


class DynamoEventStore:
    def __init__(self, client: Any, table_name: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def put_many(self, events: Sequence[StoredEvent]) -> None:
        for start in range(0, len(events), BATCH_WRITE):
            request: dict[str, Any] = {
                self._table: [{"PutRequest": {"Item": event_to_item(e)}} for e in events[start : start + BATCH_WRITE]]
            }
            for attempt in range(5):
                try:
                    answer = self._client.batch_write_item(RequestItems=request)
                except AWS_ERRORS as exc:
                    raise _store_error(exc) from exc
                request = answer.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise Retryable("DynamoDB left events unwritten; the batch is retried")

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"account_id": _s(account_id), "event_id": _s(event_id)},
                ConsistentRead=True,
            )
        except AWS_ERRORS as exc:
            raise _store_error(exc) from exc
        item = answer.get("Item")
        return None if item is None else item_to_event(item)

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredEvent]:
        found: dict[tuple[str, str], StoredEvent] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{"account_id": _s(a), "event_id": _s(e)} for a, e in unique[start : start + BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(5):
                try:
                    answer = self._client.batch_get_item(RequestItems=request)
                except AWS_ERRORS as exc:
                    raise _store_error(exc) from exc
                for item in answer.get("Responses", {}).get(self._table, []):
                    event = item_to_event(item)
                    found[(event.account_id, event.event_id)] = event
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise Retryable("DynamoDB left event keys unprocessed; the batch is retried")
        return found

    def after(self, account_id: str, cursor: str | None, limit: int) -> list[StoredEvent]:
        low, exclusive = _lower_bound(self._clock(), cursor)
        operator = ">" if exclusive else ">="
        return self._query(account_id, f"event_id {operator} :low", {":low": _s(low)}, limit)

    def between(self, account_id: str, since: str, until: str, limit: int) -> list[StoredEvent]:
        low, high = _window(self._clock(), since, until)
        if low > high:
            return []
        return self._query(account_id, "event_id BETWEEN :low AND :high", {":low": _s(low), ":high": _s(high)}, limit)

    def _query(self, account_id: str, condition: str, values: dict[str, Any], limit: int) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"account_id = :a AND {condition}",
            "ExpressionAttributeValues": {":a": _s(account_id), **values},
            "ScanIndexForward": True,
        }
        while len(found) < limit:
            args["Limit"] = min(QUERY_PAGE, limit - len(found))
            try:
                answer = self._client.query(**args)
            except AWS_ERRORS as exc:
                raise _store_error(exc) from exc
            found.extend(item_to_event(item) for item in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if last is None:
                break
            args["ExclusiveStartKey"] = last
        return found[:limit]


# ---------------------------------------------------------------------- in memory
class MemoryEventStore:
    """The same contract in a dict."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.events: dict[tuple[str, str], StoredEvent] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def put_many(self, events: Sequence[StoredEvent]) -> None:
        with self._lock:
            for event in events:
                self.events[(event.account_id, event.event_id)] = event

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        with self._lock:
            return self.events.get((account_id, event_id))

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredEvent]:
        with self._lock:
            return {key: self.events[key] for key in keys if key in self.events}

    def _sorted(self, account_id: str) -> list[StoredEvent]:
        with self._lock:
            return sorted(
                (event for (account, _), event in self.events.items() if account == account_id),
                key=lambda event: event.event_id,
            )

    def after(self, account_id: str, cursor: str | None, limit: int) -> list[StoredEvent]:
        low, exclusive = _lower_bound(self._clock(), cursor)
        chosen = [e for e in self._sorted(account_id) if e.event_id > low or (not exclusive and e.event_id == low)]
        return chosen[:limit]

    def between(self, account_id: str, since: str, until: str, limit: int) -> list[StoredEvent]:
        low, high = _window(self._clock(), since, until)
        return [e for e in self._sorted(account_id) if low <= e.event_id <= high][:limit]
