"""Corrections of moto for the local stack's moto server: one that concurrent processing needs (1)
and corrections of its speed (2-6). Written for one moto version (MOTO_VERSION, the one
pyproject.toml pins); apply() refuses any other.

1. Isolation of DynamoDB requests. moto serves every request on its own thread without locks, and
   its TransactWriteItems makes a snapshot of each table it touches, applies the items one by one
   and, when any condition fails, puts the snapshot back — dropping every write other threads
   made meanwhile (a worker's claim, progress or completion). DynamoDB itself isolates
   transactions from other writes, so DynamoDBIsolation serves DynamoDB requests one at a time,
   and DynamoDB Streams requests with them (a stream is never read halfway through a transaction).
   Other services (SQS long polls, S3) stay concurrent. It wraps the server's WSGI app and changes
   nothing in moto, so every moto server of ours has it, a test's on a thread included.
2. Transactions roll back the items they touch, not a copy of the table. moto 5.2 deep-copies
   the whole table once per *item* of a TransactWriteItems call (100 full copies of a growing
   table for a bulk create of 100) to put the copy back if the call fails. Here the items the
   call names (at most 100) are copied first and put back as they were if it fails, whatever the
   failure; the table is not copied. The records the call added to a table's stream are taken
   back too (moto writes them item by item, before it knows whether the call succeeds: a failed
   insert would otherwise leave INSERT records of items that never existed). Should an item's key
   not be readable beforehand, the call falls back to one copy of each table it touches (not one
   per item).
3. SQS without a scan per message sent. moto 5.2's SendMessage builds every attribute of the queue
   to read one (ContentBasedDeduplication), and three of them count the waiting messages, so
   sending to a queue holding n messages costs O(n) and filling it O(n^2): 5,000 queued tasks
   took minutes of scanning. While a message is sent, the queue answers that one attribute alone.
   ReceiveMessage does the same for each message it returns (it builds all the queue's attributes
   three times to read MessageRetentionPeriod): the retention check reads that attribute alone.
   A message's visible/delayed checks read the clock as time.time() (the same milliseconds since
   the epoch that moto computes through two datetime conversions, ten times slower), since every
   ReceiveMessage checks every message in the queue.
4. moto finds the service of each request by listing its own package directory (a listdir and
   ~150 isdir calls per request); the listing is made once.
5. DynamoDB Streams keeps the newest shard iterators only. moto keeps every iterator it hands out
   (GetShardIterator and each GetRecords make one) for good; the local stack's stream poller asks
   for a few a second. The newest SHARD_ITERATORS_KEPT are kept (DynamoDB's expire after 15 min).
6. DynamoDB Streams' GetRecords without moto's generic serializer. moto 5.2 walks the service
   model for every attribute of every image (a GetRecords of 500 task records: about half a
   second of the server's time, with every DynamoDB request waiting behind it, see 1). The
   records moto keeps are already DynamoDB JSON, so the answer is their json.dumps, with
   ApproximateCreationDateTime in epoch seconds and binary values in base64, as the serializer
   writes them.

2-6 replace moto's own functions, for the whole process and for good: apply() is called only by a
process that exists to serve moto (`python -m infra.moto_server`, the local stack's child), never
on import and never in a test's process, whose moto (mock_aws) stays moto's own. None changes an
answer moto gives; an external endpoint (AWS_ENDPOINT_URL) gets none of them."""

from __future__ import annotations

import base64
import calendar
import copy
import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib import metadata
from types import SimpleNamespace
from typing import Any

MOTO_VERSION = "5.2.5"
"""The moto these corrections were written for, and checked against (pyproject.toml pins it)."""

CORRECTIONS = (
    "DynamoDB requests one at a time (DynamoDBIsolation)",
    "failed transactions undo their own items (DynamoDBBackend.transact_write_items, the models' copy)",
    "SQS without a scan per message (SQSBackend.send_message and"
    " .is_message_valid_based_on_retention_period, Queue.attributes, Message.visible and .delayed)",
    "the service listing made once (moto.backends.list_of_moto_modules)",
    "DynamoDB Streams keeps the newest shard iterators (DynamoDBStreamsBackend.__init__)",
    "GetRecords answered without the generic serializer (DynamoDBStreamsHandler.get_records)",
)

_DYNAMODB_TARGET_PREFIXES = ("DynamoDB_", "DynamoDBStreams_")
SHARD_ITERATORS_KEPT = 10_000
_MARK = "_taskapi_local"
_snapshots = threading.local()
_sending = threading.local()


class MotoCorrectionError(RuntimeError):
    """The installed moto is not the one the corrections were written for."""


def installed_moto_version() -> str:
    return metadata.version("moto")


def check_moto_version() -> None:
    installed = installed_moto_version()
    if installed != MOTO_VERSION:
        raise MotoCorrectionError(
            f"moto corrections were written for moto {MOTO_VERSION}; installed {installed}: re-check each"
            f" correction in infra/moto_corrections.py ({'; '.join(CORRECTIONS)}) against the new moto and"
            " update MOTO_VERSION"
        )


def apply() -> None:
    """Corrections 2-5 on this process's moto, for good (see the module's docstring: only in a
    process that serves moto). Idempotent. Raises MotoCorrectionError, before changing anything,
    when the installed moto is another version; and when something a correction replaces is
    missing."""
    check_moto_version()
    _patch_transaction_snapshots()
    _patch_sqs_scans()
    _patch_module_listing()
    _patch_shard_iterators()
    _patch_stream_records()


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise MotoCorrectionError(f"moto {installed_moto_version()} has no {what}: re-check infra/moto_corrections.py")


def _marked(function: Any) -> bool:
    return bool(getattr(function, _MARK, False))


def _mark(function: Any) -> None:
    setattr(function, _MARK, True)


class DynamoDBIsolation:
    """WSGI middleware: DynamoDB and DynamoDB Streams requests (X-Amz-Target DynamoDB_*,
    DynamoDBStreams_*) one at a time (correction 1)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET_PREFIXES):
            return self._app(environ, start_response)
        with self._lock:
            # The body is produced while the lock is held: moto computes it in the call anyway.
            return list(self._app(environ, start_response))


_LIVE = "live"
"""_snapshots.copies when the transaction keeps its own undo log: a table "copy" is the table."""


def _deepcopy_once_per_transaction(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """copy.deepcopy, except for a table inside a TransactWriteItems call: with an undo log the
    table itself (nothing to copy), otherwise the call's first copy of it (the table cannot
    change in between: see DynamoDBIsolation)."""
    from moto.dynamodb.models.table import Table

    copies: dict[int, Any] | str | None = getattr(_snapshots, "copies", None)
    if copies is None or not isinstance(value, Table):
        return copy.deepcopy(value, memo)
    if copies == _LIVE:
        return value
    assert isinstance(copies, dict)
    if id(value) not in copies:
        copies[id(value)] = copy.deepcopy(value, memo)
    return copies[id(value)]


UndoEntry = tuple[Any, Any, Any, Any]
"""(table, hash value, range value or None, a copy of the item before the call or None)."""


def _undo_log(backend: Any, transact_items: list[dict[str, Any]]) -> list[UndoEntry] | None:
    """A copy of every item the transaction names, as it is before the call (None for absent
    ones); None when some operation's table or key cannot be read (moto then refuses the call)."""
    entries: list[UndoEntry] = []
    try:
        for transact_item in transact_items:
            ((op_type, op),) = transact_item.items()
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            hash_value, range_value = backend.get_keys_value(table, key)
            current = table.get_item(hash_value, range_value)
            entries.append((table, hash_value, range_value, copy.deepcopy(current)))
    except Exception:  # any malformed operation: moto refuses it, its snapshots undo the rest
        return None
    return entries


def _undo(entries: list[UndoEntry]) -> None:
    """Every named item back as it was (newest first: a key named twice ends as it began)."""
    for table, hash_value, range_value, before in reversed(entries):
        if range_value is None:
            if before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before
        elif before is None:
            table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = before


def _stream_lengths(entries: list[UndoEntry]) -> list[tuple[Any, int]]:
    """(stream shard, records it holds) of every table the entries name that has a stream."""
    shards = {id(table): table.stream_shard for table, *_ in entries if getattr(table, "stream_shard", None)}
    return [(shard, len(shard.items)) for shard in shards.values()]


def _patch_transaction_snapshots() -> None:
    """Correction 2."""
    import moto.dynamodb.models as dynamodb_models

    backend = dynamodb_models.DynamoDBBackend
    original = getattr(backend, "transact_write_items", None)
    if _marked(original):
        return
    _require(callable(original), "DynamoDBBackend.transact_write_items")
    _require(callable(getattr(backend, "get_table", None)), "DynamoDBBackend.get_table")
    _require(callable(getattr(backend, "get_keys_value", None)), "DynamoDBBackend.get_keys_value")
    # moto snapshots the tables with its models' module-level `copy.deepcopy`: that is replaced.
    _require(getattr(dynamodb_models, "copy", None) is copy, "`copy` module in moto.dynamodb.models")
    assert original is not None

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        entries = _undo_log(self, transact_items)
        streams = _stream_lengths(entries or [])
        _snapshots.copies = {} if entries is None else _LIVE
        try:
            original(self, transact_items)
        except BaseException:
            if entries is not None:
                _undo(entries)
                for shard, length in streams:
                    del shard.items[length:]  # the records of writes that did not happen
            raise
        finally:
            del _snapshots.copies

    _mark(transact_write_items)
    dynamodb_models.copy = SimpleNamespace(deepcopy=_deepcopy_once_per_transaction, copy=copy.copy)  # type: ignore[assignment]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _content_based_deduplication_only(queue: Any) -> dict[str, Any]:
    """What moto's Queue.attributes answers for ContentBasedDeduplication, without the rest."""
    if not queue.fifo_queue:
        return {}
    value = queue.content_based_deduplication
    return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}


def _is_property(owner: type, name: str) -> bool:
    value = owner.__dict__.get(name)
    return isinstance(value, property) and value.fget is not None


def _patch_sqs_scans() -> None:
    """Correction 3."""
    from moto.sqs.models import Message, Queue, SQSBackend

    original_send = getattr(SQSBackend, "send_message", None)
    if _marked(original_send):
        return
    _require(callable(original_send), "SQSBackend.send_message")
    _require(
        callable(getattr(SQSBackend, "is_message_valid_based_on_retention_period", None)),
        "SQSBackend.is_message_valid_based_on_retention_period",
    )
    _require(_is_property(Queue, "attributes"), "Queue.attributes property")
    _require(_is_property(Message, "visible"), "Message.visible property")
    _require(_is_property(Message, "delayed"), "Message.delayed property")
    assert original_send is not None
    all_attributes = Queue.__dict__["attributes"].fget
    assert all_attributes is not None

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_sending, "active", False):
            return _content_based_deduplication_only(self)
        return all_attributes(self)  # type: ignore[no-any-return]

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = False

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > time.time())

    def visible(self: Any) -> bool:
        return time.time() * 1000.0 > self.visible_at  # type: ignore[no-any-return]

    def delayed(self: Any) -> bool:
        return time.time() * 1000.0 < self.delayed_until  # type: ignore[no-any-return]

    _mark(send_message)
    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    Message.visible = property(visible)  # type: ignore[method-assign,assignment]
    Message.delayed = property(delayed)  # type: ignore[method-assign,assignment]


def _patch_module_listing() -> None:
    """Correction 4."""
    from moto import backends

    listing = getattr(backends, "list_of_moto_modules", None)
    if _marked(listing):
        return
    _require(callable(listing), "moto.backends.list_of_moto_modules")
    assert listing is not None
    modules = tuple(listing())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    _mark(list_of_moto_modules)
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


class _NewestShardIterators(dict[str, Any]):
    """A dict of shard iterators that forgets the oldest beyond SHARD_ITERATORS_KEPT."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > SHARD_ITERATORS_KEPT:
            del self[next(iter(self))]


def _patch_shard_iterators() -> None:
    """Correction 5."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original_init = DynamoDBStreamsBackend.__init__
    if _marked(original_init):
        return

    def __init__(self: Any, region_name: str, account_id: str) -> None:  # noqa: N807 - replaces moto's __init__
        original_init(self, region_name, account_id)
        _require(isinstance(getattr(self, "shard_iterators", None), dict), "DynamoDBStreamsBackend.shard_iterators")
        self.shard_iterators = _NewestShardIterators(self.shard_iterators)

    _mark(__init__)
    DynamoDBStreamsBackend.__init__ = __init__  # type: ignore[method-assign]


def _stream_wire_value(value: Any) -> Any:
    """What moto's JSON serializer writes for the values json cannot: a timestamp as epoch seconds
    (milliseconds kept), a binary value in base64."""
    if isinstance(value, datetime):
        seconds = calendar.timegm(value.timetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"{type(value).__name__} is not part of a stream record")


def _patch_stream_records() -> None:
    """Correction 6."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    original = DynamoDBStreamsHandler.get_records
    if _marked(original):
        return

    def get_records(self: Any) -> str:
        limit = self._get_param("Limit")
        result = self.backend.get_records(self._get_param("ShardIterator"), 1000 if limit is None else limit)
        return json.dumps(result, default=_stream_wire_value)

    _mark(get_records)
    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign,assignment]
