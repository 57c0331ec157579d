"""The counters table's reading side: Counts, the CounterStore protocol and its DynamoDB adapter
(reads, and the recount's scan and repair; the stream consumer writes through counting.apply).

Counter items (key `counter_key`; every count is a number, absent = 0):
  A#<account_id>              the six statuses, QUEUED#<priority>, PROCESSING#<priority>, HELD
  G#<account_id>#<group_id>   the six statuses
  S#<account_id>#<source_id>  the six statuses
each with `rev` (ADD 1 on every consumer update) and `changed_at` (ISO time of the last one).
  M#<eventID>                 the consumer's chunk markers
  R#cursor                    where the recount's Scan goes on (`after`: a counter_key)
Account ids never contain "#" (ACCOUNT_ID_PATTERN), so a key splits at its second "#"."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, AwsError, error_code, translate
from taskapi.counting.contributions import (
    ACCOUNT_PREFIX,
    GROUP_PREFIX,
    HELD,
    SOURCE_PREFIX,
    STATUSES,
    priority_attribute,
)
from taskapi.errors import Retryable, TaskApiError
from taskapi.models.domain import Priority, TaskStatus, isoformat, utc_now

CURSOR_KEY = "R#cursor"
BY_PRIORITY_STATUSES = (TaskStatus.QUEUED, TaskStatus.PROCESSING)
"""The statuses the account counter also counts per priority."""
BATCH_GET_SIZE = 100
SCAN_PAGE = 100
"""Items a recount Scan call evaluates (the counters table's items are small: a page is cheap)."""


def account_attributes() -> tuple[str, ...]:
    """Every count an account counter holds."""
    by_priority = [priority_attribute(status, priority) for status in BY_PRIORITY_STATUSES for priority in Priority]
    return (*STATUSES, *by_priority, HELD)


@dataclass(frozen=True)
class CounterKey:
    """A parsed counter key: kind "A" (account), "G" (group) or "S" (source); `value` is the group
    or source id (None for an account counter)."""

    kind: str
    account_id: str
    value: str | None = None

    @property
    def attributes(self) -> tuple[str, ...]:
        return account_attributes() if self.kind == "A" else STATUSES

    @classmethod
    def parse(cls, key: str) -> CounterKey | None:
        """None for keys that are not counters (markers, the cursor) or are malformed."""
        kind, _, rest = key.partition("#")
        if kind == "A" and rest:
            return cls("A", rest)
        if kind in ("G", "S"):
            account_id, separator, value = rest.partition("#")
            if account_id and separator:
                return cls(kind, account_id, value)
        return None


@dataclass(frozen=True)
class Counts(Mapping[str, int]):
    """The counts of one counter item: attribute -> count, absent attributes (and absent items)
    meaning 0. `rev` and `changed_at` say when the consumer last changed it."""

    amounts: Mapping[str, int] = field(default_factory=dict)
    rev: int = 0
    changed_at: str | None = None

    def __getitem__(self, attribute: str) -> int:
        return self.amounts[attribute]

    def __iter__(self) -> Iterator[str]:
        return iter(self.amounts)

    def __len__(self) -> int:
        return len(self.amounts)

    def of(self, attribute: str) -> int:
        """The count of one attribute, 0 when absent."""
        return self.amounts.get(attribute, 0)

    def total(self, attributes: Iterable[str]) -> int:
        """The sum of the named attributes (each once)."""
        return sum(self.of(attribute) for attribute in dict.fromkeys(attributes))

    def statuses(self, statuses: Iterable[TaskStatus | str] = ()) -> int:
        """Tasks in any of the statuses; every task when none is named."""
        names = [TaskStatus(status).value for status in statuses] or list(STATUSES)
        return self.total(names)


@dataclass(frozen=True)
class CounterRecord:
    """One counter item as read: its key and its counts (with rev and changed_at)."""

    key: str
    counts: Counts


class CounterStore(Protocol):
    def get(self, keys: Iterable[str]) -> dict[str, Counts]:
        """The counts of every key asked for (an absent item answers empty Counts). May lag the
        tasks table by seconds (the stream) and by an eventually consistent read."""
        ...

    def quiescent(self, *, changed_before: str, want: int) -> list[CounterRecord]:
        """Up to `want` counters (A#, G#, S#) last changed before `changed_before`, going on from
        where the previous call stopped (a persisted cursor) and around again at the end. Work per
        call is bounded whatever the table's size."""
        ...

    def repair(self, key: str, counts: Mapping[str, int], *, rev: int) -> bool:
        """Set the counter's attributes to `counts` if its rev is still `rev`; False when the
        consumer changed it meanwhile (nothing written)."""
        ...


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def item_to_counts(item: Mapping[str, Any]) -> Counts:
    values: dict[str, int] = {}
    rev = 0
    changed_at = None
    for name, value in item.items():
        if name == "rev":
            rev = int(value["N"])
        elif name == "changed_at":
            changed_at = value.get("S")
        elif name not in ("counter_key", "expires_at") and "N" in value:
            values[name] = int(value["N"])
    return Counts(values, rev=rev, changed_at=changed_at)


def _domain_error(exc: AwsError) -> TaskApiError:
    return translate(exc, service="DynamoDB", conflict="The counter changed while it was being repaired")


class DynamoCounterStore:
    """Reads counters with GetItem (one key) or BatchGetItem (more), eventually consistent: half a
    read unit per counter item, whatever the account's size."""

    def __init__(self, client: Any, table_name: str, *, scan_items: int = 3 * SCAN_PAGE) -> None:
        self._client = client
        self._table = table_name
        self._scan_items = scan_items
        """Items a quiescent() call evaluates at most (its bound on the Scan's work)."""

    # ------------------------------------------------------------------ reads
    def get(self, keys: Iterable[str]) -> dict[str, Counts]:
        wanted = list(dict.fromkeys(keys))
        found = {key: Counts() for key in wanted}
        if len(wanted) == 1:
            (key,) = wanted
            try:
                answer = self._client.get_item(TableName=self._table, Key={"counter_key": {"S": key}})
            except AWS_ERRORS as exc:
                raise _domain_error(exc) from exc
            if "Item" in answer:
                found[key] = item_to_counts(answer["Item"])
            return found
        for start in range(0, len(wanted), BATCH_GET_SIZE):
            chunk = wanted[start : start + BATCH_GET_SIZE]
            batch: list[dict[str, Any]] = [{"counter_key": {"S": key}} for key in chunk]
            attempt = 0
            while batch:
                try:
                    answer = self._client.batch_get_item(RequestItems={self._table: {"Keys": batch}})
                except AWS_ERRORS as exc:
                    raise _domain_error(exc) from exc
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item["counter_key"]["S"]] = item_to_counts(item)
                batch = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if batch:
                    attempt += 1
                    if attempt > 5:
                        raise Retryable("DynamoDB left counter keys unprocessed; retry the request")
                    time.sleep(0.05 * 2**attempt)
        return found

    # ------------------------------------------------------------------ recount
    def quiescent(self, *, changed_before: str, want: int) -> list[CounterRecord]:
        """A Scan from the cursor: at most `scan_items` items evaluated (markers and busy counters
        are read but not answered), then the cursor is saved where the answer stopped."""
        if want <= 0:
            return []
        start = self._cursor()
        found: list[CounterRecord] = []
        scanned = 0
        position: str | None = start
        while True:
            args: dict[str, Any] = {
                "TableName": self._table,
                "Limit": max(1, min(SCAN_PAGE, self._scan_items - scanned)),
                "FilterExpression": "changed_at < :before AND "
                "(begins_with(counter_key, :a) OR begins_with(counter_key, :g) OR begins_with(counter_key, :s))",
                "ExpressionAttributeValues": {
                    ":before": {"S": changed_before},
                    ":a": {"S": ACCOUNT_PREFIX},
                    ":g": {"S": GROUP_PREFIX},
                    ":s": {"S": SOURCE_PREFIX},
                },
            }
            if position is not None:
                args["ExclusiveStartKey"] = {"counter_key": {"S": position}}
            try:
                answer = self._client.scan(**args)
            except AWS_ERRORS as exc:
                raise _domain_error(exc) from exc
            scanned += answer.get("ScannedCount", 0) or args["Limit"]
            for item in answer.get("Items", []):
                found.append(CounterRecord(item["counter_key"]["S"], item_to_counts(item)))
                if len(found) == want:
                    self._save_cursor(found[-1].key)
                    return found
            last = answer.get("LastEvaluatedKey")
            position = None if last is None else last["counter_key"]["S"]
            if position is None or scanned >= self._scan_items:
                self._save_cursor(position)  # None: the end of the table, around again next time
                return found

    def repair(self, key: str, counts: Mapping[str, int], *, rev: int) -> bool:
        names: dict[str, str] = {"#rev": "rev"}
        values: dict[str, Any] = {":rev": _n(rev), ":one": _n(1)}
        assignments = []
        for index, (attribute, count) in enumerate(sorted(counts.items())):
            names[f"#a{index}"] = attribute
            values[f":a{index}"] = _n(count)
            assignments.append(f"#a{index} = :a{index}")
        names["#repaired"] = "repaired_at"
        values[":now"] = {"S": isoformat(utc_now())}
        assignments.append("#repaired = :now")
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"counter_key": {"S": key}},
                UpdateExpression=f"SET {', '.join(assignments)} ADD #rev :one",
                ConditionExpression="#rev = :rev",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _domain_error(exc) from exc
        return True

    def _cursor(self) -> str | None:
        try:
            answer = self._client.get_item(
                TableName=self._table, Key={"counter_key": {"S": CURSOR_KEY}}, ConsistentRead=True
            )
        except AWS_ERRORS as exc:
            raise _domain_error(exc) from exc
        after = answer.get("Item", {}).get("after")
        return None if after is None else after["S"]

    def _save_cursor(self, after: str | None) -> None:
        item: dict[str, Any] = {"counter_key": {"S": CURSOR_KEY}}
        if after is not None:
            item["after"] = {"S": after}
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except AWS_ERRORS as exc:
            raise _domain_error(exc) from exc
