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
