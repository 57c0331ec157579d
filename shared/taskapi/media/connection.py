"""One exchange with a user-given URL's server, for taskapi.media.fetch and the webhook transport
(taskapi.webhooks.transport): the URL parsed, its host resolved and every address vetted
(taskapi.media.addresses), a direct connection to a vetted address (TLS with the URL's name as
SNI, the certificate verified for it), one request (a GET, or the caller's POST) and its answer,
the body read to a temporary file; all of it under one deadline, with a watchdog that shuts the
connection when the deadline comes.

What goes wrong is a `Refusal` (the policy says no) or a `Failure` (retryable or not); the fetcher
turns them into FetchRefused and FetchFailed, naming the URL. The rules themselves are told in
taskapi.media.fetch's docstring.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from taskapi.media.addresses import IPAddress, address_refusal, connectable

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""Called as resolver(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM), like socket.getaddrinfo."""
Accept = Callable[[str], bool] | tuple[str, ...] | str
"""Media types allowed: "video/" (a prefix ending in "/") or "image/png" (exact), or a predicate."""

CHUNK_BYTES = 64 * 1024
USER_AGENT = "taskapi-media-fetch/1"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})  # "try later" answers, though 4xx
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_NO_SUCH_NAME = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code is not None
)


class Refusal(Exception):
    """The policy says no (scheme, address, type, size): the fetcher raises FetchRefused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Failure(Exception):
    """The exchange did not succeed: the fetcher raises FetchFailed, as retryable as this."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # verifies certificates and names; TLS 1.2 or later


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; TimeoutError once there are none."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        return left

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    @property
    def failure(self) -> Failure:
        return Failure(f"no complete answer within {self.seconds:g} s", retryable=True)


class AcceptedTypes:
    def __init__(self, accept: Accept) -> None:
        if isinstance(accept, str):
            accept = (accept,)
        if isinstance(accept, tuple):
            if not accept:
                raise ValueError("accept names no content type")
            self.types = tuple(kind.lower() for kind in accept)
            self.header = ", ".join(kind + "*" if kind.endswith("/") else kind for kind in self.types)
            self.described = " or ".join(self.header.split(", "))
            self.predicate: Callable[[str], bool] | None = None
        else:
            self.types, self.header, self.described, self.predicate = (), "*/*", "an accepted type", accept

    def __call__(self, media_type: str) -> bool:
        if self.predicate is not None:
            return self.predicate(media_type)
        return any(media_type.startswith(k) if k.endswith("/") else media_type == k for k in self.types)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    """ASCII: the IDNA form of a name, or an IP literal without brackets."""
    port: int
    request_target: str
    host_header: str
    literal: bool

    @classmethod
    def parse(cls, url: str) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refusal("the URL is malformed") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise Refusal("only https URLs are fetched")
        if parts.username is not None or parts.password is not None:
            raise Refusal("URLs with a user name or password are not fetched")
        host = parts.hostname or ""
        literal = _is_ip_literal(host)
        if not literal:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise Refusal("the host name is not valid") from None
            if not _HOST_NAME.fullmatch(host):
                raise Refusal("the URL has no valid host name")
        if port == 0:
            raise Refusal("the URL's port is not valid")
        default_port = 443 if scheme == "https" else 80
        port = port or default_port
        request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if any(c <= " " or c == "\x7f" for c in request_target):
            raise Refusal("the URL is malformed")
        host_header = f"[{host}]" if ":" in host else host
        if port != default_port:
            host_header += f":{port}"
        return cls(scheme, host, port, request_target, host_header, literal)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(resolver: Resolver, target: Target, deadline: Deadline) -> Sequence[tuple[Any, ...]]:
    """resolver(...) with the deadline: getaddrinfo has no timeout of its own, so it runs in a
    thread that is abandoned (it ends when the lookup does) if the deadline comes first."""
    outcome: list[Sequence[tuple[Any, ...]] | BaseException] = []

    def lookup() -> None:
        try:
            outcome.append(resolver(target.host, target.port, socket.AF_UNSPEC, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome.append(exc)

    worker = threading.Thread(target=lookup, name="fetch-resolve", daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    if not outcome:
        raise TimeoutError("the name lookup did not finish in time")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _resolved_addresses(target: Target, resolver: Resolver, deadline: Deadline) -> list[IPAddress]:
    """The addresses the host stands for: an IP literal itself, a name what the resolver says."""
    if target.literal:
        return [ipaddress.ip_address(target.host)]
    try:
        answers = _resolve(resolver, target, deadline)
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            raise Failure(f"the host name {target.host} does not resolve", retryable=False) from exc
        raise Failure(f"the host name {target.host} could not be resolved", retryable=True) from exc
    except TimeoutError as exc:
        raise deadline.failure from exc
    except OSError as exc:
        raise Failure(f"the host name {target.host} could not be resolved", retryable=True) from exc
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in answers:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(sockaddr[0])
            if ip not in addresses:
                addresses.append(ip)
    if not addresses:
        raise Failure(f"the host name {target.host} does not resolve", retryable=False)
    return addresses


def _vetted_addresses(
    target: Target, resolver: Resolver, deadline: Deadline, allow_loopback_http: bool
) -> list[IPAddress]:
    """The addresses to dial, if every address the host stands for passes the policy; else Refusal."""
    if target.scheme == "http" and not allow_loopback_http:
        raise Refusal("only https URLs are fetched")
    addresses = _resolved_addresses(target, resolver, deadline)
    verb = "is" if target.literal else "resolves to"
    for ip in addresses:
        reason = address_refusal(ip, allow_loopback=allow_loopback_http)
        if reason is not None:
            raise Refusal(f"{target.host} {verb} {reason}")
    if target.scheme == "http" and not all(connectable(ip).is_loopback for ip in addresses):
        raise Refusal("http is fetched only from loopback addresses (the local stack); use https")
    return [connectable(ip) for ip in addresses]


class _Watchdog:
    """Shuts a connection down at the deadline, which ends any read blocked on it: a per-read
    timeout alone lets a server that sends a byte now and then run on forever."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._watched = sock.dup()  # shutdown acts on the connection, whichever descriptor
        self._lock = threading.Lock()
        self._closed = False
        self.fired = False
        """True once the deadline cut the connection: an end of body after that is no end at all."""
        self._timer = threading.Timer(max(0.0, deadline.at - time.monotonic()), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            if not self._closed:
                self.fired = True
                with contextlib.suppress(OSError):
                    self._watched.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            self._watched.close()


class Exchange:
    """One request and its response, on a connection to a vetted address: a GET by default (the
    media fetcher), or any method with a body and headers of the caller's (webhook deliveries,
    taskapi.webhooks.transport). `response` is the answer once the `with` block is entered."""

    def __init__(
        self,
        target: Target,
        wanted: AcceptedTypes,
        deadline: Deadline,
        resolver: Resolver,
        context: ssl.SSLContext,
        allow_loopback_http: bool,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.target, self.wanted, self.deadline = target, wanted, deadline
        self._resolver, self._context, self._allow_loopback_http = resolver, context, allow_loopback_http
        self._method, self._body, self._headers = method, body, dict(headers or {})
        self._cleanup = contextlib.ExitStack()

    def __enter__(self) -> Exchange:
        addresses = _vetted_addresses(self.target, self._resolver, self.deadline, self._allow_loopback_http)
        with self._translated_errors():
            try:
                self.sock = self._connect(addresses)
                self.response = self._request()
            except BaseException:
                self._cleanup.close()
                raise
        return self

    def __exit__(self, *_: object) -> None:
        self._cleanup.close()

    def _connect(self, addresses: list[IPAddress]) -> socket.socket:
        failure: OSError | None = None
        for ip in addresses:
            family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:  # no IPv6 here, say: try the next address
                failure = exc
                continue
            try:
                sock.settimeout(self.deadline.remaining())
                sock.connect((str(ip), self.target.port))
            except OSError as exc:
                sock.close()
                failure = exc
                if self.deadline.expired:
                    break
                continue
            self._cleanup.callback(sock.close)
            self._watchdog = _Watchdog(sock, self.deadline)
            self._cleanup.callback(self._watchdog.close)
            if self.target.scheme == "http":
                return sock
            sock.settimeout(self.deadline.remaining())
            tls = self._context.wrap_socket(sock, server_hostname=self.target.host)
            self._cleanup.callback(tls.close)
            return tls
        assert failure is not None
        raise failure

    def _request(self) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(self.target.host, self.target.port)
        connection.sock = self.sock  # connected to the vetted address; http.client must not dial
        self._cleanup.callback(connection.close)
        self.sock.settimeout(self.deadline.remaining())
        headers = {
            "Host": self.target.host_header,
            "User-Agent": USER_AGENT,
            "Accept": self.wanted.header,
            "Accept-Encoding": "identity",
            **self._headers,  # the caller's own (a webhook's signature, its User-Agent)
            "Connection": "close",
        }
        connection.request(self._method, self.target.request_target, body=self._body, headers=headers)
        self.sock.settimeout(self.deadline.remaining())
        response = connection.getresponse()
        self._cleanup.callback(response.close)
        return response

    @contextlib.contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except (Refusal, Failure):
            raise
        except ssl.SSLCertVerificationError as exc:
            reason = f"the server's certificate does not verify for {self.target.host} ({exc.verify_message})"
            raise Failure(reason, retryable=False) from exc
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError) or self.deadline.expired:
                raise self.deadline.failure from exc
            if isinstance(exc, ConnectionRefusedError):
                raise Failure("the connection was refused", retryable=True) from exc
            if isinstance(exc, http.client.HTTPException) and not isinstance(exc, ConnectionError):
                raise Failure("the server's answer is malformed or incomplete", retryable=True) from exc
            raise Failure(f"the connection failed ({type(exc).__name__})", retryable=True) from exc

    def redirect_location(self) -> str | None:
        """Where a redirect points, None for a 2xx answer; Failure for anything else."""
        status = self.response.status
        if 200 <= status < 300:
            return None
        if status in _REDIRECT_STATUSES:
            location = self.response.getheader("Location")
            if not location:
                raise Failure(f"the server answered {status} without a Location", retryable=False)
            return location.strip()
        retryable = status >= 500 or status in _RETRYABLE_CLIENT_ERRORS
        raise Failure(f"the server answered {_status_text(status)}", retryable=retryable)

    def discard_body(self, max_bytes: int) -> None:
        """Read at most `max_bytes` of the body and drop them, within the deadline: the status is
        the answer (a webhook receiver's body is not ours to keep), and a body that is longer,
        slow or cut short changes nothing."""
        with contextlib.suppress(Refusal, Failure), self._translated_errors():
            left = max_bytes
            while left > 0 and not self.response.isclosed():
                self.sock.settimeout(self.deadline.remaining())
                chunk = self.response.read(min(CHUNK_BYTES, left))
                if not chunk:
                    break
                left -= len(chunk)

    @property
    def content_type(self) -> str:
        header = self.response.getheader("Content-Type")
        if not header:
            raise Refusal("the response has no Content-Type")
        media_type = header.split(";", 1)[0].strip().lower()
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise Refusal("the response's Content-Type is malformed")
        return media_type

    def download(self, max_bytes: int, directory: str | Path | None) -> tuple[Path, int]:
        """The body, checked and written to a temporary file: (its path, its size)."""
        media_type = self.content_type
        if not self.wanted(media_type):
            raise Refusal(f"the response is {media_type}, not {self.wanted.described}")
        encoding = (self.response.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise Refusal("the response is compressed, which was not asked for")
        declared = self.response.length  # None without a (valid) Content-Length or when chunked
        if declared is not None and declared > max_bytes:
            raise Refusal(f"the response is {declared} bytes, over the limit of {max_bytes}")
        handle = tempfile.NamedTemporaryFile(prefix="taskapi-fetch-", dir=directory, delete=False)  # noqa: SIM115
        path, size = Path(handle.name), 0
        try:
            with handle, self._translated_errors():
                while not self.response.isclosed():  # http.client closes it at the end of the body
                    self.sock.settimeout(self.deadline.remaining())
                    chunk = self.response.read(min(CHUNK_BYTES, max_bytes + 1 - size))
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise Refusal(f"the response is larger than the limit of {max_bytes} bytes")
                    _write(handle, chunk)
                if self._watchdog.fired:
                    raise self.deadline.failure
                if declared is not None and size != declared:
                    raise Failure(f"the response was cut short ({size} of {declared} bytes)", retryable=True)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, size


def _status_text(status: int) -> str:
    """The standard phrase ("404 Not Found"), not the server's own (which is its to choose)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _write(handle: Any, chunk: bytes) -> None:
    try:
        handle.write(chunk)
    except OSError as exc:  # a full /tmp is ours to fix, not the server's
        raise Failure(f"the temporary file could not be written ({exc.strerror})", retryable=True) from exc
