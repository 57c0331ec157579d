"""Argument types and the parser every user command starts from: the common options (API,
credentials, --plain), the task selectors and the task type."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from taskapi.client.cli.runtime import (
    DEFAULT_URL,
    ENV_ACCOUNT,
    ENV_API_KEY,
    ENV_TOKEN,
    ENV_URL,
    Runtime,
    with_client_logs,
)
from taskapi.models import limits
from taskapi.models.domain import TaskStatus, TaskType

_SOURCE_TEXT = re.compile(limits.SOURCE_TEXT_PATTERN)

# ------------------------------------------------------------------ argument types


def positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def identifier(raw: str) -> str:
    """A group or source id: any text of 1-256 characters without control characters."""
    value = raw.strip()
    if not value or len(value) > limits.MAX_SOURCE_ID_LENGTH or not _SOURCE_TEXT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{raw!r} must be 1-{limits.MAX_SOURCE_ID_LENGTH} characters without control characters"
        )
    return value


def statuses(raw: str) -> str:
    """One task status or several, comma-separated, any case: upper case, repeats dropped."""
    values = [part.strip().upper() for part in raw.split(",") if part.strip()]
    known = {s.value for s in TaskStatus}
    unknown = [v for v in values if v not in known]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected one or more of {', '.join(s.value for s in TaskStatus)}")
    return ",".join(dict.fromkeys(values))


@dataclass(frozen=True)
class Threshold:
    """Upload when the file has more than `rows` rows, or more than `size` bytes."""

    rows: int | None = None
    size: int | None = None

    def __str__(self) -> str:
        return f"{self.rows} rows" if self.rows is not None else f"{self.size} bytes"


_UNITS: Final = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_UNITS_G: Final = {"g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def threshold(raw: str) -> Threshold:
    """N or Nrows: rows; NB, NKB, NMB, NGB (powers of 1024): bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", raw.lower())
    if match:
        number, unit = int(match.group(1)), match.group(2)
        if unit in ("", "row", "rows"):
            return Threshold(rows=number)
        factor = {**_UNITS, **_UNITS_G}.get(unit)
        if factor is not None:
            return Threshold(size=number * factor)
    raise argparse.ArgumentTypeError(f"{raw!r}: expected rows (1000, 1000rows) or a size (512KB, 5MB, 1GB)")


# ------------------------------------------------------------------ parsers


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    api = common.add_argument_group("API")
    api.add_argument("--url", help=f"the API's base URL (default ${ENV_URL}, else {DEFAULT_URL})")
    api.add_argument("--api-key", help=f"API key, sent as X-API-Key (default ${ENV_API_KEY})")
    api.add_argument("--token", help=f"bearer token, with --account (default ${ENV_TOKEN})")
    api.add_argument("--account", help=f"account id for --token, sent as X-Account-ID (default ${ENV_ACCOUNT})")
    common.add_argument("--plain", action="store_true", help="plain text output (the default when not a terminal)")
    return common


@dataclass(frozen=True)
class About:
    """A command's name, its line in `taskapi --help` and the description atop its own --help."""

    name: str
    help: str
    description: str


class Command(Protocol):
    """A user command: a module with its ABOUT, the arguments of its own, and `run(args)`, which
    raises taskapi.cli_support.CommandFailed on failure."""

    ABOUT: About

    def add_arguments(self, parser: argparse.ArgumentParser, /) -> None: ...

    def run(self, args: argparse.Namespace, /) -> None: ...


def add_command(commands: Any, command: Command, runtime: Runtime | None) -> None:
    """The command's parser in `commands` (the taskapi parser's subparsers action): the common
    options, then its own; its handler runs it with the client's logs on stderr."""
    about = command.ABOUT
    parser = commands.add_parser(
        about.name, parents=[_common_options()], help=about.help, description=about.description
    )
    command.add_arguments(parser)
    handler: Callable[[argparse.Namespace], None] = with_client_logs(command.run)
    parser.set_defaults(handler=handler, runtime=runtime)


def add_selectors(parser: argparse.ArgumentParser, verb: str) -> None:
    """--group, --source or --ids: which tasks to `verb`."""
    group = parser.add_argument_group(f"which tasks to {verb} (one of)").add_mutually_exclusive_group()
    group.add_argument("--group", type=identifier, help="tasks of this task_source_group_id")
    group.add_argument(
        "--source",
        dest="sources",
        action="extend",
        nargs="+",
        metavar="S",
        help="tasks of these task_source_ids (repeatable, or comma-separated)",
    )
    group.add_argument(
        "--ids", action="extend", nargs="+", metavar="ID", help="these task ids (repeatable, or comma-separated)"
    )


def add_type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", dest="task_type", choices=[t.value for t in TaskType], help="only this task type")
