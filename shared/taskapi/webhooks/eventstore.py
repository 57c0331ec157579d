"""EventStore: the account's events for 7 days (template.yaml, EventsTable), each with the exact
body every endpoint receives and the two flags of its fan-out (fanned_out: deliveries scheduled;
bus_sent: put on the EventBridge bus). The DynamoDB adapter and the in-memory fake.

Item layout: key account_id (HASH) + event_id (RANGE); type, created_at, body, task_id?, group_id?,
fanned_out (BOOL), bus_sent (BOOL), expires_at (epoch seconds, created_at + 7 days: the TTL).
Event ids begin with the creation time as 20 digits ("evt_YYYYMMDDHHMMSSffffff_..."), so a Query
in key order reads the account's events oldest first, and a time window is a key range."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, AwsError, error_code, translate
from taskapi.errors import TaskApiError
from taskapi.models.domain import utc_now
from taskapi.webhooks.models import StoredEvent, parse_time

RETENTION = timedelta(days=7)
"""Events are kept (and listed) this long."""
ID_PREFIX = "evt_"
UPPER = "~"
"""Sorts after every character of an event id: "evt_<stamp>~" is past every id of that stamp."""
QUERY_PAGE = 100
_CONDITION_FAILED = "ConditionalCheckFailedException"


def stamp_of(moment: str | datetime) -> str:
    """The 20 digits an event id of this moment begins with (after "evt_")."""
    return parse_time(moment).strftime("%Y%m%d%H%M%S%f")


def expiry_of(created_at: str) -> int:
    return int((parse_time(created_at) + RETENTION).timestamp())


class EventStore(Protocol):
    def put_if_absent(self, event: StoredEvent) -> bool:
        """Store the event unless its id is stored already (a replayed stream batch); True when
        this call stored it. The flags are stored as the event carries them."""
        ...

    def get(self, account_id: str, event_id: str) -> StoredEvent | None: ...

    def after(self, account_id: str, cursor: str | None, limit: int) -> list[StoredEvent]:
        """Up to `limit` of the account's events of the last 7 days, oldest first, with
        event_id > cursor (from the first when None)."""
        ...

    def between(self, account_id: str, since: str, until: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events created from `since` to `until` (ISO times, both included) and
        within the last 7 days, oldest first."""
        ...

    def mark(
        self, account_id: str, event_id: str, *, fanned_out: bool | None = None, bus_sent: bool | None = None
    ) -> None:
        """Set the flags given (None leaves one alone); an event no longer stored is left absent."""
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
def _s(value: str) -> dict[str, str]:
    return {"S": value}


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

    def put_if_absent(self, event: StoredEvent) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=event_to_item(event),
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise _store_error(exc) from exc
        return True

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

    def mark(
        self, account_id: str, event_id: str, *, fanned_out: bool | None = None, bus_sent: bool | None = None
    ) -> None:
        flags = {
            name: value for name, value in (("fanned_out", fanned_out), ("bus_sent", bus_sent)) if value is not None
        }
        if not flags:
            return
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"account_id": _s(account_id), "event_id": _s(event_id)},
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in flags),
                ConditionExpression="attribute_exists(event_id)",
                ExpressionAttributeNames={f"#{name}": name for name in flags},
                ExpressionAttributeValues={f":{name}": {"BOOL": value} for name, value in flags.items()},
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return  # expired (TTL) meanwhile: nothing to mark, and never a stub item
            raise _store_error(exc) from exc


# ---------------------------------------------------------------------- in memory
class MemoryEventStore:
    """The same contract in a dict; `fail_mark` makes mark() raise (a crash after the put)."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.events: dict[tuple[str, str], StoredEvent] = {}
        self.fail_mark: Exception | None = None
        self._clock = clock
        self._lock = threading.Lock()

    def put_if_absent(self, event: StoredEvent) -> bool:
        with self._lock:
            key = (event.account_id, event.event_id)
            if key in self.events:
                return False
            self.events[key] = event
            return True

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        with self._lock:
            return self.events.get((account_id, event_id))

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

    def mark(
        self, account_id: str, event_id: str, *, fanned_out: bool | None = None, bus_sent: bool | None = None
    ) -> None:
        if self.fail_mark is not None:
            raise self.fail_mark
        with self._lock:
            current = self.events.get((account_id, event_id))
            if current is None:
                return
            update: dict[str, bool] = {}
            if fanned_out is not None:
                update["fanned_out"] = fanned_out
            if bus_sent is not None:
                update["bus_sent"] = bus_sent
            self.events[(account_id, event_id)] = current.model_copy(update=update)
