"""The local stack's moto server: moto's own WSGI app and request handler (what
moto.server.ThreadedMotoServer serves), behind DynamoDBIsolation.

The local stack runs it in a process of its own (MotoServerProcess, `python -m infra.moto_server
HOST PORT`), and that process alone applies the corrections of infra/moto_corrections.py to its
moto: they replace moto's functions for the whole process, for good. The stack's process (API,
pollers, engines) and moto then also each have a core, where in one process they shared one
interpreter lock. EmbeddedMotoServer serves on a thread of the process that starts it with moto as
that process has it: a test's, whose mock_aws tests must keep moto's own functions, gets no
correction but DynamoDBIsolation (a WSGI wrapper that changes nothing in moto). Tests of the
corrections start the child process, as the local stack does."""

from __future__ import annotations

import argparse
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import moto_corrections
from infra.moto_corrections import DynamoDBIsolation


class EmbeddedMotoServer:
    """moto in server mode on a thread of this process (ThreadedMotoServer's interface), with this
    process's moto: corrected only where moto_corrections.apply() ran (the child of
    MotoServerProcess)."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

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
    same interface, serving the corrected moto (infra/moto_corrections.py: the child applies the
    corrections, and fails to start on a moto of another version). The child prints "listening
    HOST PORT" once it serves, and stops when its stdin closes: when stop() closes it, or when this
    process ends however it ends (a kill included), so no server outlives its stack. It ignores
    SIGINT: Ctrl-C in a terminal reaches the whole process group, and the stack's workers still
    need AWS while they wind down."""

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
    try:
        # This process exists to serve moto: the corrections are applied here and nowhere else.
        moto_corrections.apply()
    except moto_corrections.MotoCorrectionError as exc:
        print(f"cannot start the moto server: {exc}", file=sys.stderr)
        return 1
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
