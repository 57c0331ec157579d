"""When the client repeats a request, and how long it waits first.

The rule (TaskApiClient's docstring repeats it):

* Idempotent requests are repeated on 429, 502, 503 and 504 answers and on transport failures
  (connect / read / write / pool timeouts, network errors, a connection closed without an answer).
  Idempotent here means "sending it twice leaves the same state as sending it once": every GET,
  and the POSTs this API makes idempotent — task creation (bulk and single; the client gives every
  task without a task_id a UUID4 before the first send, and the server answers an id it already
  holds as stored), bulk-cancel (a cancelled task is skipped the second time), queue/restart,
  queue/process-pending and requeue-pending (a second call finds the tasks already queued; a
  duplicate message is acknowledged without work).
* Other requests (bulk-regenerate: every call that lands starts a new attempt of each task that is
  not QUEUED or PROCESSING) are repeated only when the failure shows the request was not processed:
  a 429 answer (a refusal that writes nothing: API Gateway's throttling, or the service declining
  more work for now) or a failure to connect (ConnectError, ConnectTimeout, PoolTimeout). A
  502/503/504 or a read timeout may come after the work was done, so it is raised, not repeated.
* The wait before retry n (0-based) is Retry-After when the answer carries one (delta-seconds or an
  HTTP-date), else an exponential backoff with equal jitter: d = min(backoff_max,
  backoff_base * 2**n), wait d/2 + random() * d/2. Every wait is capped at backoff_max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers an idempotent request is repeated on."""
UNPROCESSED_STATUSES = frozenset({429})
"""Answers that show the request was not processed: any request is repeated on them."""

_UNSENT: tuple[type[httpx.TransportError], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSIENT: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def retries_status(status_code: int, *, idempotent: bool) -> bool:
    return status_code in (RETRY_STATUSES if idempotent else UNPROCESSED_STATUSES)


def retries_exception(exc: BaseException, *, idempotent: bool) -> bool:
    if isinstance(exc, _UNSENT):
        return True
    return idempotent and isinstance(exc, _TRANSIENT)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when the header
    is missing or unreadable. A date in the past means 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    maximum: float = 30.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.maximum < 0:
            raise ValueError("backoff_base and backoff_max must not be negative")

    def delay(self, attempt: int, *, retry_after: float | None, rand: float) -> float:
        """Seconds to wait before retry `attempt` (0 for the first retry); rand is in [0, 1)."""
        if retry_after is not None:
            return min(self.maximum, retry_after)
        ceiling = min(self.maximum, self.base * 2.0 ** min(attempt, 64))
        return ceiling / 2 + rand * ceiling / 2
