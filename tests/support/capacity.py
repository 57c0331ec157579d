"""A DynamoDB capacity meter for any boto3 DynamoDB client (moto included): the write and read
units each call would consume on DynamoDB, computed from the item images, per DynamoDB's
published rules, because moto does not meter capacity.

    meter = CapacityMeter(client)
    with meter.measuring() as used:
        ...                                   # calls through `client`
    used.write_units(), used.read_units(target="by_status"), used.breakdown()

How it measures (botocore events of the metered client; a second, unmetered client reads):
  * before-parameter-build keeps the call's parameters; before-call reads the image of every item
    a write will touch (GetItem/BatchGetItem, ConsistentRead) and after-call the image after it.
  * Item size: the sum over attributes of the UTF-8 length of the name plus the value's size
    (S: UTF-8 bytes; N: 1 byte per 2 significant digits + 1; B: bytes; BOOL/NULL: 1; sets: the sum
    of their members; L/M: 3 + 1 per element + the elements (+ the keys' UTF-8 length in a M)).
  * Writes (1 unit per 1 KB, rounded up per item): the base table costs ceil(max(before, after))
    for Put/Update/Delete (at least 1, deleting an absent item too). A failed conditional write
    costs the base table's units all the same (max(stored item, Put's item)) and no index write.
    Each index (GSI or LSI) has an entry when every one of its key attributes is present; the entry
    is the table key + the index key + the projection (ALL: the whole item; KEYS_ONLY: keys;
    INCLUDE: keys + NonKeyAttributes). Entry only before: a delete; only after: a put; both with
    the same index key: one write of ceil(max(before, after)) if anything in the entry changed,
    else nothing; index key changed: a delete and a put. TransactWriteItems doubles every unit.
  * Reads (1 unit per 4 KB, eventually consistent: half): GetItem ceil(size / 4 KB), an absent
    item costing the minimum; BatchGetItem the same per key; TransactGetItems doubled; Query and
    Scan the sum of the sizes of every item *evaluated* (ScannedCount, before any filter), rounded
    up to 4 KB per call (at least one 4 KB unit, even for nothing). When the answer does not hold
    those items exactly (a FilterExpression, Select=COUNT, a projection), the meter reads them again
    with the unmetered client: the same key condition, start key and Limit=ScannedCount, without
    the filter and the projection (or, with `sample=n`, estimates the call's size as ScannedCount
    times the mean size of the first n items of the query's first page). A GSI Query is eventually
    consistent; its items are the index entries (their projected size).

Approximations, said once: the 100-byte per-entry overhead DynamoDB adds to an index's *storage*
is not counted in its write units; a cancelled TransactWriteItems is charged as a failed
conditional write of each of its items (doubled); a ConditionCheck in a transaction is charged as
a write of the checked item's size (doubled). Images are read around each call: two writers of
the same item at the same moment may each see the other's image (sequential use is exact).
"""

from __future__ import annotations

import base64
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Item = Mapping[str, Mapping[str, Any]]
"""An item in DynamoDB's attribute-value form: {"name": {"S": "value"}, ...}."""

TABLE = "table"
"""The target name of a base table's units (the others are index names)."""
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"})
_CAPTURE = "capacity_meter"


# ---------------------------------------------------------------------------------------- sizes
def number_size(text: str) -> int:
    """A number's size: 1 byte per two significant digits (leading and trailing zeros trimmed)
    plus 1 byte."""
    mantissa = re.split("[eE]", text.strip())[0].lstrip("+-").replace(".", "")
    digits = len(mantissa.strip("0"))
    return math.ceil(digits / 2) + 1


def _binary_size(value: Any) -> int:
    if isinstance(value, str):  # the wire form: base64
        return len(base64.b64decode(value))
    if hasattr(value, "read"):  # pragma: no cover - a file-like blob parameter
        raise TypeError("file-like binary values cannot be sized without reading them")
    return len(value)


def attribute_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value (without its name)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode("utf-8"))
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return _binary_size(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode("utf-8")) for member in content)
    if kind == "NS":
        return sum(number_size(member) for member in content)
    if kind == "BS":
        return sum(_binary_size(member) for member in content)
    if kind == "L":
        return 3 + sum(attribute_size(element) + 1 for element in content)
    if kind == "M":
        return 3 + sum(len(name.encode("utf-8")) + attribute_size(element) + 1 for name, element in content.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Item | None) -> int:
    """An item's size: the UTF-8 length of each attribute name plus its value's size."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def write_units_of(size: int) -> int:
    """Write units of one item write: 1 per 1 KB, rounded up, at least 1."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units_of(size: int, *, consistent: bool) -> float:
    """Read units of reading `size` bytes in one item read (GetItem, a BatchGetItem key) or one
    Query/Scan call: 1 per 4 KB rounded up, at least one 4 KB unit; eventually consistent: half."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


# --------------------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"
    """ALL, KEYS_ONLY or INCLUDE."""
    non_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSchema:
    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableSchema:
        """From DescribeTable's Table (global and local secondary indexes alike)."""
        indexes = []
        for index in [*table.get("GlobalSecondaryIndexes", []), *table.get("LocalSecondaryIndexes", [])]:
            projection = index.get("Projection", {})
            indexes.append(
                Index(
                    name=index["IndexName"],
                    keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
                    projection=projection.get("ProjectionType", "ALL"),
                    non_key=tuple(projection.get("NonKeyAttributes", [])),
                )
            )
        return cls(
            name=table["TableName"],
            keys=tuple(k["AttributeName"] for k in table["KeySchema"]),
            indexes=tuple(indexes),
        )

    def key_of(self, item: Item) -> dict[str, Any]:
        return {name: item[name] for name in self.keys}

    def entry(self, index: Index, item: Item | None) -> dict[str, Any] | None:
        """The index entry of `item`, or None when the item is absent or lacks an index key."""
        if item is None or any(name not in item for name in index.keys):
            return None
        if index.projection == "ALL":
            return dict(item)
        names = {*self.keys, *index.keys, *(index.non_key if index.projection == "INCLUDE" else ())}
        return {name: item[name] for name in names if name in item}


def write_charges(schema: TableSchema, before: Item | None, after: Item | None) -> dict[str, int]:
    """The write units of one successful item write that turned `before` into `after` (None:
    absent), for the base table (TABLE) and each index it touched (untouched ones are left out)."""
    charges = {TABLE: write_units_of(max(item_size(before), item_size(after)))}
    for index in schema.indexes:
        old, new = schema.entry(index, before), schema.entry(index, after)
        if old is None and new is None:
            continue
        if old is None:
            units = write_units_of(item_size(new))
        elif new is None:
            units = write_units_of(item_size(old))
        elif all(old[k] == new[k] for k in index.keys):
            units = 0 if old == new else write_units_of(max(item_size(old), item_size(new)))
        else:  # the index key moved: the old entry is deleted, the new one put
            units = write_units_of(item_size(old)) + write_units_of(item_size(new))
        if units:
            charges[index.name] = units
    return charges


def failed_write_units(before: Item | None, requested: Item | None = None) -> int:
    """A write refused by its condition still costs the base table: the larger of the stored item
    and the item a Put asked for (at least 1 unit); no index is written."""
    return write_units_of(max(item_size(before), item_size(requested)))


# -------------------------------------------------------------------------------------- charges
@dataclass(frozen=True)
class Charge:
    """Units one call consumed on one target (the base table, or an index) of one table."""

    operation: str
    label: str
    table: str
    target: str
    write_units: float = 0.0
    read_units: float = 0.0
    items_read: int = 0


@dataclass
class Capacity:
    """Charges with sums; `where` filters by any Charge field (operation, label, table, target)."""

    charges: list[Charge] = field(default_factory=list)

    def _select(self, where: Mapping[str, Any]) -> Iterator[Charge]:
        for charge in self.charges:
            if all(getattr(charge, name) == value for name, value in where.items()):
                yield charge

    def write_units(self, **where: Any) -> float:
        return sum(c.write_units for c in self._select(where))

    def read_units(self, **where: Any) -> float:
        return sum(c.read_units for c in self._select(where))

    def items_read(self, **where: Any) -> int:
        return sum(c.items_read for c in self._select(where))

    def by(self, field_name: str, measure: str = "write_units", **where: Any) -> dict[str, float]:
        """Sum of `measure` grouped by a Charge field, in first-seen order."""
        sums: dict[str, float] = {}
        for charge in self._select(where):
            key = getattr(charge, field_name)
            sums[key] = sums.get(key, 0) + getattr(charge, measure)
        return sums

    def breakdown(self, measure: str = "write_units") -> str:
        """One measure as "label: target n, target n; label: ...", zero charges left out."""
        grouped: dict[str, dict[str, float]] = defaultdict(dict)
        for charge in self.charges:
            value = getattr(charge, measure)
            if value:
                targets = grouped[charge.label]
                targets[charge.target] = targets.get(charge.target, 0) + value
        return "; ".join(
            f"{label}: " + ", ".join(f"{target} {value:g}" for target, value in targets.items())
            for label, targets in grouped.items()
        )


Classifier = Callable[[str, Mapping[str, Any]], str | None]
"""classify(operation, parameters) -> a label for the call's charges (None: the operation name)."""


@dataclass
class _Write:
    table: str
    key: dict[str, Any]
    action: str
    """put, update, delete or check."""
    requested: Item | None = None
    before: Item | None = None


class CapacityMeter:
    """Meters the DynamoDB calls made through `client` (see the module's docstring).

    reader: the unmetered client that reads item images and table descriptions; by default a new
    client on the same region and endpoint. classify: labels each call's charges.

    sample: None (the default) re-reads every item a filtered or Select=COUNT Query/Scan evaluated
    (exact). A number trades exactness for speed where calls evaluate thousands of items (moto
    serializes an item in ~10 ms and scans the whole table for every call): such a call's size is
    estimated as ScannedCount times the mean size of the first `sample` items of its stream (same
    key condition, from the first page), sampled once per stream until the next write (items read
    stay exact: ScannedCount)."""

    def __init__(
        self,
        client: Any,
        *,
        reader: Any = None,
        classify: Classifier | None = None,
        sample: int | None = None,
    ) -> None:
        if reader is None:
            import boto3

            reader = boto3.session.Session().client(
                "dynamodb", region_name=client.meta.region_name, endpoint_url=client.meta.endpoint_url
            )
        self._client = client
        self._reader = reader
        self.classify = classify
        self.sample = sample
        self._schemas: dict[str, TableSchema] = {}
        self._means: dict[str, float] = {}
        self._charges: list[Charge] = []
        self._lock = threading.Lock()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._keep_parameters)
        events.register_first("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def close(self) -> None:
        """Stop metering the client."""
        events = self._client.meta.events
        events.unregister("before-parameter-build.dynamodb", self._keep_parameters)
        events.unregister("before-call.dynamodb", self._before)
        events.unregister("after-call.dynamodb", self._after)

    # ------------------------------------------------------------------ totals
    def reset(self) -> None:
        with self._lock:
            self._charges.clear()

    def totals(self) -> Capacity:
        """Everything metered since the meter was made or last reset."""
        with self._lock:
            return Capacity(list(self._charges))

    @contextmanager
    def measuring(self) -> Iterator[Capacity]:
        """The charges of the calls made inside the block (filled in when it ends; nestable)."""
        measured = Capacity()
        with self._lock:
            start = len(self._charges)
        try:
            yield measured
        finally:
            with self._lock:
                measured.charges.extend(self._charges[start:])

    def schema(self, table: str) -> TableSchema:
        if table not in self._schemas:
            self._schemas[table] = TableSchema.from_description(self._reader.describe_table(TableName=table)["Table"])
        return self._schemas[table]

    # ------------------------------------------------------------------ events
    def _keep_parameters(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS or model.name in READ_OPERATIONS:
            # A reference: later before-parameter-build handlers (boto3's resource layer) edit it in place.
            context[_CAPTURE] = {"params": params}

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        captured = context.get(_CAPTURE)
        if captured is None or model.name not in WRITE_OPERATIONS:
            return
        writes = self._writes(model.name, captured["params"])
        images = self._images([(w.table, w.key) for w in writes])
        for write, image in zip(writes, images, strict=True):
            write.before = image
        captured["writes"] = writes

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        captured = context.get(_CAPTURE)
        if captured is None:
            return
        operation, params = model.name, captured["params"]
        label = (self.classify(operation, params) if self.classify else None) or operation
        failed = http_response.status_code >= 300
        if operation in WRITE_OPERATIONS:
            self._means.clear()
            if "writes" not in captured:  # the before-call handler did not run (a stubbed response)
                return
            charges = self._write_charges(operation, label, captured["writes"], parsed, failed)
        elif failed:
            return
        else:
            charges = self._read_charges(operation, label, params, parsed)
        with self._lock:
            self._charges.extend(charges)

    # ------------------------------------------------------------------ writes
    def _writes(self, operation: str, params: Mapping[str, Any]) -> list[_Write]:
        def single(action: str, request: Mapping[str, Any]) -> _Write:
            table = request["TableName"]
            if action == "put":
                return _Write(table, self.schema(table).key_of(request["Item"]), action, requested=request["Item"])
            return _Write(table, dict(request["Key"]), action)

        if operation == "PutItem":
            return [single("put", params)]
        if operation == "UpdateItem":
            return [single("update", params)]
        if operation == "DeleteItem":
            return [single("delete", params)]
        if operation == "TransactWriteItems":
            actions = {"Put": "put", "Update": "update", "Delete": "delete", "ConditionCheck": "check"}
            writes = []
            for element in params["TransactItems"]:
                ((kind, request),) = element.items()
                writes.append(single(actions[kind], request))
            return writes
        writes = []  # BatchWriteItem
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    writes.append(single("put", {"TableName": table, **request["PutRequest"]}))
                else:
                    writes.append(single("delete", {"TableName": table, **request["DeleteRequest"]}))
        return writes

    def _write_charges(
        self, operation: str, label: str, writes: list[_Write], parsed: Mapping[str, Any], failed: bool
    ) -> list[Charge]:
        factor = 2 if operation == "TransactWriteItems" else 1
        if failed:
            code = parsed.get("Error", {}).get("Code", "")
            if code not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                return []  # a refused request (validation, throttling) writes nothing
            return [
                Charge(operation, label, w.table, TABLE, write_units=factor * failed_write_units(w.before, w.requested))
                for w in writes
            ]
        unprocessed = {
            (table, _key_text(self.schema(table).key_of(_written_key(request))))
            for table, requests in (parsed.get("UnprocessedItems") or {}).items()
            for request in requests
        }
        writes = [w for w in writes if (w.table, _key_text(w.key)) not in unprocessed]
        afters = self._images([(w.table, w.key) for w in writes if w.action != "check"])
        charges = []
        for write in writes:
            after = write.before if write.action == "check" else afters.pop(0)
            if write.action == "check":
                units = {TABLE: write_units_of(item_size(write.before))}
            else:
                units = write_charges(self.schema(write.table), write.before, after)
            charges += [
                Charge(operation, label, write.table, target, write_units=factor * value)
                for target, value in units.items()
            ]
        return charges

    def _images(self, keys: list[tuple[str, dict[str, Any]]]) -> list[Item | None]:
        """The stored items at these keys (None: absent), read consistently by the reader."""
        if len(keys) == 1:
            table, key = keys[0]
            return [self._reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")]
        found: dict[tuple[str, str], Item] = {}
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            request: dict[str, Any] = {}
            for table, key in chunk:
                request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            while request:
                answer = self._reader.batch_get_item(RequestItems=request)
                for table, items in answer.get("Responses", {}).items():
                    for item in items:
                        found[(table, _key_text(self.schema(table).key_of(item)))] = item
                request = answer.get("UnprocessedKeys") or {}
        return [found.get((table, _key_text(key))) for table, key in keys]

    # ------------------------------------------------------------------ reads
    def _read_charges(
        self, operation: str, label: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> list[Charge]:
        if operation in ("Query", "Scan"):
            return [self._query_charge(operation, label, params, parsed)]
        if operation == "GetItem":
            item = self._full(params["TableName"], params["Key"], parsed.get("Item"), projected=_projected(params))
            consistent = bool(params.get("ConsistentRead"))
            return [
                Charge(
                    operation,
                    label,
                    params["TableName"],
                    TABLE,
                    read_units=read_units_of(item_size(item), consistent=consistent),
                    items_read=int(item is not None),
                )
            ]
        if operation == "TransactGetItems":
            charges = []
            for element, answer in zip(params["TransactItems"], parsed.get("Responses", []), strict=False):
                get = element["Get"]
                item = self._full(get["TableName"], get["Key"], answer.get("Item"), projected=_projected(get))
                charges.append(
                    Charge(
                        operation,
                        label,
                        get["TableName"],
                        TABLE,
                        read_units=2 * read_units_of(item_size(item), consistent=True),
                        items_read=int(item is not None),
                    )
                )
            return charges
        charges = []  # BatchGetItem: each processed key is a GetItem
        for table, request in params["RequestItems"].items():
            schema = self.schema(table)
            returned = {_key_text(schema.key_of(i)): i for i in parsed.get("Responses", {}).get(table, [])}
            unprocessed = {_key_text(k) for k in (parsed.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", [])}
            consistent = bool(request.get("ConsistentRead"))
            for key in request["Keys"]:
                text = _key_text(key)
                if text in unprocessed:
                    continue
                item = self._full(table, key, returned.get(text), projected=_projected(request))
                charges.append(
                    Charge(
                        operation,
                        label,
                        table,
                        TABLE,
                        read_units=read_units_of(item_size(item), consistent=consistent),
                        items_read=int(item is not None),
                    )
                )
        return charges

    def _full(self, table: str, key: Mapping[str, Any], item: Item | None, *, projected: bool) -> Item | None:
        """The whole stored item when the answer held only a projection of it."""
        if item is None or not projected:
            return item
        return self._reader.get_item(TableName=table, Key=dict(key), ConsistentRead=True).get("Item")

    def _query_charge(self, operation: str, label: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> Charge:
        scanned = int(parsed.get("ScannedCount", 0))
        exact = not (
            _projected(params)
            or params.get("Select") in ("COUNT", "SPECIFIC_ATTRIBUTES")
            or any(name in params for name in ("FilterExpression", "QueryFilter", "ScanFilter"))
        )
        if exact:
            sizes = sum(item_size(item) for item in parsed.get("Items", []))
        elif scanned == 0:
            sizes = 0
        elif self.sample is None or scanned <= self.sample:
            sizes = sum(item_size(item) for item in self._evaluated(operation, params, scanned))
        else:  # estimated: ScannedCount times the mean size of the stream's first `sample` items
            sizes = round(self._mean_size(operation, params) * scanned)
        index = params.get("IndexName")
        consistent = bool(params.get("ConsistentRead"))
        return Charge(
            operation,
            label,
            params["TableName"],
            index or TABLE,
            read_units=read_units_of(sizes, consistent=consistent),
            items_read=scanned,
        )

    def _mean_size(self, operation: str, params: Mapping[str, Any]) -> float:
        """The mean size of the first `sample` items of a Query/Scan stream: its key condition and
        values, whatever the page (a stream of 100 pages is sampled once). Any metered write, and
        forget_samples(), forget the means."""
        stream = repr(
            (
                operation,
                params["TableName"],
                params.get("IndexName"),
                params.get("KeyConditionExpression"),
                sorted((k, repr(v)) for k, v in (params.get("ExpressionAttributeValues") or {}).items()),
            )
        )
        if stream not in self._means:
            first = {name: value for name, value in params.items() if name != "ExclusiveStartKey"}
            sampled = self._evaluated(operation, first, self.sample or 1)
            self._means[stream] = sum(item_size(item) for item in sampled) / max(len(sampled), 1)
        return self._means[stream]

    def forget_samples(self) -> None:
        """Sample the streams again (after writes the meter did not see, through another client)."""
        self._means.clear()

    def _evaluated(self, operation: str, params: Mapping[str, Any], scanned: int) -> list[Item]:
        """The first `scanned` items a Query/Scan call evaluated: the same call again (same key
        condition and start key), without filter or projection."""
        kept = (
            "TableName",
            "IndexName",
            "KeyConditionExpression",
            "KeyConditions",
            "ExclusiveStartKey",
            "ScanIndexForward",
            "ConsistentRead",
            "Segment",
            "TotalSegments",
        )
        again: dict[str, Any] = {name: params[name] for name in kept if name in params}
        used = set(re.findall(r"[#:][A-Za-z0-9_]+", params.get("KeyConditionExpression", "")))
        names = {k: v for k, v in (params.get("ExpressionAttributeNames") or {}).items() if k in used}
        values = {k: v for k, v in (params.get("ExpressionAttributeValues") or {}).items() if k in used}
        if names:
            again["ExpressionAttributeNames"] = names
        if values:
            again["ExpressionAttributeValues"] = values
        again["Limit"] = scanned
        call = self._reader.query if operation == "Query" else self._reader.scan
        return list(call(**again).get("Items", []))


def _written_key(request: Mapping[str, Any]) -> Item:
    """The key (or the item, which holds it) of one BatchWriteItem request."""
    return request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]


def _projected(params: Mapping[str, Any]) -> bool:
    return "ProjectionExpression" in params or "AttributesToGet" in params


def _key_text(key: Mapping[str, Any]) -> str:
    return repr(sorted((name, sorted(value.items())) for name, value in key.items()))


def summed(capacities: Iterable[Capacity]) -> Capacity:
    """One Capacity holding the charges of several."""
    return Capacity([charge for capacity in capacities for charge in capacity.charges])
