"""What every `taskapi` command shares, operator (taskapi.cli) and user (taskapi.client.cli) alike:
the exit codes, the failure a command raises, and how a parsed command is run.

It imports nothing of the service or the client, so the operator commands load no httpx and the
user commands (the `taskapi[client]` extra) no boto3."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C: what was started (tasks, an upload) goes on."""


class CommandFailed(Exception):
    """An expected failure: its message is the whole story, printed without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parses argv and runs the chosen command's `handler(args)`: its exit code, a CommandFailed
    as one line on stderr. Any other exception propagates."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help already
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        args.handler(args)
    except CommandFailed as exc:
        print(f"taskapi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return EXIT_OK
