"""`taskapi webhooks listen [--forward-to URL] [--events TYPES] [--group ID] [--port N]
[--public-url URL] [--json]`

Starts a receiver on 127.0.0.1 (--port, else a free port), registers a temporary webhook endpoint
for it (POST /api/webhooks; the secret comes from that answer) and prints each delivery whose
signature verifies, one line each: time received, type, event id, its task, group or upload, and
status (--json: the body, one JSON object per line). A delivery that does not verify is answered
400, with a warning on stderr. --forward-to POSTs each verified body with its headers to a URL and
answers the sender with that URL's status (502 when it cannot be reached).

Ctrl-C or SIGTERM stops it: the endpoint is deleted (exit 0; 1 if the delete failed, with how to
delete it by hand). An error deletes it too, and so does a registration whose answer was lost
(the endpoint is found by its description, which holds a random tag).

Only the local stack accepts an http URL to a loopback host. In AWS the API needs a public https
URL: run a tunnel to the receiver (e.g. `cloudflared tunnel --url http://127.0.0.1:8765`) and pass
its URL as --public-url with --port 8765; the receiver still listens on 127.0.0.1.

Status lines (where it listens, the endpoint and its secret) go to stdout, or to stderr with --json
so that stdout holds JSON lines only; warnings always go to stderr."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from taskapi.cli_support import EXIT_INTERRUPTED, EXIT_USAGE, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.cli.arguments import About, identifier
from taskapi.client.cli.credentials import failures, open_client
from taskapi.client.cli.output import Output
from taskapi.client.cli.receiver import Answer, Delivery, Forwarder, Receiver
from taskapi.client.cli.runtime import Runtime, runtime_of
from taskapi.client.errors import NotFound, TaskApiError, UnprocessableEntity
from taskapi.models.webhooks import WebhookCreatedOut
from taskapi.webhooks.models import EVENT_TYPES

WAIT_SECONDS: Final = 0.5
"""How often the main thread wakes while the receiver serves (Ctrl-C interrupts the wait)."""
TAG_PREFIX: Final = "taskapi webhooks listen"
_HTTP_URL = re.compile(r"^https?://[^/\s]+\S*$")
_LOOPBACK_REFUSALS: Final = ("webhook_url_scheme", "webhook_url_address")
"""The API's error types for a URL it will not deliver to (taskapi.services.webhooks.check_url)."""


# ------------------------------------------------------------------ arguments


def event_types(raw: str) -> list[str]:
    """Event types, comma-separated (or `all`, task.progress included)."""
    values = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if values == ["all"]:
        return list(EVENT_TYPES)
    unknown = [v for v in values if v not in EVENT_TYPES]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected all, or one or more of {', '.join(EVENT_TYPES)}")
    return values


def port_number(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (1-65535)")
    return int(raw)


def http_url(raw: str) -> str:
    if not _HTTP_URL.match(raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not an http(s) URL")
    return raw


def https_url(raw: str) -> str:
    if not raw.lower().startswith("https://") or not _HTTP_URL.match(raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not an https URL (the API delivers to https only in AWS)")
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        type=event_types,
        metavar="TYPES",
        help="event types, comma-separated, or all (default: every type but task.progress)",
    )
    parser.add_argument("--group", type=identifier, metavar="ID", help="only events of this task_source_group_id")
    parser.add_argument("--forward-to", type=http_url, metavar="URL", help="POST each verified delivery here too")
    parser.add_argument(
        "--port", type=port_number, default=0, metavar="N", help="port on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument(
        "--public-url",
        type=https_url,
        metavar="URL",
        help="register this https URL (a tunnel to the receiver) instead of http://127.0.0.1:PORT/; "
        "needed outside the local stack",
    )
    parser.add_argument("--json", action="store_true", help="print each verified body as one JSON line")


# ------------------------------------------------------------------ what is printed


def _subject(event: dict[str, Any]) -> tuple[str, str]:
    """(what the event is about, its status) from the payload's data."""
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    kind = str(event.get("type", ""))
    if kind.startswith("group."):
        counts = data.get("counts")
        counts = counts if isinstance(counts, dict) else {}
        status = ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "-"
        return f"group {data.get('group_id') or event.get('group_id') or '-'}", status
    if kind.startswith("upload."):
        return f"upload {data.get('upload_id', '-')}", str(data.get("status", "-"))
    return f"task {data.get('task_id', '-')}", str(data.get("status", "-"))


def event_line(body: bytes, received: datetime, repeat: bool) -> str:
    """`HH:MM:SS  type  id  task T  STATUS`, from a verified body."""
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return f"{received:%H:%M:%S}  (not a JSON object: {len(body)} bytes)"
    subject, status = _subject(event)
    line = f"{received:%H:%M:%S}  {event.get('type', '?'):<16}  {event.get('id', '?')}  {subject}  {status}"
    return line + ("  (again)" if repeat else "")


def json_line(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if "\n" not in text:
        return text
    try:
        return json.dumps(json.loads(text), separators=(",", ":"))
    except ValueError:
        return text.replace("\n", " ")


def _warn(message: str) -> None:
    print(f"taskapi: warning: {message}", file=sys.stderr, flush=True)


class Printer:
    """Prints from the receiver's threads, one delivery at a time."""

    def __init__(self, out: Output, *, as_json: bool, forward: Forwarder | None) -> None:
        self.out = out
        self.as_json = as_json
        self.forward = forward
        self.lock = threading.Lock()
        self.seen: set[str] = set()

    def status(self, text: str) -> None:
        """A status line: stdout, or stderr with --json."""
        with self.lock:
            if self.as_json:
                print(text, file=sys.stderr, flush=True)
            else:
                self.out.line(text)

    def verified(self, delivery: Delivery) -> Answer:
        received = datetime.now()
        answer, problem = self.forward.forward(delivery) if self.forward else (Answer(204), None)
        msg_id = delivery.headers.get("webhook-id", "")
        with self.lock:
            repeat = msg_id in self.seen
            self.seen.add(msg_id)
            if self.as_json:
                self.out.raw(json_line(delivery.body))
                self.out.stream.flush()
            else:
                forwarded = f"  -> {answer.status}" if self.forward else ""
                self.out.line(event_line(delivery.body, received, repeat) + forwarded)
            if problem:
                _warn(f"forward of {msg_id} failed, answered {answer.status}: {problem}")
        return answer

    def refused(self, path: str, reason: str) -> None:
        with self.lock:
            _warn(f"refused a delivery to {path} (answered 400): {reason}")


# ------------------------------------------------------------------ the endpoint's life


class Terminated(Exception):
    """SIGTERM: stop as Ctrl-C does."""


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises Terminated in the main thread (elsewhere, e.g. a test's thread, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _refused_loopback(exc: BaseException) -> bool:
    if not isinstance(exc, UnprocessableEntity) or not isinstance(exc.detail, list):
        return False
    return any(isinstance(p, dict) and p.get("type") in _LOOPBACK_REFUSALS for p in exc.detail)


def _wrote_nothing(exc: BaseException) -> bool:
    """A 4xx is a refusal, and a failure to connect sent nothing: no endpoint was created."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    return isinstance(exc, TaskApiError) and 400 <= exc.status_code < 500


def _remove_strays(api: TaskApiClient, tag: str) -> str | None:
    """Deletes the endpoints a lost registration may have left (its description is `tag`); what
    went wrong, when that could not be checked."""
    try:
        for endpoint in api.list_webhooks():
            if endpoint.description == tag:
                api.delete_webhook(endpoint.id)
    except (TaskApiError, httpx.HTTPError, ValidationError) as exc:
        return f"could not check for an endpoint left by the failed registration ({exc}); look for description {tag!r}"
    return None


def _register(api: TaskApiClient, args: argparse.Namespace, url: str, tag: str) -> WebhookCreatedOut:
    """The endpoint, or the failure after deleting what a registration whose answer was lost (or
    interrupted) may have created."""
    try:
        return api.create_webhook(url, events=args.events, task_source_group_id=args.group, description=tag)
    except BaseException as exc:
        note = None if _wrote_nothing(exc) else _remove_strays(api, tag)
        if note:
            exc.add_note(note)
            if isinstance(exc, Exception):
                raise CommandFailed(f"cannot register the webhook endpoint: {exc}; {note}") from exc
        if _refused_loopback(exc) and not args.public_url:
            port = urlsplit(url).port
            raise CommandFailed(
                f"the API refused {url}: {exc}. Only the local stack delivers to an http URL on this machine; "
                "elsewhere the API needs a public https URL. Run a tunnel to the receiver (e.g. "
                f"`cloudflared tunnel --url http://127.0.0.1:{port}` or `ngrok http {port}`) and pass its URL: "
                f"--public-url https://... --port {port}"
            ) from exc
        raise


def _delete(api: TaskApiClient, endpoint_id: str) -> str | None:
    """Deletes the endpoint; what went wrong, else None (already gone counts as deleted)."""
    try:
        api.delete_webhook(endpoint_id)
    except NotFound:
        return None
    except (TaskApiError, httpx.HTTPError) as exc:
        return (
            f"could not delete webhook endpoint {endpoint_id} ({exc}); delete it with "
            f"curl -X DELETE {api.base_url}/api/webhooks/{endpoint_id} and your credentials"
        )
    return None


def _wait(runtime: Runtime) -> None:
    while True:
        runtime.sleep(WAIT_SECONDS)


def run(args: argparse.Namespace) -> None:
    runtime = runtime_of(args)
    out = Output(runtime, plain=args.plain or args.json)
    api = open_client(args, runtime)
    forward = Forwarder(args.forward_to) if args.forward_to else None
    printer = Printer(out, as_json=args.json, forward=forward)
    try:
        receiver = Receiver(args.port, verified=printer.verified, refused=printer.refused)
    except OSError as exc:
        api.close()
        if forward:
            forward.close()
        raise CommandFailed(f"cannot listen on 127.0.0.1:{args.port}: {exc}", EXIT_USAGE) from exc
    url = args.public_url or f"http://127.0.0.1:{receiver.port}/"
    tag = f"{TAG_PREFIX} {secrets.token_hex(4)} (temporary)"
    try:
        with api, _stop_on_sigterm():
            try:
                with failures("register the webhook endpoint", api):
                    created = _register(api, args, url, tag)
            except (KeyboardInterrupt, Terminated) as exc:
                notes = " ".join(getattr(exc, "__notes__", []))
                stopped = f"interrupted while registering the endpoint. {notes}".strip()
                raise CommandFailed(stopped, EXIT_INTERRUPTED) from None
            _listen(api, receiver, printer, created, url, runtime)
    finally:
        receiver.stop()
        if forward:
            forward.close()


def _listen(
    api: TaskApiClient, receiver: Receiver, printer: Printer, created: WebhookCreatedOut, url: str, runtime: Runtime
) -> None:
    """Serves until Ctrl-C or SIGTERM (then the endpoint is deleted and the command ends well) or
    an error (the endpoint is deleted, the error goes on)."""
    receiver.secret = created.secret
    receiver.start()
    local = f"http://127.0.0.1:{receiver.port}/"
    printer.status(f"Listening on {local}" + (f" (registered as {url})" if url != local else ""))
    events = ", ".join(created.events)
    group = f", group {created.task_source_group_id}" if created.task_source_group_id else ""
    printer.status(f"Webhook endpoint {created.id} ({events}{group}); secret {created.secret}")
    if printer.forward:
        printer.status(f"Forwarding verified deliveries to {printer.forward.url}")
    printer.status("Ctrl-C stops listening and deletes the endpoint.")
    problem: str | None = None
    try:
        _wait(runtime)
    except (KeyboardInterrupt, Terminated):
        problem = _delete(api, created.id)
    except BaseException as exc:
        problem = _delete(api, created.id)
        if problem:
            exc.add_note(problem)
        raise
    if problem:
        raise CommandFailed(problem)
    printer.status(f"Stopped listening; webhook endpoint {created.id} is deleted.")


ABOUT = About(
    "listen",
    help="receive webhooks on this machine through a temporary endpoint",
    description="Start a receiver on 127.0.0.1, register a temporary webhook endpoint for it, and print each "
    "delivery whose signature verifies (400 to one that does not); optionally forward them to --forward-to. "
    "Ctrl-C deletes the endpoint. Outside the local stack the API needs a public https URL: --public-url.",
)
