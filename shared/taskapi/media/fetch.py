"""Fetch a URL a user gave (intro and outro videos, logos) without letting it reach inside our network.

    with fetch(url, max_bytes=200 * 2**20, timeout_seconds=60, accept=("video/",)) as fetched:
        render(fetched.path, fetched.content_type)

The rules:
- https only. http only with allow_loopback_http=True and a host that resolves to loopback
  addresses only (the local stack's receivers, test servers); never a redirect from https to http.
- The host is resolved here, once per hop. Every address it resolves to must pass
  `address_refusal` in taskapi.media.addresses (private, loopback, link-local, metadata, CGNAT,
  unique-local, multicast, reserved and documentation ranges, and IPv4-mapped or NAT64 forms of
  them are refused). The connection then goes to a vetted address itself: no second lookup that
  a rebinding DNS server could answer differently. The URL's name is sent as Host and as TLS SNI,
  and the certificate is verified for that name.
- At most MAX_REDIRECTS redirects, each checked like the first URL.
- One deadline, timeout_seconds, for the whole fetch: resolving, connecting, TLS, every redirect
  and reading the body. Each socket operation gets the time that is left, and a watchdog shuts
  the connection at the deadline, so a server trickling a byte at a time cannot stretch it.
- At most max_bytes: a larger Content-Length is refused before reading, and reading stops one
  byte past the limit otherwise. The Content-Type must be one `accept` allows; the body must not
  be compressed (we ask for identity). A non-2xx answer fails.

The body goes to a temporary file, whatever its size (an intro video may be hundreds of MB, and a
Lambda has more /tmp than memory to spare): one API for videos and logos. `Fetched` deletes the
file when its `with` block ends (or on `discard()`); `read_bytes()` suits a small logo.

Failures are `FetchRefused` (policy: scheme, address, type, size, too many redirects; permanent)
or `FetchFailed` (network, timeout, 5xx, 408/429: retryable; other 4xx, a certificate that does
not verify, a name that does not resolve: not). Their messages name the URL (without its query
string: signed URLs carry credentials there) and the reason, never a response body.

HTTP(S)_PROXY variables are not used: every connection is direct, to the vetted address.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from taskapi.errors import TaskApiError
from taskapi.media.connection import (
    Accept,
    AcceptedTypes,
    Deadline,
    Exchange,
    Failure,
    Refusal,
    Resolver,
    Target,
    default_ssl_context,
)

MAX_REDIRECTS = 3
_MAX_SHOWN_URL = 200


def shown_url(url: str) -> str:
    """The URL as an error message names it: no user name or password, no query string (signed
    URLs carry credentials there), at most 200 characters."""
    try:
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.scheme else url
        if parts.query:
            shown += "?…"
    except ValueError:
        shown = url.rpartition("@")[2] if "@" in url else url
    shown = "".join(c if c.isprintable() else "?" for c in shown)
    return shown if len(shown) <= _MAX_SHOWN_URL else shown[: _MAX_SHOWN_URL - 1] + "…"


class FetchError(TaskApiError):
    """A user-given URL could not be fetched. `permanent` means the same URL will not do better
    later (fail the task now); otherwise a retry may succeed."""

    verb = "Could not fetch"

    def __init__(self, url: str, reason: str, *, redirected_from: str | None = None) -> None:
        via = f" (redirected from {shown_url(redirected_from)})" if redirected_from else ""
        super().__init__(f"{self.verb} {shown_url(url)}{via}: {reason}")
        self.url = url
        self.reason = reason
        self.redirected_from = redirected_from
        self.permanent = True


class FetchRefused(FetchError):
    """The URL, an address it resolves to, or the answer breaks the policy (scheme, address,
    content type, size, redirects). Permanent."""

    verb = "Refused to fetch"


class FetchFailed(FetchError):
    """The fetch did not succeed: network failure, timeout, 5xx, 408 and 429 (retryable); another
    4xx, a certificate that does not verify, a name that does not resolve (not retryable)."""

    verb = "Could not fetch"

    def __init__(self, url: str, reason: str, retryable: bool = True, *, redirected_from: str | None = None) -> None:
        super().__init__(url, reason, redirected_from=redirected_from)
        self.retryable = retryable
        self.permanent = not retryable


@dataclass(frozen=True)
class Fetched:
    url: str
    """The final URL, after any redirects."""
    content_type: str
    """The media type, lower case, without parameters ("video/mp4")."""
    path: Path
    """A temporary file holding the body; deleted by discard() or on leaving a `with` block."""
    size: int

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Fetched:
        return self

    def __exit__(self, *_: object) -> None:
        self.discard()


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout_seconds: float,
    accept: Accept,
    allow_loopback_http: bool = False,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    directory: str | Path | None = None,
) -> Fetched:
    """GET `url` under the rules in the module docstring; the body lands in a temporary file
    (in `directory`, or the system's temporary directory). `allow_loopback_http` admits loopback
    addresses (over http or https) for the local stack and tests. `ssl_context` replaces the
    system's trust store (tests use their own CA); it must verify certificates and host names.
    `resolver` defaults to socket.getaddrinfo, looked up at call time."""
    if max_bytes <= 0 or timeout_seconds <= 0:
        raise ValueError("max_bytes and timeout_seconds must be positive")
    context = ssl_context or default_ssl_context()
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ValueError("ssl_context must verify certificates and host names")
    wanted = AcceptedTypes(accept)
    lookup = resolver or socket.getaddrinfo
    deadline = Deadline(timeout_seconds)
    current, previous_scheme = url, None
    for hop in range(MAX_REDIRECTS + 1):
        redirected_from = url if hop else None
        try:
            target = Target.parse(current)
            if previous_scheme == "https" and target.scheme == "http":
                raise Refusal("a redirect from https to http is not followed")
            with Exchange(target, wanted, deadline, lookup, context, allow_loopback_http) as exchange:
                location = exchange.redirect_location()
                if location is None:
                    path, size = exchange.download(max_bytes, directory)
                    return Fetched(url=current, content_type=exchange.content_type, path=path, size=size)
        except Refusal as exc:
            raise FetchRefused(current, exc.reason, redirected_from=redirected_from) from exc.__cause__
        except Failure as exc:
            raise FetchFailed(current, exc.reason, exc.retryable, redirected_from=redirected_from) from exc.__cause__
        previous_scheme, current = target.scheme, urljoin(current, location)
    raise FetchRefused(url, f"it redirects more than {MAX_REDIRECTS} times")
