"""A webhook receiver of the test process on 127.0.0.1 (the local stack delivers over http to
loopback only): it records every POST, verifies its signature with the `standardwebhooks` package
(not with our code) and answers what the test scripted per webhook-id, 200 otherwise."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    webhook_id: str
    event: dict[str, Any]
    verified: bool
    status: int
    """What the receiver answered."""
    received_at: float = 0.0
    """time.time() when the body had been read, before verifying it (the benchmarks' delivery lag)."""


@dataclass
class Receiver:
    base_url: str
    secret: str | None = None
    """Set once the endpoint is created: every delivery is verified against it."""
    deliveries: list[Delivery] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    """event type → the statuses answered to its first deliveries, in order (then 200)."""
    answered: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def answer_for(self, webhook_id: str, event_type: str) -> int:
        with self.lock:
            script = self.scripts.get(event_type, [])
            seen = self.answered[webhook_id]
            self.answered[webhook_id] += 1
            return script[seen] if seen < len(script) else 200

    def record(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)

    def of_type(self, event_type: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.event.get("type") == event_type]

    def by_id(self, event_type: str) -> dict[str, list[Delivery]]:
        grouped: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in self.of_type(event_type):
            grouped[delivery.webhook_id].append(delivery)
        return dict(grouped)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received_at = time.time()
            headers = {name.lower(): value for name, value in self.headers.items()}
            verified = False
            if receiver.secret is not None:
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            event = json.loads(body)
            webhook_id = headers.get("webhook-id", "")
            status = receiver.answer_for(webhook_id, str(event.get("type")))
            receiver.record(Delivery(webhook_id, event, verified, status, received_at))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(base_url="")

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), _handler(receiver))
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="webhook receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
