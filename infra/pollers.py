"""What Lambda's event source mappings do for SQS, done by threads of the local stack.

moto's SQS invokes moto's own Lambda event source mappings on every send (running the function
in Docker), so the local stack creates none there. Provisioning writes one SSM parameter per SQS
event of the template instead ("<prefix>/<Function>/<Event>", JSON with source_arn, queue_url,
batch_size, maximum_concurrency, report_batch_item_failures, enabled) and a poller per parameter
does the mapping's work:

- long-polls the queue (ReceiveMessage, 1 s wait, up to the mapping's batch size, system and
  message attributes included; the queue's visibility timeout applies, as with Lambda),
- invokes the function's real handler with an SQS event shaped like Lambda's,
- deletes the records the answer does not list in batchItemFailures (ReportBatchItemFailures;
  an invalid answer or a raised exception fails the whole batch, as in Lambda),
- re-reads the parameters at least every second (one GetParametersByPath for every poller), so
  `taskapi queue pause` / `resume` and the API's queue restart (all through the same parameters)
  take effect within about a second.

Deviations from AWS, chosen for a laptop:
- A failed record is made visible again after a short local retry delay (2 s by default,
  TASKAPI_LOCAL_RETRY_VISIBILITY_SECONDS) instead of waiting out the queue's VisibilityTimeout
  (5400 s in the template); SQS still counts its receives and moves it to the dead-letter queue
  after maxReceiveCount, so the dead-letter path is the same, only faster.
- Concurrency per mapping is min(MaximumConcurrency, TASKAPI_LOCAL_MAX_CONCURRENCY (default 2)),
  a fixed number of threads instead of Lambda's scaling; each thread is one execution environment.
- A batch is what one receive (plus immediate follow-up receives when the batch size exceeds 10)
  returns: there is no MaximumBatchingWindowInSeconds wait for a fuller batch.
- A batch received just as its mapping was disabled is released (visibility 0) without invoking;
  Lambda would still deliver it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.faults import InjectedCrash
from infra.runtime import ExecutionEnvironment, FunctionSpec
from infra.template import LocalNames

log = logging.getLogger("taskapi.local")

RECEIVE_WAIT_SECONDS = 1
STATE_REFRESH_SECONDS = 1.0
SQS_BATCH = 10
"""ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10."""
ERROR_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class Mapping:
    """One SQS event source mapping, as its SSM parameter holds it."""

    parameter: str
    function: str
    source_arn: str
    queue_url: str
    batch_size: int
    maximum_concurrency: int
    report_batch_item_failures: bool
    enabled: bool

    @classmethod
    def parse(cls, parameter: str, value: str) -> Mapping:
        data = json.loads(value)
        return cls(
            parameter=parameter,
            function=str(data["function"]),
            source_arn=str(data["source_arn"]),
            queue_url=str(data["queue_url"]),
            batch_size=max(int(data.get("batch_size", SQS_BATCH)), 1),
            maximum_concurrency=max(int(data.get("maximum_concurrency", 2)), 1),
            report_batch_item_failures=bool(data.get("report_batch_item_failures", False)),
            enabled=bool(data.get("enabled", True)),
        )

    @property
    def event_name(self) -> str:
        return self.parameter.rsplit("/", 1)[-1]

    @property
    def region(self) -> str:
        return self.source_arn.split(":")[3]


def discover_mappings(ssm: Any, prefix: str) -> list[Mapping]:
    """Every mapping provisioning recorded under the prefix, in name order."""
    found = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix.rstrip("/"), Recursive=True):
        for parameter in page.get("Parameters", []):
            found.append(Mapping.parse(parameter["Name"], parameter["Value"]))
    return sorted(found, key=lambda mapping: mapping.parameter)


class MappingStates:
    """The current settings of every mapping under a prefix, re-read together (one
    GetParametersByPath) when older than max_age and shared by every poller thread: one SSM call
    a second for the whole stack, not one per poller. If SSM does not answer, or a mapping's
    parameter is missing or unreadable, the last known settings stay in force."""

    def __init__(
        self, ssm: Any, prefix: str, initial: Iterable[Mapping], max_age: float = STATE_REFRESH_SECONDS
    ) -> None:
        self._ssm = ssm
        self._prefix = prefix
        self._mappings = {mapping.parameter: mapping for mapping in initial}
        self._max_age = max_age
        self._read_at = time.monotonic()
        self._lock = threading.Lock()

    def current(self, parameter: str) -> Mapping:
        with self._lock:
            if time.monotonic() - self._read_at >= self._max_age:
                self._read_at = time.monotonic()
                self._refresh()
            return self._mappings[parameter]

    def _refresh(self) -> None:
        try:
            for mapping in discover_mappings(self._ssm, self._prefix):
                if mapping.parameter in self._mappings:
                    self._mappings[mapping.parameter] = mapping
        except (BotoCoreError, ClientError, ValueError, KeyError) as exc:
            log.warning("mappings under %s: state not re-read (%s); the last one holds", self._prefix, exc)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS's MessageAttributeValue in the camelCase form of Lambda's SQS event."""
    out: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return out


def sqs_record(message: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """One record of the event Lambda gives a function for an SQS message."""
    body = message.get("Body", "")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.source_arn,
        "awsRegion": mapping.region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, mapping: Mapping, message_ids: Sequence[str]) -> set[str]:
    """The records to deliver again, read from the function's answer the way Lambda reads it."""
    if not mapping.report_batch_item_failures:
        return set()
    if response is None:
        return set()
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if failures is None:
        return set()
    known = set(message_ids)
    failed = set()
    for item in failures if isinstance(failures, list) else [None]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in known:
            log.error("%s answered a bad batchItemFailures entry %r: the batch fails", mapping.function, item)
            return known
        failed.add(identifier)
    return failed


def _chunks(items: Sequence[dict[str, Any]], size: int = SQS_BATCH) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqsPoller:
    """The event source mapping of one SQS event of one function (a BackgroundWorker)."""

    def __init__(
        self,
        mapping: Mapping,
        spec: FunctionSpec,
        names: LocalNames,
        *,
        sqs: Any,
        states: MappingStates,
        concurrency_cap: int,
        retry_visibility_seconds: int,
    ) -> None:
        self.name = f"{mapping.function}/{mapping.event_name}"
        self.mapping = mapping
        self.concurrency = max(min(mapping.maximum_concurrency, concurrency_cap), 1)
        self._spec = spec
        self._names = names
        self._sqs = sqs
        self._states = states
        self._retry_visibility = retry_visibility_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        # Environments are created here, so a handler that cannot be imported fails the start.
        environments = [ExecutionEnvironment(self._spec, self._names) for _ in range(self.concurrency)]
        for number, environment in enumerate(environments, start=1):
            thread = threading.Thread(
                target=self._run, args=(environment,), name=f"poller {self.name} #{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; an invocation in progress may finish within the timeout."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout)
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    # ------------------------------------------------------------------ the loop
    def _run(self, environment: ExecutionEnvironment) -> None:
        while not self._stop.is_set():
            try:
                mapping = self._states.current(self.mapping.parameter)
                if not mapping.enabled:
                    self._stop.wait(STATE_REFRESH_SECONDS)
                    continue
                messages = self._receive(mapping)
                if not messages:
                    continue
                if self._stop.is_set() or not self._states.current(self.mapping.parameter).enabled:
                    self._set_visibility(mapping, messages, 0)  # paused or stopping meanwhile: give them back
                    continue
                self._deliver(environment, mapping, messages)
            except (BotoCoreError, ClientError) as exc:
                if not self._stop.is_set():
                    log.warning("poller %s: SQS call failed (%s); retrying", self.name, exc)
                    self._stop.wait(ERROR_BACKOFF_SECONDS)
            except Exception:
                log.exception("poller %s: unexpected error; it keeps polling", self.name)
                self._stop.wait(ERROR_BACKOFF_SECONDS)

    def _receive(self, mapping: Mapping) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        wait = RECEIVE_WAIT_SECONDS
        while len(messages) < mapping.batch_size:
            wanted = min(SQS_BATCH, mapping.batch_size - len(messages))
            answer = self._sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = answer.get("Messages", [])
            messages += got
            if len(got) < wanted:
                break
            wait = 0  # a bigger batch than one receive gives: take what is there now, do not wait
        return messages

    def _deliver(self, environment: ExecutionEnvironment, mapping: Mapping, messages: list[dict[str, Any]]) -> None:
        ids = [message["MessageId"] for message in messages]
        event = {"Records": [sqs_record(message, mapping) for message in messages]}
        try:
            response = environment.invoke(event)
        except (Exception, InjectedCrash):  # a crash fails the whole invocation, as in Lambda
            log.exception(
                "%s raised on a batch of %d from %s; it is delivered again in %d s",
                mapping.function,
                len(messages),
                self.name,
                self._retry_visibility,
            )
            failed = set(ids)
        else:
            failed = failed_message_ids(response, mapping, ids)
        self._delete(mapping, [m for m in messages if m["MessageId"] not in failed])
        self._set_visibility(mapping, [m for m in messages if m["MessageId"] in failed], self._retry_visibility)

    def _delete(self, mapping: Mapping, messages: Sequence[dict[str, Any]]) -> None:
        for chunk in _chunks(messages):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)]
            answer = self._sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=entries)
            for failure in answer.get("Failed", []):
                log.warning("poller %s: a processed message was not deleted (%s)", self.name, failure.get("Code"))

    def _set_visibility(self, mapping: Mapping, messages: Sequence[dict[str, Any]], seconds: int) -> None:
        for chunk in _chunks(messages):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
                for n, m in enumerate(chunk)
            ]
            answer = self._sqs.change_message_visibility_batch(QueueUrl=mapping.queue_url, Entries=entries)
            for failure in answer.get("Failed", []):
                log.warning("poller %s: visibility of a message not changed (%s)", self.name, failure.get("Code"))


def build_pollers(
    mappings: Sequence[Mapping],
    specs: dict[str, FunctionSpec],
    names: LocalNames,
    *,
    sqs: Any,
    ssm: Any,
    concurrency_cap: int,
    retry_visibility_seconds: int,
) -> list[SqsPoller]:
    pollers = []
    states = MappingStates(ssm, names.mappings_parameter_prefix, mappings)
    for mapping in mappings:
        if mapping.function not in specs:
            raise ValueError(f"mapping {mapping.parameter} names {mapping.function!r}, which the template lacks")
        pollers.append(
            SqsPoller(
                mapping,
                specs[mapping.function],
                names,
                sqs=sqs,
                states=states,
                concurrency_cap=concurrency_cap,
                retry_visibility_seconds=retry_visibility_seconds,
            )
        )
    return pollers
