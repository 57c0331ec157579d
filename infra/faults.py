"""Fault injection for the local stack (tests only; off unless its variable is set).

TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE=0.2 makes SQS refuse that share of SendMessageBatch entries,
the way SQS itself sometimes does: the call succeeds and the refused entries come back under
"Failed" (Code InternalError, SenderFault false), never reaching the queue. The choice is
random with TASKAPI_LOCAL_FAULT_SEED (default 0), so a run can be repeated.

TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES=N breaks the first read of every uploaded file after
N bytes (botocore's ResponseStreamingError, as when the connection drops): the ingest run stops
halfway and its notification is delivered again, which reads the file whole.

Each is a botocore event hook on the client the service code uses (taskapi.aws.client("sqs") or
("s3")), installed by the local stack after its clients are built; nothing in shared/ knows about it."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REFUSE_CODE = "InternalError"
REFUSE_MESSAGE = "Injected fault: the local stack refused this entry (TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE)"
_CONTEXT_KEY = "taskapi_local_refused"


@dataclass
class _ShortCircuit:
    """Stands in for the HTTP response when every entry of a batch is refused (nothing is sent)."""

    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class SqsEntryRefusal:
    """Refuses a share of SendMessageBatch entries of the clients it is installed on."""

    def __init__(self, rate: float, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the refusal rate is a share between 0 and 1")
        self.rate = rate
        self._random = random.Random(seed)  # noqa: S311 - a repeatable fault, not a secret
        self._lock = threading.Lock()
        self.refused = 0
        self.passed = 0

    def install(self, sqs_client: Any) -> None:
        events = sqs_client.meta.events
        events.register("before-parameter-build.sqs.SendMessageBatch", self._choose, unique_id="taskapi-refuse-choose")
        events.register("before-call.sqs.SendMessageBatch", self._short_circuit, unique_id="taskapi-refuse-call")
        events.register("after-call.sqs.SendMessageBatch", self._report, unique_id="taskapi-refuse-report")

    def _choose(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = list(params.get("Entries", []))
        with self._lock:
            refused = [entry for entry in entries if self._random.random() < self.rate]
            self.refused += len(refused)
            self.passed += len(entries) - len(refused)
        if not refused:
            return
        context[_CONTEXT_KEY] = [
            {"Id": entry["Id"], "SenderFault": False, "Code": REFUSE_CODE, "Message": REFUSE_MESSAGE}
            for entry in refused
        ]
        kept = [entry for entry in entries if all(entry is not r for r in refused)]
        if kept:
            params["Entries"] = kept  # a new list: the caller's stays as it was
        else:
            context[_CONTEXT_KEY + "_all"] = True  # an empty batch is invalid: before-call answers instead

    def _short_circuit(self, context: dict[str, Any], **_: Any) -> tuple[_ShortCircuit, dict[str, Any]] | None:
        if not context.get(_CONTEXT_KEY + "_all"):
            return None
        return _ShortCircuit(), {"Successful": [], "Failed": [], "ResponseMetadata": {"HTTPStatusCode": 200}}

    def _report(self, parsed: dict[str, Any], context: dict[str, Any], http_response: Any, **_: Any) -> None:
        refused = context.get(_CONTEXT_KEY)
        if refused and getattr(http_response, "status_code", 500) < 300:
            parsed["Failed"] = [*parsed.get("Failed", []), *refused]


def refusal_from_environ(environ: Mapping[str, str]) -> SqsEntryRefusal | None:
    """The configured refusal, None when TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE is unset or empty;
    ValueError for values that are not a share or a seed."""
    raw = environ.get("TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE", "").strip()
    if not raw:
        return None
    try:
        rate = float(raw)
    except ValueError:
        raise ValueError(f"TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE={raw!r} is not a number between 0 and 1") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE={raw!r} is not between 0 and 1")
    seed_raw = environ.get("TASKAPI_LOCAL_FAULT_SEED", "0").strip() or "0"
    try:
        seed = int(seed_raw)
    except ValueError:
        raise ValueError(f"TASKAPI_LOCAL_FAULT_SEED={seed_raw!r} is not a whole number") from None
    return SqsEntryRefusal(rate, seed)


INGEST_CRASH_MESSAGE = "Injected fault: the local stack broke this read (TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES)"
_KEY_CONTEXT = "taskapi_local_get_object_key"


class _BreakingBody:
    """A GetObject body that hands on `after_bytes` bytes, then raises on the next read the way a
    dropped connection does in botocore (ResponseStreamingError)."""

    def __init__(self, body: Any, after_bytes: int) -> None:
        self._body = body
        self._left = after_bytes

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0:
            from botocore.exceptions import ResponseStreamingError

            raise ResponseStreamingError(error=INGEST_CRASH_MESSAGE)
        wanted = self._left if amt is None or amt < 0 else min(amt, self._left)
        data = bytes(self._body.read(wanted))
        self._left -= len(data)
        if not data:  # the object ended before the break: nothing to break
            self._left = 0
        return data

    def close(self) -> None:
        self._body.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)


class IngestReadCrash:
    """Breaks the first GetObject of every uploaded file (keys under uploads/ of the uploads
    bucket) after `after_bytes` bytes: the ingest run stops halfway, as if the function crashed
    with its connection, and the notification is delivered again. Later reads of the same key are
    left alone, so the re-delivered run reads the whole file. Other buckets and keys (results,
    reports) are never touched. A JSON document is read twice by ingest (its shared settings
    first), so it breaks in that first pass, before any task."""

    def __init__(self, after_bytes: int, prefix: str = "uploads/") -> None:
        if after_bytes < 1:
            raise ValueError("the break comes after at least 1 byte")
        self.after_bytes = after_bytes
        self.prefix = prefix
        self.bucket: str | None = None
        self._lock = threading.Lock()
        self.broken: list[str] = []

    def install(self, s3_client: Any, bucket: str) -> None:
        """On the S3 client ingest reads with, for the uploads bucket."""
        self.bucket = bucket
        events = s3_client.meta.events
        events.register("before-parameter-build.s3.GetObject", self._note_key, unique_id="taskapi-ingest-crash-key")
        events.register("after-call.s3.GetObject", self._break, unique_id="taskapi-ingest-crash-body")

    def _note_key(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == self.bucket and str(params.get("Key", "")).startswith(self.prefix):
            context[_KEY_CONTEXT] = str(params["Key"])

    def _break(self, parsed: dict[str, Any], context: dict[str, Any], http_response: Any, **_: Any) -> None:
        key = context.get(_KEY_CONTEXT)
        if key is None or getattr(http_response, "status_code", 500) >= 300 or "Body" not in parsed:
            return
        with self._lock:
            if key in self.broken:
                return
            self.broken.append(key)
        parsed["Body"] = _BreakingBody(parsed["Body"], self.after_bytes)


def ingest_crash_from_environ(environ: Mapping[str, str]) -> IngestReadCrash | None:
    """The configured break of uploaded files' first reads, None when
    TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES is unset or empty; ValueError for a value that is
    not a whole number of bytes above 0."""
    raw = environ.get("TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES={raw!r} is not a whole number of bytes above 0")
    return IngestReadCrash(int(raw))


DELIVERY_CRASH_MESSAGE = "Injected fault: the webhook sender crashed after the receiver answered"


class InjectedCrash(BaseException):
    """The function's process dying: not an Exception, so no handler of ours (Powertools'
    BatchProcessor included) takes it for one record's failure; the local pollers fail the whole
    invocation with it, as Lambda does when a function crashes."""


class DeliveryCrash:
    """Every `every`-th webhook POST the receiver answered is followed by a crash of the sender,
    before anything about it is recorded: the whole batch is delivered again (the receiver gets the
    same webhook-id again) and nothing may be lost (TASKAPI_LOCAL_FAULT_DELIVERY_CRASH_EVERY)."""

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError("a crash comes after at least one POST")
        self.every = every
        self.posts = 0
        self.crashes = 0
        self._lock = threading.Lock()
        self._inner: Any = None

    def install(self, deliverer: Any) -> None:
        """Around the deliverer's transport (taskapi.webhooks.delivery.Deliverer.transport)."""
        self._inner = deliverer.transport
        deliverer.transport = self

    def post(self, *args: Any, **kwargs: Any) -> Any:
        answer = self._inner.post(*args, **kwargs)
        with self._lock:
            self.posts += 1
            crash = self.posts % self.every == 0
            self.crashes += crash
        if crash:
            raise InjectedCrash(DELIVERY_CRASH_MESSAGE)
        return answer


def delivery_crash_from_environ(environ: Mapping[str, str]) -> DeliveryCrash | None:
    """The configured crash of the webhook sender, None when TASKAPI_LOCAL_FAULT_DELIVERY_CRASH_EVERY
    is unset or empty; ValueError for a value that is not a whole number above 0."""
    raw = environ.get("TASKAPI_LOCAL_FAULT_DELIVERY_CRASH_EVERY", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"TASKAPI_LOCAL_FAULT_DELIVERY_CRASH_EVERY={raw!r} is not a whole number above 0")
    return DeliveryCrash(int(raw))
