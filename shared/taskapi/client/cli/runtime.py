"""What the user commands reach outside themselves (Runtime), the environment variables that name
the API and credentials, and where the client's log lines go while a command runs."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TextIO

import httpx

ENV_URL: Final = "TASKAPI_URL"
ENV_API_KEY: Final = "TASKAPI_API_KEY"
ENV_TOKEN: Final = "TASKAPI_TOKEN"  # noqa: S105 (a variable name)
ENV_ACCOUNT: Final = "TASKAPI_ACCOUNT_ID"
DEFAULT_URL: Final = "http://127.0.0.1:8000"


@dataclass
class Runtime:
    """What the commands reach outside themselves; tests replace parts of it.

    http: the httpx.Client the API client sends through (starlette's TestClient in unit tests).
    upload_http: the one that POSTs files to their presigned URL and reads reports (default: http).
    sleep: waits between polls, and the client's retry waits. clock: seconds (monotonic), for
    --timeout. force_terminal / width: passed to rich's Console (None: detect)."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    http: httpx.Client | None = None
    upload_http: httpx.Client | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    stdout: TextIO | None = None
    force_terminal: bool | None = None
    width: int | None = None


def runtime_of(args: argparse.Namespace) -> Runtime:
    """The Runtime `register` was given, else the real one."""
    return args.runtime if getattr(args, "runtime", None) is not None else Runtime()


def with_client_logs(handler: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """The handler, with the client's log lines (retry notices) as plain lines on stderr while it
    runs: not on stdout as the service's JSON logs, which importing its modules may have set up."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> None:
        log = logging.getLogger("taskapi.client")
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("taskapi: %(message)s"))
        before = (log.propagate, log.level)
        log.addHandler(stream)
        log.propagate = False
        log.setLevel(logging.INFO)
        try:
            handler(args)
        finally:
            log.removeHandler(stream)
            log.propagate, log.level = before[0], before[1]

    return run
