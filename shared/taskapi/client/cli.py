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

Exit codes (those of taskapi.cli): 0 done; 1 failed — the API or the bucket refused, or could not
be reached; `submit` saw invalid rows (the valid ones are created) or its upload FAILED; `watch`
saw a task end FAILED, timed out, or nothing matched; 2 invalid arguments or missing credentials;
130 interrupted (Ctrl-C: the tasks or the upload go on).

submit
    The file is parsed and validated locally by taskapi.ingest.rows, the parser the ingest function
    runs (for JSON Lines with its check of the first line too), so a row is judged as an upload
    would judge it. The format comes from the extension (.jsonl/.ndjson, .json, .csv) or --format.
    Files up to --upload-threshold (default 1000 rows; or a size: 512KB, 5MB) go through bulk
    calls; larger ones through an upload. Deciding reads at most threshold + 1 rows (or only the
    file's size), so a large file is not parsed whole before it is sent.
    Bulk calls: every row is read first; a file that cannot be read as a whole (FileInvalid) sends
    nothing, invalid rows are reported (row, field, message) and never sent, valid ones go 100 per
    POST /api/tasks/bulk. A row without task_id gets taskapi.ingest.rows.derived_task_id over a
    digest of the file's bytes and --group, so submitting the same file again creates nothing twice
    (its rows are "existing"); a task_id repeated in the file is sent once and its later rows count
    as existing, as ingest answers them. --group G sets task_source_group_id on rows that have
    none. "existing" is known from GET /api/tasks?task_ids=... before each chunk (one extra GET per
    100 rows; a chunk that exists already is not sent). A failed call stops the submit after
    printing what was done: run the same command again to finish.
    Upload: POST /api/uploads (format, --group, the file's name), the file POSTed to the presigned
    URL (streamed from disk; refused locally when it is empty or above the upload's max_bytes),
    then GET /api/uploads/{id} every 2 seconds until COMPLETED or FAILED (--timeout: stop waiting,
    exit 1, the upload goes on). Progress bars: bytes uploaded, then rows ingested. The ingest
    function validates every row and derives missing ids from its upload id, so the same file
    uploaded twice creates its tasks twice (unlike bulk calls). The summary gives the upload id, its
    counts, error and report URL, and lists the first invalid rows read from the report.
watch
    Counts by status (GET /api/tasks/count/total with status=..., one call per status) and per task
    type (task_type=...: only for the types present, only for statuses whose overall count is not
    0, and the last type by subtraction; StatusCounter says when the types are counted again), every
    --interval seconds (default 5), until no task is PENDING, QUEUED or PROCESSING (confirmed by one
    count of the three together). While tasks move, a poll may count one twice or miss it. Exit 0
    when every task ended COMPLETED or CANCELLED, 1 when any ended FAILED (so `taskapi watch
    --group g && ...` goes on only after a clean run), 1 when nothing matches, 1 on --timeout.
cancel / regenerate
    A selector is required. cancel acts on the open tasks (PENDING, QUEUED, PROCESSING) unless
    --status says otherwise; regenerate on every matching task (the API skips QUEUED ones, and
    PROCESSING ones without --force). --keep-results sends reset_to_pending=false (the previous
    result stays visible until the new attempt replaces it). --dry-run only counts. The summary
    counts matched, acted on, skipped and not found tasks, and groups the skipped by reason.
tasks
    Newest first, 100 per request; --limit (default 50) or --all. A table (id, type, status,
    progress, group, updated) with "N of TOTAL tasks", or --json: one API task object per line.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

import httpx
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from taskapi.cli import EXIT_FAILED, EXIT_USAGE, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.errors import TaskApiError, Unauthorized
from taskapi.client.tasks import TaskFilterArgs
from taskapi.client.uploads import UploadRejected, UploadTimeout
from taskapi.ingest.rows import FileInvalid, Readable, Row, UploadFormat, parse_rows, read_json_settings
from taskapi.models import limits
from taskapi.models.domain import OPEN_STATUSES, Priority, TaskStatus, TaskType
from taskapi.models.requests import SharedVideoSettings
from taskapi.models.responses import BulkCancelOut, BulkRegenerateOut, TaskOut
from taskapi.models.uploads import UploadOut
from taskapi.uploads.ingest import check_jsonl_start

ENV_URL: Final = "TASKAPI_URL"
ENV_API_KEY: Final = "TASKAPI_API_KEY"
ENV_TOKEN: Final = "TASKAPI_TOKEN"  # noqa: S105 (a variable name)
ENV_ACCOUNT: Final = "TASKAPI_ACCOUNT_ID"
DEFAULT_URL: Final = "http://127.0.0.1:8000"
EXIT_INTERRUPTED: Final = 130

DEFAULT_UPLOAD_ROWS: Final = 1000
"""Files with more rows than this go through an upload unless --upload-threshold says otherwise."""
DEFAULT_INTERVAL: Final = 5.0
UPLOAD_POLL_SECONDS: Final = 2.0
DEFAULT_LIST_LIMIT: Final = 50
SHOWN_INVALID_ROWS: Final = 20
"""Invalid rows listed after a submit; the rest are counted."""
CHUNK: Final = limits.MAX_BULK_TASKS
PAGE_SIZE: Final = 100
"""Tasks per list call: whole tasks (request_data up to 24 KB each), as iter_tasks pages them."""
OPEN_FILTER: Final = ",".join(s.value for s in TaskStatus if s in OPEN_STATUSES)
_SOURCE_TEXT = re.compile(limits.SOURCE_TEXT_PATTERN)


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


# ------------------------------------------------------------------ argument types


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _identifier(raw: str) -> str:
    """A group or source id: any text of 1-256 characters without control characters."""
    value = raw.strip()
    if not value or len(value) > limits.MAX_SOURCE_ID_LENGTH or not _SOURCE_TEXT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{raw!r} must be 1-{limits.MAX_SOURCE_ID_LENGTH} characters without control characters"
        )
    return value


def _status(raw: str) -> str:
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


def _threshold(raw: str) -> Threshold:
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


# ------------------------------------------------------------------ parser


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    api = common.add_argument_group("API")
    api.add_argument("--url", help=f"the API's base URL (default ${ENV_URL}, else {DEFAULT_URL})")
    api.add_argument("--api-key", help=f"API key, sent as X-API-Key (default ${ENV_API_KEY})")
    api.add_argument("--token", help=f"bearer token, with --account (default ${ENV_TOKEN})")
    api.add_argument("--account", help=f"account id for --token, sent as X-Account-ID (default ${ENV_ACCOUNT})")
    common.add_argument("--plain", action="store_true", help="plain text output (the default when not a terminal)")
    return common


def _selectors(parser: argparse.ArgumentParser, *, verb: str) -> None:
    group = parser.add_argument_group(f"which tasks to {verb} (one of)").add_mutually_exclusive_group()
    group.add_argument("--group", type=_identifier, help="tasks of this task_source_group_id")
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


def _type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", dest="task_type", choices=[t.value for t in TaskType], help="only this task type")


def register(commands: Any, runtime: Runtime | None = None) -> None:
    """Adds submit, watch, cancel, regenerate and tasks to `commands` (the subparsers action of the
    taskapi parser). Each sets `handler(args)`, which raises taskapi.cli.CommandFailed on failure."""
    common = _common()

    submit = commands.add_parser(
        "submit",
        parents=[common],
        help="create the tasks of a JSONL, JSON or CSV file",
        description="Validate a file of tasks locally, then create them: bulk calls for small files, "
        "an upload for large ones. Prints a summary; exit 1 if any row was invalid.",
    )
    submit.add_argument("file", metavar="FILE", type=Path, help="the file (.jsonl/.ndjson, .json or .csv)")
    submit.add_argument("--group", type=_identifier, help="task_source_group_id for rows that have none")
    submit.add_argument(
        "--format", choices=[f.value for f in UploadFormat], help="the file's format (default: from its extension)"
    )
    submit.add_argument(
        "--upload-threshold",
        type=_threshold,
        default=Threshold(rows=DEFAULT_UPLOAD_ROWS),
        metavar="N",
        help=f"upload files above this many rows (N, Nrows) or bytes (NKB, NMB); default {DEFAULT_UPLOAD_ROWS} rows",
    )
    submit.add_argument(
        "--timeout",
        type=_positive_float,
        help="uploads: stop waiting for the ingest after this many seconds (exit 1; it goes on)",
    )
    submit.add_argument("--dry-run", action="store_true", help="validate and report only; send nothing")
    submit.set_defaults(handler=_with_client_logs(_submit), runtime=runtime)

    watch = commands.add_parser(
        "watch",
        parents=[common],
        help="show task counts live until every matching task is final",
        description="A live table of counts by status and task type, until no matching task is PENDING, "
        "QUEUED or PROCESSING. Exit 0 when none FAILED, 1 when some did, nothing matched, or --timeout passed.",
    )
    _selectors(watch, verb="watch")
    _type_option(watch)
    watch.add_argument(
        "--interval", type=_positive_float, default=DEFAULT_INTERVAL, help="seconds between polls (default 5)"
    )
    watch.add_argument("--timeout", type=_positive_float, help="give up (exit 1) after this many seconds")
    watch.set_defaults(handler=_with_client_logs(_watch), runtime=runtime)

    cancel = commands.add_parser(
        "cancel",
        parents=[common],
        help="cancel the matching tasks",
        description="Cancel every matching open task (PENDING, QUEUED, PROCESSING unless --status narrows it).",
    )
    _selectors(cancel, verb="cancel")
    _type_option(cancel)
    cancel.add_argument("--status", type=_status, help="only tasks in these statuses (comma-separated)")
    cancel.add_argument("--reason", help="recorded on each task (default: the API's)")
    cancel.add_argument("--dry-run", action="store_true", help="count the matching tasks only")
    cancel.set_defaults(handler=_with_client_logs(_cancel), runtime=runtime)

    regenerate = commands.add_parser(
        "regenerate",
        parents=[common],
        help="start a new attempt of the matching tasks",
        description="Regenerate every matching task (the API skips QUEUED ones, and PROCESSING ones unless --force).",
    )
    _selectors(regenerate, verb="regenerate")
    _type_option(regenerate)
    regenerate.add_argument("--status", type=_status, help="only tasks in these statuses, e.g. FAILED")
    regenerate.add_argument("--force", action="store_true", help="regenerate PROCESSING tasks too (their run stops)")
    regenerate.add_argument(
        "--keep-results",
        action="store_true",
        help="keep the previous result, progress and error visible until the new attempt replaces them",
    )
    regenerate.add_argument("--dry-run", action="store_true", help="count the matching tasks only")
    regenerate.set_defaults(handler=_with_client_logs(_regenerate), runtime=runtime)

    tasks = commands.add_parser(
        "tasks",
        parents=[common],
        help="list tasks, newest first",
        description="List tasks with the API's filters, as a table or JSON lines.",
    )
    _selectors(tasks, verb="list")
    tasks.add_argument("--status", type=_status, help="one status or several, comma-separated")
    _type_option(tasks)
    tasks.add_argument("--priority", choices=[p.value for p in Priority], help="only this priority")
    amount = tasks.add_mutually_exclusive_group()
    amount.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIST_LIMIT,
        help=f"at most N tasks (default {DEFAULT_LIST_LIMIT})",
    )
    amount.add_argument("--all", action="store_true", help="every matching task (all pages)")
    tasks.add_argument("--json", action="store_true", help="one JSON object per line (the API's task objects)")
    tasks.set_defaults(handler=_with_client_logs(_tasks), runtime=runtime)


def _with_client_logs(handler: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
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


def build_parser(runtime: Runtime | None = None) -> argparse.ArgumentParser:
    """A parser of these commands alone (taskapi.cli's parser adds them to the operator commands)."""
    parser = argparse.ArgumentParser(prog="taskapi", description="Task API user commands.")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), runtime)
    return parser


def main(argv: Sequence[str] | None = None, runtime: Runtime | None = None) -> int:
    """Runs one of these commands as taskapi.cli.main does: the exit code, errors on stderr."""
    parser = build_parser(runtime)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        args.handler(args)
    except CommandFailed as exc:
        print(f"taskapi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


# ------------------------------------------------------------------ output


class Output:
    """Rich tables, progress bars and live tables on a terminal; plain lines and aligned columns
    otherwise (or with --plain)."""

    def __init__(self, runtime: Runtime, *, plain: bool) -> None:
        self.stream = runtime.stdout or sys.stdout
        self.console = Console(
            file=self.stream, force_terminal=runtime.force_terminal, width=runtime.width, highlight=False
        )
        self.rich = not plain and self.console.is_terminal

    def line(self, text: str = "") -> None:
        if self.rich:
            self.console.print(text, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def raw(self, text: str) -> None:
        """A line as it is, whatever the mode (JSON output)."""
        print(text, file=self.stream)

    def table(self, title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if title:
            self.heading(title)
        if self.rich:
            self.console.print(_rich_table(headers, rows))
            return
        for text in _aligned(headers, rows):
            self.line(text)

    def summary(self, title: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Name / value lines under a title."""
        self.heading(title)
        if self.rich:
            grid = Table(show_header=False)
            grid.add_column(style="bold")
            grid.add_column(justify="right" if all(v.isdigit() for _, v in pairs) else "left")
            for name, value in pairs:
                grid.add_row(name, value)
            self.console.print(grid)
            return
        width = max(len(name) for name, _ in pairs)
        for name, value in pairs:
            self.line(f"  {name.ljust(width)}  {value}")

    def heading(self, title: str) -> None:
        if self.rich:
            self.console.print(Text(title, style="bold"))
        else:
            self.line(title)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int, int | None, str], None]]:
        """update(done, total, note): a progress bar (shown from the first update), or plain lines
        (one per tenth of the total, or per change when the total is unknown)."""
        if not self.rich:
            last: dict[str, object] = {}

            def line(done: int, total: int | None, note: str = "") -> None:
                # at most one line per tenth of a known total; otherwise one per change
                key: object = (done * 10 // total) if total else (done, note)
                if last.get("key") == key and done != total:
                    return
                last["key"] = key
                of = f"/{total}" if total is not None else ""
                self.line(f"{description}: {done}{of}" + (f" ({note})" if note else ""))

            yield line
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
        )
        bar = Progress(*columns, console=self.console, transient=False)
        task = bar.add_task(description, total=total, note="")

        def update(done: int, total: int | None, note: str = "") -> None:
            bar.update(task, completed=done, total=total, note=note)
            if not bar.live.is_started:
                bar.start()

        try:
            yield update
        finally:
            if bar.live.is_started:
                bar.stop()

    @contextmanager
    def live(self) -> Iterator[Callable[[str, Sequence[str], Sequence[Sequence[str]]], None]]:
        """show(title, headers, rows): one live table redrawn in place (gone when it ends), or a
        plain line per call whose rows differ from the previous call's."""
        if not self.rich:
            last: list[Sequence[Sequence[str]]] = []

            def line(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
                if last and last[0] == rows:
                    return
                last[:] = [rows]
                self.line(title)

            yield line
            return
        with Live(console=self.console, transient=True, auto_refresh=False) as live:

            def show(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
                live.update(Group(Text(title, style="bold"), _rich_table(headers, rows)), refresh=True)

            yield show


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table()
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 or not _numeric(rows, index) else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _numeric(rows: Sequence[Sequence[str]], index: int) -> bool:
    cells = [row[index] for row in rows if row[index]]
    return bool(cells) and all(cell.rstrip("%").isdigit() for cell in cells)


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    everything = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[column]) for row in everything) for column in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in everything
    ]


# ------------------------------------------------------------------ the client and its failures


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = None
    token: str | None = None
    account_id: str | None = None


def _resolve_credentials(args: argparse.Namespace, env: Mapping[str, str]) -> Credentials:
    """An API key, or a token and its account: flags first, then the environment."""
    for api_key, token, level in (
        (args.api_key, args.token, "flags"),
        (env.get(ENV_API_KEY), env.get(ENV_TOKEN), "environment"),
    ):
        if api_key and token:
            where = "--api-key and --token" if level == "flags" else f"{ENV_API_KEY} and {ENV_TOKEN}"
            raise CommandFailed(f"{where} are both set: use one", EXIT_USAGE)
        if api_key:
            if args.account:
                raise CommandFailed("--account goes with --token only (an API key names its own account)", EXIT_USAGE)
            return Credentials(api_key=api_key)
        if token:
            account_id = args.account or env.get(ENV_ACCOUNT)
            if not account_id:
                raise CommandFailed(f"--token needs --account (or {ENV_ACCOUNT})", EXIT_USAGE)
            return Credentials(token=token, account_id=account_id)
    raise CommandFailed(
        f"no credentials: pass --api-key (or set {ENV_API_KEY}), or --token with --account "
        f"(or set {ENV_TOKEN} and {ENV_ACCOUNT})",
        EXIT_USAGE,
    )


def _client(args: argparse.Namespace, runtime: Runtime) -> TaskApiClient:
    url = args.url or runtime.env.get(ENV_URL) or DEFAULT_URL
    if not re.match(r"^https?://[^/\s]+", url):
        raise CommandFailed(f"--url {url!r} is not an http(s) URL", EXIT_USAGE)
    credentials = _resolve_credentials(args, runtime.env)
    return TaskApiClient(
        url,
        api_key=credentials.api_key,
        token=credentials.token,
        account_id=credentials.account_id,
        http=runtime.http,
        sleep=runtime.sleep,
    )


@contextmanager
def _failures(action: str, api: TaskApiClient) -> Iterator[None]:
    """API answers and transport errors as CommandFailed (exit 1), request validation as exit 2."""
    try:
        yield
    except Unauthorized as exc:
        raise CommandFailed(f"cannot {action}: {exc} (check the API key or token)") from exc
    except UploadRejected as exc:
        where = f"the bucket refused it (HTTP {exc.status_code})" if exc.status_code else "not sent"
        raise CommandFailed(f"cannot {action}: {exc.detail}; {where}") from exc
    except TaskApiError as exc:
        raise CommandFailed(f"cannot {action}: {exc}") from exc
    except httpx.TransportError as exc:
        raise CommandFailed(
            f"cannot {action}: {api.base_url} did not answer ({type(exc).__name__}: {exc}); "
            f"is the API running there? (--url, ${ENV_URL})"
        ) from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CommandFailed(f"cannot {action}: {problems}", EXIT_USAGE) from exc


def _runtime(args: argparse.Namespace) -> Runtime:
    return args.runtime if getattr(args, "runtime", None) is not None else Runtime()


# ------------------------------------------------------------------ selectors


def _split(values: Iterable[str] | None) -> list[str]:
    """Repeated and comma-separated values, blanks dropped, repeats removed, in order."""
    return list(dict.fromkeys(part.strip() for value in values or () for part in value.split(",") if part.strip()))


def _batches(values: list[str], size: int) -> list[list[str]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


@dataclass(frozen=True)
class Selector:
    """The tasks a command acts on, as one filter set per request (ids and sources are sent 100
    and 50 at a time: the API's limits)."""

    filters: list[TaskFilterArgs]
    label: str

    @property
    def empty(self) -> bool:
        return self.label == ""


def _selector(args: argparse.Namespace) -> Selector:
    base: TaskFilterArgs = {}
    for name, value in (
        ("status", getattr(args, "status", None)),
        ("task_type", getattr(args, "task_type", None)),
        ("priority", getattr(args, "priority", None)),
    ):
        if value:
            base[name] = value  # type: ignore[literal-required]
    sources, ids = _split(args.sources), _split(args.ids)
    if args.group:
        base["task_source_group_id"] = args.group
        return Selector([base], f"group {args.group}")
    if sources:
        filters: list[TaskFilterArgs] = []
        for batch in _batches(sources, limits.MAX_FILTER_SOURCE_IDS):
            one = base.copy()
            one["task_source_ids"] = batch
            filters.append(one)
        return Selector(filters, _named("source", sources))
    if ids:
        filters = []
        for batch in _batches(ids, limits.MAX_FILTER_IDS):
            one = base.copy()
            one["task_ids"] = batch
            filters.append(one)
        return Selector(filters, _named("task", ids))
    return Selector([base], "")


def _named(kind: str, values: list[str]) -> str:
    if len(values) <= 3:
        return f"{kind}{'s' if len(values) > 1 else ''} {', '.join(values)}"
    return f"{len(values)} {kind}s"


def _required_selector(args: argparse.Namespace, command: str) -> Selector:
    selector = _selector(args)
    if selector.empty:
        raise CommandFailed(
            f"{command} needs --group, --source or --ids (it would otherwise act on every task)", EXIT_USAGE
        )
    return selector


def _with(filters: TaskFilterArgs, **extra: str) -> TaskFilterArgs:
    merged = filters.copy()
    merged.update(extra)  # type: ignore[typeddict-item]
    return merged


def _count(api: TaskApiClient, selector: Selector, **extra: str) -> int:
    return sum(api.count_tasks(**_with(f, **extra)).total for f in selector.filters)


# ------------------------------------------------------------------ submit


@dataclass
class Parsed:
    """Rows of a file, in order: all of them, or up to a limit (`more`: the file goes on)."""

    rows: list[Row]
    shared: SharedVideoSettings
    more: bool = False


@dataclass
class Tally:
    """What a submit did. `pending`: valid rows with a task_id not seen earlier in the file;
    `sent`: those of them sent (or found existing) so far."""

    rows: int = 0
    created: int = 0
    existing: int = 0
    invalid: int = 0
    pending: int = 0
    sent: int = 0
    shown: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    """The first SHOWN_INVALID_ROWS invalid rows: row number and errors ({field, message})."""

    def add_invalid(self, row: Row) -> None:
        self.invalid += 1
        self.show(row.row, [dict(error) for error in row.errors or ()])

    def show(self, row: int, errors: list[dict[str, Any]]) -> None:
        if len(self.shown) < SHOWN_INVALID_ROWS:
            self.shown.append((row, errors))


def _file_format(args: argparse.Namespace) -> UploadFormat:
    if args.format:
        return UploadFormat(args.format)
    found = UploadFormat.for_key(args.file.name)
    if found is None:
        raise CommandFailed(
            f"cannot tell the format of {args.file.name} from its extension: pass --format jsonl, json or csv",
            EXIT_USAGE,
        )
    return found


def _digest(path: Path, group: str | None) -> str:
    """What the file's derived task ids hang on: its bytes and the group."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            digest.update(block)
    digest.update(b"\0group:" + (group or "").encode())
    return f"cli-{digest.hexdigest()[:32]}"


@contextmanager
def _readable(path: Path, file_format: UploadFormat) -> Iterator[None]:
    try:
        yield
    except FileInvalid as exc:
        raise CommandFailed(f"{path.name} cannot be read as {file_format.value.upper()}: {exc.message}") from exc


def _shared_settings(path: Path, file_format: UploadFormat) -> SharedVideoSettings:
    if file_format is not UploadFormat.JSON:
        return SharedVideoSettings()
    with _readable(path, file_format), path.open("rb") as stream:
        return read_json_settings(stream)


def _checked(stream: BinaryIO, file_format: UploadFormat) -> Readable:
    """JSON Lines: the ingest function's check of the first line (a file that does not start with a
    JSON object is refused as a whole, not read as invalid rows)."""
    return check_jsonl_start(stream) if file_format is UploadFormat.JSONL else stream


def _read(path: Path, file_format: UploadFormat, source_id: str, limit: int | None) -> Parsed:
    """Every row, or the first `limit` (and whether more follow), with the JSON document's shared
    video settings."""
    shared = _shared_settings(path, file_format)
    with _readable(path, file_format), path.open("rb") as stream:
        rows = parse_rows(_checked(stream, file_format), file_format, upload_id=source_id)
        taken = list(rows if limit is None else islice(rows, limit + 1))
    more = limit is not None and len(taken) > limit
    return Parsed(rows=taken[:limit] if more else taken, shared=shared, more=more)


def _grouped(row: Row, group: str | None) -> Row:
    if group is None or row.task is None or row.task.task_source_group_id is not None:
        return row
    task = row.task.model_copy(update={"task_source_group_id": group})
    return Row(row=row.row, task=task, errors=None, task_id=row.task_id)


def _submit(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    out = Output(runtime, plain=args.plain)
    path: Path = args.file
    if not path.is_file():
        raise CommandFailed(f"{path}: no such file", EXIT_USAGE)
    file_format = _file_format(args)
    threshold: Threshold = args.upload_threshold
    if args.dry_run:
        _validate_only(out, path, file_format, threshold, args.group)
        return
    api = _client(args, runtime)
    source_id = _digest(path, args.group)
    parsed = None
    if threshold.size is None or path.stat().st_size <= threshold.size:
        parsed = _read(path, file_format, source_id, threshold.rows)
    if parsed is None or parsed.more:
        _submit_upload(api, out, runtime, args, file_format)
        return
    rows = [_grouped(row, args.group) for row in parsed.rows]
    tally = Tally(rows=len(rows))
    for row in rows:
        if not row.ok:
            tally.add_invalid(row)
    failure: CommandFailed | None = None
    try:
        with api, _failures("create the tasks", api):
            _send_bulk(api, out, rows, parsed.shared, tally)
    except CommandFailed as exc:
        if not tally.sent:
            raise  # nothing was sent (credentials, an unreachable API): the error is the story
        failure = exc
    summary = [("file", path.name), ("format", file_format.value), ("sent as", "bulk calls"), *_counts(tally)]
    if failure is not None:
        summary.append(("not sent", str(tally.pending - tally.sent)))
    summary.append(("group", args.group or "-"))
    out.summary("Submitted" if failure is None else "Submitted in part", summary)
    _print_invalid(out, tally)
    if failure is not None:
        raise CommandFailed(f"{failure} (run the same command again to send the rest)", failure.exit_code)
    if tally.invalid:
        raise CommandFailed(f"{tally.invalid} of {tally.rows} rows are invalid and were not sent", EXIT_FAILED)


def _submit_upload(
    api: TaskApiClient, out: Output, runtime: Runtime, args: argparse.Namespace, file_format: UploadFormat
) -> None:
    """POST /api/uploads, the file to its presigned URL, then GET /api/uploads/{id} until final."""
    path: Path = args.file
    size = path.stat().st_size
    upload_id = None
    try:
        with api, _failures("upload the file", api):
            created = api.create_upload(file_format.value, task_source_group_id=args.group, filename=path.name[:256])
            upload_id = created.upload_id
            with out.progress("bytes uploaded", size) as update:
                api.upload_file(
                    created,
                    path,
                    on_progress=lambda sent, total: update(sent, total, ""),
                    http=runtime.upload_http,
                )
            with out.progress("rows ingested", None) as update:
                final = api.wait_for_upload(
                    upload_id,
                    interval=UPLOAD_POLL_SECONDS,
                    timeout=args.timeout,
                    clock=runtime.clock,
                    on_progress=lambda u: update(u.rows, None, _upload_note(u)),
                )
            tally = Tally(rows=final.rows, created=final.created, existing=final.existing, invalid=final.invalid)
            if final.invalid and final.report_url:
                _invalid_from_report(api, runtime, final.report_url, tally)
    except UploadTimeout as exc:
        raise CommandFailed(f"{exc}; it goes on (`taskapi watch --group ...` follows its tasks)") from exc
    except KeyboardInterrupt:
        where = f"upload {upload_id} goes on" if upload_id else "no upload was started"
        raise CommandFailed(f"interrupted: stopped waiting ({where})", EXIT_INTERRUPTED) from None
    summary = [
        ("file", path.name),
        ("format", file_format.value),
        ("sent as", f"upload {final.upload_id}"),
        ("status", final.status.value),
        *_counts(tally),
        ("group", final.task_source_group_id or "-"),
        ("report", final.report_url or "-"),
    ]
    if final.error:
        summary.append(("error", final.error))
    out.summary("Submitted" if final.status == "COMPLETED" else "Upload failed", summary)
    _print_invalid(out, tally)
    if final.status != "COMPLETED":
        raise CommandFailed(f"upload {final.upload_id} FAILED: {final.error or 'no reason given'}")
    if tally.invalid:
        raise CommandFailed(f"{tally.invalid} of {tally.rows} rows are invalid (see the report)", EXIT_FAILED)


def _upload_note(upload: UploadOut) -> str:
    return f"{upload.status}: created {upload.created}, existing {upload.existing}, invalid {upload.invalid}"


def _invalid_from_report(api: TaskApiClient, runtime: Runtime, report_url: str, tally: Tally) -> None:
    """The first invalid rows of the report, for the summary. Best effort: the report URL is
    printed anyway."""
    try:
        for line in api.report_lines(report_url, http=runtime.upload_http):
            if line.get("status") == "invalid":
                tally.show(int(line.get("row") or 0), list(line.get("errors") or []))
                if len(tally.shown) >= SHOWN_INVALID_ROWS:
                    return
    except (httpx.HTTPError, TaskApiError, ValueError):
        return


def _counts(tally: Tally) -> list[tuple[str, str]]:
    return [
        ("rows", str(tally.rows)),
        ("created", str(tally.created)),
        ("existing", str(tally.existing)),
        ("invalid", str(tally.invalid)),
    ]


def _send_bulk(api: TaskApiClient, out: Output, rows: list[Row], shared: SharedVideoSettings, tally: Tally) -> None:
    """Valid rows 100 per call, after a look-up of which exist already (a chunk that all exists is
    not sent); a task_id repeated in the file is sent once, its later rows counted as existing."""
    seen: set[str] = set()
    pending = []
    for row in rows:
        if row.task is None or row.task_id is None:
            continue
        if row.task_id in seen:
            tally.existing += 1
            continue
        seen.add(row.task_id)
        pending.append(row.task)
    tally.pending = len(pending)
    repeated = tally.existing
    settings = {name: str(value) for name, value in shared if value is not None}
    total = len(pending) + repeated
    with out.progress("rows sent", total) as update:
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            ids = [str(task.task_id) for task in chunk]
            stored = {task.task_id for task in api.list_tasks(task_ids=ids, limit=len(ids)).tasks}
            new = [task for task in chunk if task.task_id not in stored]
            if new:
                api.create_tasks_bulk(new, **settings)
            tally.created += len(new)
            tally.existing += len(chunk) - len(new)
            tally.sent += len(chunk)
            update(tally.sent + repeated, total, f"created {tally.created}, existing {tally.existing}")


def _validate_only(out: Output, path: Path, file_format: UploadFormat, threshold: Threshold, group: str | None) -> None:
    """--dry-run: every row parsed and validated (streamed: memory stays bounded), nothing sent."""
    _shared_settings(path, file_format)
    tally = Tally()
    with _readable(path, file_format), path.open("rb") as stream:
        for row in parse_rows(_checked(stream, file_format), file_format, upload_id="dry-run"):
            tally.rows += 1
            if not row.ok:
                tally.add_invalid(row)
    upload = path.stat().st_size > threshold.size if threshold.size is not None else tally.rows > (threshold.rows or 0)
    out.summary(
        "Validated (dry run: nothing sent)",
        [
            ("file", path.name),
            ("format", file_format.value),
            ("would go as", f"an upload (more than {threshold})" if upload else "bulk calls"),
            ("rows", str(tally.rows)),
            ("valid", str(tally.rows - tally.invalid)),
            ("invalid", str(tally.invalid)),
            ("group", group or "-"),
        ],
    )
    _print_invalid(out, tally)
    if tally.invalid:
        raise CommandFailed(f"{tally.invalid} of {tally.rows} rows are invalid", EXIT_FAILED)


def _print_invalid(out: Output, tally: Tally) -> None:
    if not tally.invalid:
        return
    shown = []
    for row, errors in tally.shown:
        for index, problem in enumerate(errors or [{}]):
            field_name = problem.get("field") or "-"
            shown.append((str(row) if index == 0 else "", str(field_name), str(problem.get("message", "?"))))
    out.table(f"Invalid rows, not sent: {tally.invalid}", ("row", "field", "problem"), shown)
    if tally.invalid > len(tally.shown):
        out.line(f"... and {tally.invalid - len(tally.shown)} more invalid rows")


# ------------------------------------------------------------------ watch


@dataclass
class Snapshot:
    by_status: dict[TaskStatus, int]
    by_type: dict[TaskType, dict[TaskStatus, int]]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def open(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in OPEN_STATUSES)


class StatusCounter:
    """Counts of the selected tasks by status and per task type, with few calls: per type only for
    the types present, only for statuses whose overall count is not 0, and the last type by
    subtraction.

    Counts are taken one status at a time, so while tasks move a poll can count one twice or miss
    it (the next poll corrects it). The types present are found again when the total differs from
    what they summed to on two polls in a row (new tasks, not a passing miscount), or on a poll
    with no open task (nothing moves then)."""

    def __init__(self, api: TaskApiClient, selector: Selector) -> None:
        self.api = api
        self.selector = selector
        self.types: list[TaskType] = []
        self._types_total: int | None = None
        self._differed = 0

    def snapshot(self) -> Snapshot:
        by_status = {status: _count(self.api, self.selector, status=status.value) for status in TaskStatus}
        total = sum(by_status.values())
        quiet = not any(by_status[s] for s in OPEN_STATUSES)
        self._differed = self._differed + 1 if total != self._types_total else 0
        if self._types_total is None or self._differed >= 2 or (quiet and self._differed):
            found = {t: _count(self.api, self.selector, task_type=t.value) for t in TaskType}
            self.types = [t for t in TaskType if found[t]]
            self._types_total = sum(found.values())
            self._differed = 0
        by_type: dict[TaskType, dict[TaskStatus, int]] = {}
        for task_type in self.types[:-1]:
            by_type[task_type] = {
                s: _count(self.api, self.selector, task_type=task_type.value, status=s.value) if by_status[s] else 0
                for s in TaskStatus
            }
        if self.types:
            by_type[self.types[-1]] = {
                s: max(0, by_status[s] - sum(counts[s] for counts in by_type.values())) for s in TaskStatus
            }
        return Snapshot(by_status, by_type)

    def none_open(self) -> bool:
        """One count of the open statuses together: counts taken one status at a time can miss a
        task that moved back (a retry from PROCESSING to QUEUED) between two of them."""
        return _count(self.api, self.selector, status=OPEN_FILTER) == 0


def _watch_rows(snapshot: Snapshot) -> tuple[list[str], list[list[str]]]:
    headers = ["type", *(s.value for s in TaskStatus), "total"]
    rows = [
        [t.value, *(str(counts[s]) for s in TaskStatus), str(sum(counts.values()))]
        for t, counts in snapshot.by_type.items()
    ]
    rows.append(["all", *(str(snapshot.by_status[s]) for s in TaskStatus), str(snapshot.total)])
    return headers, rows


def _watch_title(selector: Selector, snapshot: Snapshot) -> str:
    what = f"Tasks of {selector.label}" if selector.label else "Tasks of the account"
    done = snapshot.total - snapshot.open
    return f"{what}: {f'all {done}' if done == snapshot.total else f'{done}/{snapshot.total}'} final"


def _watch(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    out = Output(runtime, plain=args.plain)
    selector = _selector(args)
    api = _client(args, runtime)
    deadline = runtime.clock() + args.timeout if args.timeout else None
    try:
        with api, _failures("count the tasks", api), out.live() as show:
            counter = StatusCounter(api, selector)
            while True:
                snapshot = counter.snapshot()
                if snapshot.total == 0 or (snapshot.open == 0 and counter.none_open()):
                    break
                headers, rows = _watch_rows(snapshot)
                now = datetime.now().strftime("%H:%M:%S")
                if out.rich:
                    show(f"{_watch_title(selector, snapshot)} (at {now}; Ctrl-C stops watching)", headers, rows)
                else:
                    statuses = "  ".join(f"{s.value} {snapshot.by_status[s]}" for s in TaskStatus)
                    show(f"{now} {_watch_title(selector, snapshot)}: {statuses}", headers, rows)
                wait = args.interval
                if deadline is not None:
                    left = deadline - runtime.clock()
                    if left <= 0:
                        break
                    wait = min(wait, left)
                runtime.sleep(wait)
    except KeyboardInterrupt:
        raise CommandFailed("interrupted: stopped watching (the tasks go on)", EXIT_INTERRUPTED) from None
    if snapshot.total == 0:
        what = selector.label or "the account"
        raise CommandFailed(f"no tasks match ({what}{', type ' + args.task_type if args.task_type else ''})")
    headers, rows = _watch_rows(snapshot)
    out.table(_watch_title(selector, snapshot), headers, rows)
    if snapshot.open:
        raise CommandFailed(f"{snapshot.open} tasks were still open after {args.timeout:g} seconds")
    failed = snapshot.by_status[TaskStatus.FAILED]
    if failed:
        raise CommandFailed(f"{failed} of {snapshot.total} tasks FAILED")


# ------------------------------------------------------------------ cancel / regenerate


def _offset(update: Callable[[int, int | None, str], None], before: int) -> Callable[[int, int | None], None]:
    """on_progress of one filter set, shown after the `before` tasks of the sets acted on already."""

    def progress(done: int, total: int | None) -> None:
        update(before + done, None if total is None else before + total, "")

    return progress


def _dry_run(api: TaskApiClient, out: Output, selector: Selector, verb: str, status: str | None) -> None:
    matching = _count(api, selector, **({"status": status} if status else {}))
    out.line(f"Would {verb} {matching} tasks of {selector.label}{_status_suffix(status)} (dry run: nothing changed).")


def _statuses_text(statuses: str) -> str:
    names = statuses.split(",")
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _status_suffix(statuses: str | None) -> str:
    return f" in status {_statuses_text(statuses)}" if statuses else ""


def _reasons(details: Iterable[Any], done: str) -> list[tuple[str, str, str]]:
    """Tasks not acted on, grouped by (status, reason)."""
    grouped = Counter((d.status, d.reason) for d in details if d.status != done)
    return [(status, reason, str(n)) for (status, reason), n in grouped.most_common()]


def _cancel(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    out = Output(runtime, plain=args.plain)
    selector = _required_selector(args, "cancel")
    api = _client(args, runtime)
    answers: list[BulkCancelOut] = []
    with api, _failures("cancel the tasks", api):
        if args.dry_run:
            _dry_run(api, out, selector, "cancel", args.status or OPEN_FILTER)
            return
        with out.progress("cancelling", None) as update:
            for filters in selector.filters:
                done = sum(a.total_requested for a in answers)
                answers += api.cancel_all(
                    reason=args.reason,
                    on_progress=_offset(update, done),
                    **filters,
                )
    cancelled = sum(a.cancelled_count for a in answers)
    matched = sum(a.total_requested for a in answers)
    if not matched:
        out.line(f"No tasks to cancel: none of {selector.label} is {_statuses_text(args.status or OPEN_FILTER)}.")
        return
    lines = [
        ("matched", str(matched)),
        ("cancelled", str(cancelled)),
        ("skipped", str(sum(a.failed_count for a in answers))),
        ("not found", str(sum(a.not_found_count for a in answers))),
    ]
    out.summary(f"Cancelled: {selector.label}", lines)
    skipped = _reasons((d for a in answers for d in a.details), "cancelled")
    if skipped:
        out.table("Not cancelled", ("status", "reason", "tasks"), skipped)


def _regenerate(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    out = Output(runtime, plain=args.plain)
    selector = _required_selector(args, "regenerate")
    api = _client(args, runtime)
    answers: list[BulkRegenerateOut] = []
    with api, _failures("regenerate the tasks", api):
        if args.dry_run:
            _dry_run(api, out, selector, "regenerate", args.status)
            return
        with out.progress("regenerating", None) as update:
            for filters in selector.filters:
                done = sum(a.total_requested for a in answers)
                answers += api.regenerate_all(
                    reset_to_pending=not args.keep_results,
                    force=args.force,
                    on_progress=_offset(update, done),
                    **filters,
                )
    matched = sum(a.total_requested for a in answers)
    if not matched:
        out.line(f"No tasks to regenerate: none match {selector.label}{_status_suffix(args.status)}.")
        return
    lines = [
        ("matched", str(matched)),
        ("regenerated", str(sum(a.regenerated_count for a in answers))),
        ("skipped", str(sum(a.failed_count for a in answers))),
        ("not found", str(sum(a.not_found_count for a in answers))),
    ]
    out.summary(f"Regenerated: {selector.label}", lines)
    skipped = _reasons((d for a in answers for d in a.details), "regenerated")
    if skipped:
        out.table("Not regenerated", ("status", "reason", "tasks"), skipped)


# ------------------------------------------------------------------ tasks


def _updated(value: str) -> str:
    return value.replace("T", " ")[:19]


def _task_row(task: TaskOut) -> list[str]:
    return [
        task.task_id,
        task.task_type.value,
        task.status.value,
        f"{task.progress:.0f}%",
        task.task_source_group_id or "-",
        _updated(task.updated_at),
    ]


def _listing(api: TaskApiClient, selector: Selector, limit: int | None) -> tuple[list[TaskOut], int]:
    """Up to `limit` tasks (None: all), newest first within each filter set, and how many match."""
    found: list[TaskOut] = []
    total = 0
    for filters in selector.filters:
        if limit is not None and len(found) >= limit:
            total += api.count_tasks(**filters).total  # not listed, still counted
            continue
        token: str | None = None
        while True:
            room = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
            page = api.list_tasks(limit=room, next_token=token, **filters)
            if token is None:
                total += page.total
            found += page.tasks
            token = page.next_token
            if token is None or (limit is not None and len(found) >= limit):
                break
    return found, total


def _tasks(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    out = Output(runtime, plain=args.plain)
    selector = _selector(args)
    api = _client(args, runtime)
    with api, _failures("list the tasks", api):
        found, total = _listing(api, selector, None if args.all else args.limit)
    if args.json:
        for task in found:
            out.raw(task.model_dump_json())
        return
    if not found:
        out.line("No tasks match.")
        return
    headers = ("id", "type", "status", "progress", "group", "updated")
    out.table(None, headers, [_task_row(task) for task in found])
    out.line(f"{len(found)} of {total} tasks" + ("" if len(found) == total else " (--all lists every one)"))
