"""One webhook POST to a user-given URL, as safely as the media fetcher's GET (it is the same
machinery, taskapi.media.connection): the host resolved once and every address vetted (private,
link-local, metadata and the rest refused; loopback only with allow_loopback_http, the local
stack's receivers), a direct connection to the vetted address, https only (http with the loopback
allowance and loopback addresses only), one deadline for everything (10 s by default).

No redirect is followed: a 3xx is an answer like any other non-2xx, a failed attempt (a receiver
that moved must be updated by its owner, not chased by us). The response body is read up to 4 KB
and dropped. What the delivery rules need is the status and the Retry-After header; a refusal or
a network failure is a `TransportError` (the attempt failed, with a reason fit to store and show:
it never quotes the body or the headers we sent)."""

from __future__ import annotations

import email.utils
import math
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from taskapi.media.connection import (
    AcceptedTypes,
    Deadline,
    Exchange,
    Failure,
    Refusal,
    Resolver,
    Target,
    default_ssl_context,
)

DEFAULT_TIMEOUT_SECONDS = 10.0
RESPONSE_BYTES_READ = 4096
USER_AGENT = "taskapi-webhooks/1"
_ANY_TYPE = AcceptedTypes(lambda _media_type: True)


@dataclass(frozen=True)
class PostResult:
    """The receiver's answer: its status and its Retry-After header, as sent (None without one)."""

    status: int
    retry_after: str | None = None


class TransportError(Exception):
    """No answer: the URL or an address it resolves to is refused (`refused`), or the connection,
    TLS or the deadline failed. Either way the attempt failed; `reason` says why."""

    def __init__(self, reason: str, *, refused: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class Transport(Protocol):
    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout_seconds: float,
        allow_loopback_http: bool,
    ) -> PostResult:
        """POST `body` with `headers`; the answer, or TransportError."""
        ...


class HttpTransport:
    """The real POST. `resolver` (getaddrinfo by default) and `ssl_context` (the system's trust
    store) are for tests; the context must verify certificates and host names."""

    def __init__(self, *, resolver: Resolver | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self._resolver = resolver
        self._context = ssl_context

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        allow_loopback_http: bool = False,
    ) -> PostResult:
        context = self._context or default_ssl_context()
        if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
            raise ValueError("ssl_context must verify certificates and host names")
        sent = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}
        try:
            target = Target.parse(url)
            exchange = Exchange(
                target,
                _ANY_TYPE,
                Deadline(timeout_seconds),
                self._resolver or socket.getaddrinfo,
                context,
                allow_loopback_http,
                method="POST",
                body=body,
                headers=sent,
            )
            with exchange:
                status = exchange.response.status
                retry_after = exchange.response.getheader("Retry-After")
                exchange.discard_body(RESPONSE_BYTES_READ)
        except Refusal as exc:
            raise TransportError(_delivered_wording(exc.reason), refused=True) from exc.__cause__
        except Failure as exc:
            raise TransportError(exc.reason, refused=False) from exc.__cause__
        return PostResult(status=status, retry_after=retry_after)


def _delivered_wording(reason: str) -> str:
    """The fetcher's refusals speak of fetching; a webhook is delivered."""
    return reason.replace("URLs are fetched", "URLs receive webhooks").replace("is fetched only", "is used only")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from `now` per a Retry-After header: delay-seconds ("120") or an HTTP date
    ("Wed, 21 Oct 2026 07:28:00 GMT"). None when absent or unreadable; 0 for a date passed."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - now).total_seconds()
    return 0.0 if seconds <= 0 or math.isnan(seconds) else seconds
