"""Fault injection for the local stack (tests only; off unless its variable is set).

TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE=0.2 makes SQS refuse that share of SendMessageBatch entries,
the way SQS itself sometimes does: the call succeeds and the refused entries come back under
"Failed" (Code InternalError, SenderFault false), never reaching the queue. The choice is
random with TASKAPI_LOCAL_FAULT_SEED (default 0), so a run can be repeated.

It is a botocore event hook on the SQS client the service code uses (taskapi.aws.client("sqs")),
installed by the local stack after its clients are built; nothing in shared/ knows about it."""

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
