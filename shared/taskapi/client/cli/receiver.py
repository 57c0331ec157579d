"""The HTTP receiver of `taskapi webhooks listen`: a server on 127.0.0.1 that checks each POST's
Standard Webhooks signature with the endpoint's secret, answers 400 to one that does not verify,
and hands a verified one to the command (which may forward it and say what to answer).

Standard library (http.server) in a daemon thread: it serves one developer's machine, a handful of
requests at a time, and keeps the client extra at httpx, rich and pydantic."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import httpx

from taskapi.client.webhooks import InvalidSignature, verify

MAX_BODY_BYTES: Final = 1024 * 1024
"""The API sends less than 64 KB; anything far larger is not a delivery."""
FORWARD_TIMEOUT_SECONDS: Final = 9.0
"""Below the API's 10 s delivery timeout, so the receiver answers (504) before the sender gives up."""
ANSWER_BYTES: Final = 4096
"""Of a forward's answer, passed back; the sender reads no more than that."""
_NOT_FORWARDED: Final = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Delivery:
    """A POST whose signature verified: its path, headers (names in lower case) and raw body."""

    path: str
    headers: Mapping[str, str]
    body: bytes


Verified = Callable[[Delivery], Answer]
Refused = Callable[[str, str], None]
"""refused(path, reason): a POST that did not verify (answered 400)."""


@dataclass
class Forwarder:
    """POSTs a verified delivery, body and headers as received, to one URL; its answer (status,
    first 4 KB of the body) becomes the receiver's. Unreachable: 502; too slow: 504."""

    url: str
    http: httpx.Client = field(
        default_factory=lambda: httpx.Client(timeout=FORWARD_TIMEOUT_SECONDS, follow_redirects=False)
    )

    def forward(self, delivery: Delivery) -> tuple[Answer, str | None]:
        """The answer to give, and what went wrong (None when the forward was answered)."""
        headers = {name: value for name, value in delivery.headers.items() if name not in _NOT_FORWARDED}
        try:
            response = self.http.post(self.url, content=delivery.body, headers=headers)
        except httpx.TimeoutException:
            return Answer(504, b"forward timed out"), f"{self.url} did not answer within {FORWARD_TIMEOUT_SECONDS:g} s"
        except httpx.HTTPError as exc:
            return Answer(502, b"forward failed"), f"{self.url} could not be reached ({type(exc).__name__}: {exc})"
        kind = response.headers.get("content-type", "application/octet-stream")
        return Answer(response.status_code, response.content[:ANSWER_BYTES], kind), None

    def close(self) -> None:
        self.http.close()


class Receiver(ThreadingHTTPServer):
    """Listens on 127.0.0.1:`port` (0: a free one) from construction; `start()` serves in a daemon
    thread. Until `secret` is set (after the endpoint is registered) every POST is answered 503."""

    daemon_threads = True

    def __init__(self, port: int, *, verified: Verified, refused: Refused) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.secret: str | None = None
        self.verified = verified
        self.refused = refused
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a sender that hung up mid-answer is its own business; the command goes on


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass  # the command prints its own line per delivery

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._answer(Answer(411, b"Content-Length required"))
            return
        if int(length) > MAX_BODY_BYTES:
            self._answer(Answer(413, b"too large"))
            return
        body = self.rfile.read(int(length))
        secret = self.server.secret
        if secret is None:
            self._answer(Answer(503, b"not registered yet"))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            verify(headers, body, secret)
        except InvalidSignature as exc:
            self.server.refused(self.path, str(exc))
            self._answer(Answer(400, b"invalid signature"))
            return
        self._answer(self.server.verified(Delivery(self.path, headers, body)))

    def do_GET(self) -> None:
        self._answer(Answer(405, b"deliveries are POSTed"))

    def _answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)
