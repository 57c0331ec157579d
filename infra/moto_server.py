"""The embedded moto server of the local stack: moto's own WSGI app and request handler (what
moto.server.ThreadedMotoServer serves), with a correction that concurrent processing needs (1)
and corrections of its speed (2-4).

1. Isolation of DynamoDB requests. moto serves every request on its own thread without locks, and
   its TransactWriteItems makes a snapshot of each table it touches, applies the items one by one
   and, when any condition fails, puts the snapshot back — dropping every write other threads
   made meanwhile (a worker's claim, progress or completion). DynamoDB itself isolates
   transactions from other writes, so here DynamoDB requests are served one at a time. Other
   services (SQS long polls, S3) stay concurrent.
2. Transactions roll back the items they touch, not a copy of the table. moto 5.2 deep-copies
   the whole table once per *item* of a TransactWriteItems call (100 full copies of a growing
   table for a bulk create of 100) to put the copy back if the call fails. Here the items the
   call names (at most 100) are copied first and put back as they were if it fails, whatever the
   failure; the table is not copied. Should an item's key not be readable beforehand, the call
   falls back to one copy of each table it touches (not one per item).
3. SQS without a scan per message sent. moto 5.2's SendMessage builds every attribute of the queue
   to read one (ContentBasedDeduplication), and three of them count the waiting messages, so
   sending to a queue holding n messages costs O(n) and filling it O(n^2): 5,000 queued tasks
   took minutes of scanning. While a message is sent, the queue answers that one attribute alone.
   ReceiveMessage does the same for each message it returns (it builds all the queue's attributes
   three times to read MessageRetentionPeriod): the retention check reads that attribute alone.
   A message's visible/delayed checks read the clock as time.time() (the same milliseconds since
   the epoch that moto computes through two datetime conversions, ten times slower), since every
   ReceiveMessage checks every message in the queue.
4. moto finds the service of each request by listing its own package directory (a listdir and
   ~150 isdir calls per request); the listing is made once.

The local stack runs this server in a process of its own (MotoServerProcess, `python -m
infra.moto_server`): the stack's process (API, pollers, engines) and moto then each have a core,
where in one process they shared one interpreter lock. Tests start it on a thread of theirs
(EmbeddedMotoServer).

None changes an answer moto gives; an external endpoint (AWS_ENDPOINT_URL) gets none of them."""

from __future__ import annotations

import argparse
import copy
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

log = logging.getLogger("taskapi.local")

_DYNAMODB_TARGET_PREFIX = "DynamoDB_"
_snapshots = threading.local()
_sending = threading.local()


class DynamoDBIsolation:
    """WSGI middleware: DynamoDB requests (X-Amz-Target DynamoDB_*) one at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET_PREFIX):
            return self._app(environ, start_response)
        with self._lock:
            # The body is produced while the lock is held: moto computes it in the call anyway.
            return list(self._app(environ, start_response))


_LIVE = "live"
"""_snapshots.copies when the transaction keeps its own undo log: a table "copy" is the table."""


def _deepcopy_once_per_transaction(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """copy.deepcopy, except for a table inside a TransactWriteItems call: with an undo log the
    table itself (nothing to copy), otherwise the call's first copy of it (the table cannot
    change in between: see DynamoDBIsolation)."""
    from moto.dynamodb.models.table import Table

    copies: dict[int, Any] | str | None = getattr(_snapshots, "copies", None)
    if copies is None or not isinstance(value, Table):
        return copy.deepcopy(value, memo)
    if copies == _LIVE:
        return value
    assert isinstance(copies, dict)
    if id(value) not in copies:
        copies[id(value)] = copy.deepcopy(value, memo)
    return copies[id(value)]


UndoEntry = tuple[Any, Any, Any, Any]
"""(table, hash value, range value or None, a copy of the item before the call or None)."""


def _undo_log(backend: Any, transact_items: list[dict[str, Any]]) -> list[UndoEntry] | None:
    """A copy of every item the transaction names, as it is before the call (None for absent
    ones); None when some operation's table or key cannot be read (moto then refuses the call)."""
    entries: list[UndoEntry] = []
    try:
        for transact_item in transact_items:
            ((op_type, op),) = transact_item.items()
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            hash_value, range_value = backend.get_keys_value(table, key)
            current = table.get_item(hash_value, range_value)
            entries.append((table, hash_value, range_value, copy.deepcopy(current)))
    except Exception:  # any malformed operation: moto refuses it, its snapshots undo the rest
        return None
    return entries


def _undo(entries: list[UndoEntry]) -> None:
    """Every named item back as it was (newest first: a key named twice ends as it began)."""
    for table, hash_value, range_value, before in reversed(entries):
        if range_value is None:
            if before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before
        elif before is None:
            table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = before


def _patch_transaction_snapshots() -> None:
    import moto.dynamodb.models as dynamodb_models

    backend = dynamodb_models.DynamoDBBackend
    original = backend.transact_write_items
    if getattr(original, "_taskapi_local", False):
        return
    if getattr(dynamodb_models, "copy", None) is not copy:
        log.warning("moto's DynamoDB models changed; its transaction snapshots are left as they are")
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        entries = _undo_log(self, transact_items)
        _snapshots.copies = {} if entries is None else _LIVE
        try:
            original(self, transact_items)
        except BaseException:
            if entries is not None:
                _undo(entries)
            raise
        finally:
            del _snapshots.copies

    transact_write_items._taskapi_local = True  # type: ignore[attr-defined]
    dynamodb_models.copy = SimpleNamespace(deepcopy=_deepcopy_once_per_transaction, copy=copy.copy)  # type: ignore[assignment]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _content_based_deduplication_only(queue: Any) -> dict[str, Any]:
    """What moto's Queue.attributes answers for ContentBasedDeduplication, without the rest."""
    if not queue.fifo_queue:
        return {}
    value = queue.content_based_deduplication
    return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}


def _patch_sqs_scans() -> None:
    from moto.sqs.models import Message, Queue, SQSBackend

    original_send = SQSBackend.send_message
    if getattr(original_send, "_taskapi_local", False):
        return
    original_attributes = Queue.attributes
    if not isinstance(original_attributes, property) or original_attributes.fget is None:
        log.warning("moto's SQS models changed; SendMessage is left as it is")
        return
    all_attributes = original_attributes.fget

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_sending, "active", False):
            return _content_based_deduplication_only(self)
        return all_attributes(self)  # type: ignore[no-any-return]

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = False

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > time.time())

    def visible(self: Any) -> bool:
        return time.time() * 1000.0 > self.visible_at  # type: ignore[no-any-return]

    def delayed(self: Any) -> bool:
        return time.time() * 1000.0 < self.delayed_until  # type: ignore[no-any-return]

    send_message._taskapi_local = True  # type: ignore[attr-defined]
    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    Message.visible = property(visible)  # type: ignore[method-assign,assignment]
    Message.delayed = property(delayed)  # type: ignore[method-assign,assignment]


def _patch_module_listing() -> None:
    from moto import backends

    listing = backends.list_of_moto_modules
    if getattr(listing, "_taskapi_local", False):
        return
    modules = tuple(listing())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules._taskapi_local = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


class EmbeddedMotoServer:
    """moto in server mode on a thread of this process (ThreadedMotoServer's interface)."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        _patch_transaction_snapshots()
        _patch_sqs_scans()
        _patch_module_listing()
        app = DynamoDBIsolation(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto server", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("start() the server first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None


READY_SECONDS = 60
"""How long MotoServerProcess waits for the child to say where it listens."""
STOP_SECONDS = 10
_REPO_ROOT = Path(__file__).resolve().parents[1]


class MotoServerError(Exception):
    """The child moto server did not start (its output says why)."""


class MotoServerProcess:
    """EmbeddedMotoServer in a child process (`python -m infra.moto_server HOST PORT`), with the
    same interface. The child prints "listening HOST PORT" once it serves, and stops when its
    stdin closes: when stop() closes it, or when this process ends however it ends (a kill
    included), so no server outlives its stack. It ignores SIGINT: Ctrl-C in a terminal reaches
    the whole process group, and the stack's workers still need AWS while they wind down."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._address: tuple[str, int] | None = None

    def start(self) -> None:
        # `-m` from the repository's root: the child imports infra.moto_server as this process does.
        process = subprocess.Popen(  # noqa: S603 - this interpreter and a fixed module
            [sys.executable, "-m", "infra.moto_server", self._host, str(self._port)],
            cwd=_REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._process = process
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=READY_SECONDS)
        line = process.stdout.readline().decode(errors="replace").split() if ready else []
        process.stdout.close()
        if len(line) != 3 or line[0] != "listening":
            self.stop()
            reason = "did not start in time" if not ready else f"exited with code {process.returncode}"
            raise MotoServerError(f"the moto server process {reason}")
        self._address = (line[1], int(line[2]))

    def get_host_and_port(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("start() the server first")
        return self._address

    def stop(self) -> None:
        process, self._process, self._address = self._process, None, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.moto_server", description=MotoServerProcess.__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s [moto] %(message)s")
    # werkzeug sets its logger to INFO (a line per request) unless it has a level of its own.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = EmbeddedMotoServer(args.host, args.port)
    try:
        server.start()
    except OSError as exc:
        print(f"cannot start the moto server on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = server.get_host_and_port()
    print(f"listening {host} {port}", flush=True)
    # The parent reads that line only: later output (moto prints some warnings) goes to stderr,
    # where a full pipe cannot block the server.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdin.buffer.read()  # until the parent closes it or ends
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
