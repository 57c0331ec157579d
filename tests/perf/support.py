"""What the benchmarks share: recording figures to .bench/results.json, counting AWS calls through
botocore's event hooks, and the AWS resources of template.yaml on moto."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.provision import provision
from infra.template import LocalNames, function_environment
from taskapi.models.domain import Priority

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / ".bench" / "results.json"
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass(frozen=True)
class Figure:
    """One measured figure. target is an upper bound (value <= target); None means informational."""

    name: str
    value: float
    unit: str
    target: float | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.value <= self.target

    def line(self) -> str:
        verdict = {True: "PASS", False: "MISS", None: "info"}[self.passed]
        value = f"{self.value:g}" if isinstance(self.value, int | float) else str(self.value)
        target = "" if self.target is None else f"  (target <= {self.target:g})"
        note = f"  - {self.note}" if self.note else ""
        return f"[bench] {verdict:<4} {self.name} = {value} {self.unit}{target}{note}"


@dataclass
class Recorder:
    """Prints each figure as it is measured and merges it into RESULTS (other keys are kept)."""

    path: Path = RESULTS
    figures: list[Figure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, figure: Figure) -> Figure:
        print(figure.line())
        with self._lock:
            self.figures.append(figure)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                results = json.loads(self.path.read_text())
                if not isinstance(results, dict):
                    results = {}
            except (FileNotFoundError, ValueError):
                results = {}
            results[figure.name] = {
                "value": figure.value,
                "target": figure.target,
                "unit": figure.unit,
                "passed": figure.passed,
                **({"note": figure.note} if figure.note else {}),
            }
            temporary = self.path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
            os.replace(temporary, self.path)
        return figure


@dataclass(frozen=True)
class QueryRead:
    """One DynamoDB Query answer: how many items it read (ScannedCount), and whether it was a
    Select=COUNT query (no Items in the answer) or one that returned items."""

    scanned: int
    counting: bool


@dataclass
class Measurement:
    """The calls made while one AwsCalls.measuring() block ran; frozen when the block ends."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    queries: list[QueryRead] = field(default_factory=list)

    def total(self, service: str | None = None) -> int:
        return sum(n for (s, _), n in self.calls.items() if service is None or s == service)

    def dynamodb_writes(self) -> int:
        return sum(n for (s, op), n in self.calls.items() if s == "dynamodb" and op in DYNAMODB_WRITES)

    def operation(self, service: str, operation: str) -> int:
        return self.calls[(service, operation)]

    def items_read(self, *, counting: bool) -> int:
        """Items read by the Query calls that returned items (counting=False) or by Select=COUNT ones."""
        return sum(q.scanned for q in self.queries if q.counting is counting)

    def breakdown(self) -> str:
        return ", ".join(f"{s}.{op} x{n}" for (s, op), n in sorted(self.calls.items())) or "none"


class AwsCalls:
    """Counts the API calls made through boto3 clients (botocore's before-call event) and the
    items each DynamoDB Query read (after-call), inside measuring() blocks only. Thread-safe:
    SQS batches are sent concurrently."""

    def __init__(self, *clients: Any) -> None:
        self._active: Measurement | None = None
        self._lock = threading.Lock()
        for client in clients:
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("after-call.dynamodb.Query", self._after_query)

    def _before(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            if self._active is not None:
                self._active.calls[(service, operation)] += 1

    def _after_query(self, parsed: dict[str, Any], **_: Any) -> None:
        read = QueryRead(scanned=int(parsed.get("ScannedCount", 0)), counting="Items" not in parsed)
        with self._lock:
            if self._active is not None:
                self._active.queries.append(read)

    @contextmanager
    def measuring(self) -> Iterator[Measurement]:
        measurement = Measurement()
        with self._lock:
            self._active = measurement
        try:
            yield measurement
        finally:
            with self._lock:
                self._active = None


@dataclass(frozen=True)
class MotoStack:
    session: Any
    tables: dict[str, str]
    queue_urls: dict[str, str]
    dead_letter_urls: dict[str, str]


def provision_stack(session: Any, names: LocalNames | None = None) -> MotoStack:
    """What template.yaml declares, through infra.provision; the queue URLs by priority as the
    template hands them to the API function."""
    names = names or LocalNames()
    refs = provision(session, names)
    environment = function_environment("ApiFunction", names=names, refs=refs)

    def urls(prefix: str) -> dict[str, str]:
        return {p.value: environment[f"{prefix}{p.value.upper()}"] for p in Priority}

    tables = {logical_id: refs[logical_id] for logical_id in ("TasksTable", "ApiKeysTable")}
    return MotoStack(session, tables, urls("TASKAPI_QUEUE_URL_"), urls("TASKAPI_DLQ_URL_"))


@contextmanager
def moto_transactions_without_table_copies() -> Iterator[None]:
    """infra/moto_corrections.py's correction 2, for the block only: moto 5.2 deep-copies the whole
    table once per item of a TransactWriteItems call (a bulk create of 100 over a table of 10,000
    tasks copies a million items, minutes); corrected, a transaction keeps an undo log of its own
    items. No answer changes, only the time; moto's own function is back when the block ends."""
    import moto.dynamodb.models as dynamodb_models
    import pytest

    from infra import moto_corrections

    moto_corrections.check_moto_version()
    backend = dynamodb_models.DynamoDBBackend
    with pytest.MonkeyPatch.context() as patch:
        # Recorded first, so that the context puts moto's own back over the correction.
        patch.setattr(backend, "transact_write_items", backend.transact_write_items)
        patch.setattr(dynamodb_models, "copy", dynamodb_models.copy)
        moto_corrections._patch_transaction_snapshots()
        yield


@contextmanager
def moto_fast_fill(table_name: str, region: str) -> Iterator[None]:
    """For a bulk fill through BatchWriteItem on moto (in-process), for the block only:

    - moto 5.2 re-sums the size of every attribute already set each time it sets one more (its
      400 KB item limit, dynamo_type.LimitedSizeDict.__setitem__): quadratic in the attributes, most
      of a fill's time. Inside the block the check is skipped: callers check each item's size once
      (tests.support.capacity.item_size) before writing it.
    - the table's stream records nothing: a fill writes the counters itself (where the stream
      consumer would, once caught up), so the records of its writes would never be read.

    No item stored differs; moto's own behaviour is back when the block ends."""
    import moto.dynamodb.models.dynamo_type as dynamo_type
    import pytest
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(table_name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dynamo_type.LimitedSizeDict, "__setitem__", dict.__setitem__)
        patch.setattr(table, "stream_shard", None)
        yield


def stream_records(session: Any, table_name: str) -> list[dict[str, Any]]:
    """Every record of a moto table's stream from TRIM_HORIZON, shaped as the records of Lambda's
    DynamoDB stream event (infra.stream_pollers.lambda_record), in stream order."""
    from tests.support.streams import STREAMS_CONFIG, read_stream

    return read_stream(session.client("dynamodb"), session.client("dynamodbstreams", config=STREAMS_CONFIG), table_name)


def stream_batches(records: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Records in batches of up to `size`, in order, as an event source mapping delivers them."""
    return [records[start : start + size] for start in range(0, len(records), size)]
