"""User commands of `taskapi`, over HTTP through TaskApiClient (the operator commands in taskapi.cli
talk to AWS instead). taskapi.cli registers them with `register(commands)`.

    taskapi submit FILE [--group G] [--format jsonl|json|csv] [--upload-threshold N|Nrows|NKB|NMB]
                        [--timeout SECONDS] [--dry-run]
    taskapi watch [SELECTOR] [--type T] [--interval SECONDS] [--timeout SECONDS]
    taskapi cancel SELECTOR [--status S] [--type T] [--reason TEXT] [--dry-run]
    taskapi regenerate SELECTOR [--status S] [--type T] [--force] [--keep-results] [--dry-run]
    taskapi tasks [SELECTOR] [--status S] [--type T] [--priority P] [--limit N | --all] [--json]

SELECTOR is one of --group G, --source S [S ...] (repeatable, or comma-separated) and --ids ID
[ID ...]; any number of sources or ids (they are sent 50 sources / 100 ids per request).

Every command takes --url (default $TASKAPI_URL, else http://127.0.0.1:8000) and credentials:
--api-key ($TASKAPI_API_KEY), or --token ($TASKAPI_TOKEN) with --account ($TASKAPI_ACCOUNT_ID).
A flag wins over the environment; an API key and a token given at the same level are refused.
--plain prints plain lines and aligned columns; it is also the output whenever stdout is not a
terminal (CI logs, pipes), since rich would show a progress bar or live table there only at the end.

Exit codes (taskapi.cli_support): 0 done; 1 failed — the API or the bucket refused, or could not be
reached; `submit` saw invalid rows (the valid ones are created) or its upload FAILED; `watch` saw a
task end FAILED, timed out, or nothing matched; 2 invalid arguments or missing credentials; 130
interrupted (Ctrl-C: the tasks or the upload go on).

One module per command, documented there, each with `add_arguments(parser)`, `run(args)` and, last,
ABOUT (its name and help texts): submit (with files, upload and tally), watch, cancel and
regenerate (with bulk), tasks. `register` gives each the common options. They share
arguments (types, the common options, selectors), runtime (what tests replace), credentials (the
API client and its failures), selection and output. None of them imports boto3 or the service: the
`taskapi[client]` extra is httpx, rich and pydantic.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from taskapi.cli_support import run_command
from taskapi.client.cli import cancel, regenerate, submit, tasks, watch
from taskapi.client.cli.arguments import Command, add_command
from taskapi.client.cli.runtime import Runtime

COMMANDS: tuple[Command, ...] = (submit, watch, cancel, regenerate, tasks)


def register(commands: Any, runtime: Runtime | None = None) -> None:
    """Adds submit, watch, cancel, regenerate and tasks to `commands` (the subparsers action of the
    taskapi parser). Each sets `handler(args)`, which raises taskapi.cli_support.CommandFailed on
    failure, and `runtime` (None: the real one)."""
    for command in COMMANDS:
        add_command(commands, command, runtime)


def build_parser(runtime: Runtime | None = None) -> argparse.ArgumentParser:
    """A parser of these commands alone (taskapi.cli's parser adds them to the operator commands)."""
    parser = argparse.ArgumentParser(prog="taskapi", description="Task API user commands.")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), runtime)
    return parser


def main(argv: Sequence[str] | None = None, runtime: Runtime | None = None) -> int:
    """Runs one of these commands as taskapi.cli.main does: the exit code, errors on stderr."""
    return run_command(build_parser(runtime), argv)
