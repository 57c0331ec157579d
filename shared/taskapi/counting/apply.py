"""The stream consumer's side of the counters: the records of a batch of the tasks table's stream
added to the counters, idempotent under redelivery (a retried batch never counts twice).

Records are applied in order, in chunks of consecutive records that touch at most CHUNK_KEYS
counters. A chunk commits in one TransactWriteItems: a marker `M#<eventID of its first record>`
holding how many records it applied (put only if absent), and one ADD per counter it moves
(+ rev 1, changed_at). Before a chunk the marker at its first record is read: present, its records
were counted by an earlier delivery and are skipped, and the next chunk starts after them. Lambda
retries a failed batch from the same first record (BisectBatchOnFunctionError off, one batch per
shard at a time), possibly with more records behind; chunk boundaries depend only on the records,
so a retry meets the markers its predecessor wrote. A chunk that moves no counter (progress
writes) writes its marker alone (one PutItem): every chunk a delivery got through is marked, so
the markers chain from a batch's first record to its end and on into the batches after it, and
even a replay that starts at an earlier batch's first record and runs past it counts nothing twice.
A replay starting anywhere else (a new event source mapping reading from TRIM_HORIZON) is not
recognised: the periodic recount repairs what it adds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from taskapi.aws_errors import AWS_ERRORS, cancellation_reasons, error_code
from taskapi.counting.contributions import CHANGED_AT, REV, Counts, Image, add_into, delta, marker_key
from taskapi.models.domain import isoformat

CHUNK_KEYS = 98
"""Counters one chunk may move: with its marker, 99 items of TransactWriteItems' 100."""
MARKER_TTL_SECONDS = 2 * 24 * 3600
"""Markers outlive the stream's 24 h retention, so any redelivery still finds them."""
TRANSACTION_ATTEMPTS = 4


class StreamShapeError(ValueError):
    """A record without the images its event needs: the stream is not NEW_AND_OLD_IMAGES."""


@dataclass(frozen=True)
class Change:
    """One stream record, as much of it as counting needs."""

    event_id: str
    old_image: Image | None
    new_image: Image | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Change:
        """From a record of Lambda's DynamoDB stream event (or GetRecords' answer)."""
        event_id = record.get("eventID")
        if not isinstance(event_id, str) or not event_id:
            raise StreamShapeError("a stream record without eventID")
        stream = record.get("dynamodb") or {}
        name = record.get("eventName")
        old, new = stream.get("OldImage"), stream.get("NewImage")
        if (name in ("MODIFY", "REMOVE") and old is None) or (name in ("INSERT", "MODIFY") and new is None):
            raise StreamShapeError(
                f"a {name} record without its images: the stream must be NEW_AND_OLD_IMAGES (record {event_id})"
            )
        return cls(event_id=event_id, old_image=old, new_image=new)

    @property
    def delta(self) -> Counts:
        return delta(self.old_image, self.new_image)


@dataclass
class ApplyReport:
    records: int = 0
    """Records of the batch."""
    skipped: int = 0
    """Records an earlier delivery had counted already (found by their chunk's marker)."""
    chunks: int = 0
    """Chunks committed (a transaction each, or a PutItem of the marker alone when it moved nothing)."""
    counter_updates: int = 0
    """Counter items updated, summed over the chunks."""

    def as_dict(self) -> dict[str, int]:
        return {
            "records": self.records,
            "skipped": self.skipped,
            "chunks": self.chunks,
            "counter_updates": self.counter_updates,
        }


def chunk_end(deltas: Sequence[Counts], start: int, max_keys: int = CHUNK_KEYS) -> int:
    """The end (exclusive) of the chunk beginning at `start`: as many consecutive records as touch
    at most max_keys counters (at least one record)."""
    keys: set[str] = set()
    end = start
    while end < len(deltas):
        touched = keys | set(deltas[end])
        if len(touched) > max_keys and end > start:
            break
        keys = touched
        end += 1
    return end


def merged(deltas: Iterable[Counts]) -> Counts:
    total: Counts = {}
    for change in deltas:
        add_into(total, change)
    return total


class DynamoCounterWriter:
    """Applies stream records to the counters table."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_keys: int = CHUNK_KEYS,
    ) -> None:
        if not 1 <= max_keys <= CHUNK_KEYS:
            raise ValueError(f"a chunk moves 1 to {CHUNK_KEYS} counters, not {max_keys}")
        self._client = client
        self._table = table_name
        self._max_keys = max_keys
        self._clock = clock
        self._sleep = sleep

    @property
    def table_name(self) -> str:
        return self._table

    def apply(self, changes: Sequence[Change]) -> ApplyReport:
        """Count every record not counted yet, in order; raises when a chunk cannot be written (the
        batch is then delivered again, and what was written is found by its markers)."""
        report = ApplyReport(records=len(changes))
        deltas = [change.delta for change in changes]
        start, contested = 0, -1
        while start < len(changes):
            done = self._applied_at(changes[start].event_id)
            if done:
                skipped = min(done, len(changes) - start)
                report.skipped += skipped
                start += skipped
                continue
            end = chunk_end(deltas, start, self._max_keys)
            total = merged(deltas[start:end])
            if not self._commit(changes[start].event_id, end - start, total):
                if contested == start:
                    raise RuntimeError(f"the marker of record {changes[start].event_id} exists but cannot be read")
                contested = start
                continue  # another delivery committed this chunk meanwhile: read its marker again
            report.chunks += 1
            report.counter_updates += len(total)
            start = end
        return report

    # ------------------------------------------------------------------ DynamoDB
    def _applied_at(self, event_id: str) -> int:
        """Records the chunk starting at this record applied (its marker), 0 if none did."""
        answer = self._client.get_item(
            TableName=self._table,
            Key={"counter_key": {"S": marker_key(event_id)}},
            ConsistentRead=True,
            ProjectionExpression="applied",
        )
        item = answer.get("Item")
        return int(item["applied"]["N"]) if item and "applied" in item else 0

    def _commit(self, first_event_id: str, applied: int, total: Counts) -> bool:
        """One transaction: the marker (if absent) and every counter's ADDs; the marker alone
        (PutItem) when the chunk moves nothing. False when the marker exists already (the chunk was
        committed by another delivery); raises on other failures after a few attempts."""
        now = self._clock()
        marker: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "counter_key": {"S": marker_key(first_event_id)},
                "applied": {"N": str(applied)},
                "expires_at": {"N": str(int(now) + MARKER_TTL_SECONDS)},
            },
            "ConditionExpression": "attribute_not_exists(counter_key)",
        }
        if not total:
            try:
                self._client.put_item(**marker)
            except AWS_ERRORS as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
            return True
        items: list[dict[str, Any]] = [{"Put": marker}]
        changed_at = isoformat(datetime.fromtimestamp(now, UTC))
        for key, attributes in sorted(total.items()):
            names = {"#rev": REV, "#changed": CHANGED_AT}
            values: dict[str, Any] = {":one": {"N": "1"}, ":now": {"S": changed_at}}
            adds = ["#rev :one"]
            for number, (attribute, amount) in enumerate(sorted(attributes.items())):
                names[f"#a{number}"] = attribute
                values[f":a{number}"] = {"N": str(amount)}
                adds.append(f"#a{number} :a{number}")
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"counter_key": {"S": key}},
                        "UpdateExpression": f"ADD {', '.join(adds)} SET #changed = :now",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return True
            except AWS_ERRORS as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = cancellation_reasons(exc)
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return False
                if attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                self._sleep(0.05 * 2**attempt)  # a conflict with another write of a counter: again
        raise AssertionError("unreachable")  # pragma: no cover
