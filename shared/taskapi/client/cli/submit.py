"""`taskapi submit FILE [--group G] [--format jsonl|json|csv] [--upload-threshold N|Nrows|NKB|NMB]
[--timeout SECONDS] [--dry-run]`

The file is parsed and validated locally (taskapi.client.cli.files). The format comes from the
extension (.jsonl/.ndjson, .json, .csv) or --format. Files up to --upload-threshold (default 1000
rows; or a size: 512KB, 5MB) go through bulk calls; larger ones through an upload
(taskapi.client.cli.upload). Deciding reads at most threshold + 1 rows (or only the file's size),
so a large file is not parsed whole before it is sent.

Bulk calls: every row is read first; a file that cannot be read as a whole (FileInvalid) sends
nothing, invalid rows are reported (row, field, message) and never sent, valid ones go 100 per
POST /api/tasks/bulk. A row without task_id gets taskapi.ingest.rows.derived_task_id over a digest
of the file's bytes and --group, so submitting the same file again creates nothing twice (its rows
are "existing"); a task_id repeated in the file is sent once and its later rows count as existing,
as ingest answers them. --group G sets task_source_group_id on rows that have none. "existing" is
known from GET /api/tasks?task_ids=... before each chunk (one extra GET per 100 rows; a chunk that
exists already is not sent). A failed call stops the submit after printing what was done: run the
same command again to finish. Exit 1 when any row was invalid (the valid ones are created)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from taskapi.cli_support import EXIT_FAILED, EXIT_USAGE, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.cli import files
from taskapi.client.cli.arguments import About, Threshold, identifier, positive_float, threshold
from taskapi.client.cli.credentials import failures, open_client
from taskapi.client.cli.output import Output
from taskapi.client.cli.runtime import runtime_of
from taskapi.client.cli.tally import Tally, print_invalid
from taskapi.client.cli.upload import submit_upload
from taskapi.ingest.formats import UploadFormat
from taskapi.ingest.rows import Row
from taskapi.models import limits
from taskapi.models.requests import SharedVideoSettings

DEFAULT_UPLOAD_ROWS: Final = 1000
"""Files with more rows than this go through an upload unless --upload-threshold says otherwise."""
CHUNK: Final = limits.MAX_BULK_TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="the file (.jsonl/.ndjson, .json or .csv)")
    parser.add_argument("--group", type=identifier, help="task_source_group_id for rows that have none")
    parser.add_argument(
        "--format", choices=[f.value for f in UploadFormat], help="the file's format (default: from its extension)"
    )
    parser.add_argument(
        "--upload-threshold",
        type=threshold,
        default=Threshold(rows=DEFAULT_UPLOAD_ROWS),
        metavar="N",
        help=f"upload files above this many rows (N, Nrows) or bytes (NKB, NMB); default {DEFAULT_UPLOAD_ROWS} rows",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        help="uploads: stop waiting for the ingest after this many seconds (exit 1; it goes on)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and report only; send nothing")


def run(args: argparse.Namespace) -> None:
    runtime = runtime_of(args)
    out = Output(runtime, plain=args.plain)
    path: Path = args.file
    if not path.is_file():
        raise CommandFailed(f"{path}: no such file", EXIT_USAGE)
    fmt = files.file_format(args)
    limit: Threshold = args.upload_threshold
    if args.dry_run:
        _validate_only(out, path, fmt, limit, args.group)
        return
    api = open_client(args, runtime)
    source_id = files.digest(path, args.group)
    parsed = None
    if limit.size is None or path.stat().st_size <= limit.size:
        parsed = files.read(path, fmt, source_id, limit.rows)
    if parsed is None or parsed.more:
        submit_upload(api, out, runtime, args, fmt)
        return
    rows = [files.grouped(row, args.group) for row in parsed.rows]
    tally = Tally(rows=len(rows))
    for row in rows:
        if not row.ok:
            tally.add_invalid(row)
    failure: CommandFailed | None = None
    try:
        with api, failures("create the tasks", api):
            _send_bulk(api, out, rows, parsed.shared, tally)
    except CommandFailed as exc:
        if not tally.sent:
            raise  # nothing was sent (credentials, an unreachable API): the error is the story
        failure = exc
    summary = [("file", path.name), ("format", fmt.value), ("sent as", "bulk calls"), *tally.counts()]
    if failure is not None:
        summary.append(("not sent", str(tally.pending - tally.sent)))
    summary.append(("group", args.group or "-"))
    out.summary("Submitted" if failure is None else "Submitted in part", summary)
    print_invalid(out, tally)
    if failure is not None:
        raise CommandFailed(f"{failure} (run the same command again to send the rest)", failure.exit_code)
    if tally.invalid:
        raise CommandFailed(f"{tally.invalid} of {tally.rows} rows are invalid and were not sent", EXIT_FAILED)


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


def _validate_only(out: Output, path: Path, fmt: UploadFormat, limit: Threshold, group: str | None) -> None:
    """--dry-run: every row parsed and validated (streamed: memory stays bounded), nothing sent."""
    files.shared_settings(path, fmt)
    tally = Tally()
    with files.opened(path, fmt) as stream:
        for row in files.rows_of(stream, fmt, "dry-run"):
            tally.rows += 1
            if not row.ok:
                tally.add_invalid(row)
    upload = path.stat().st_size > limit.size if limit.size is not None else tally.rows > (limit.rows or 0)
    out.summary(
        "Validated (dry run: nothing sent)",
        [
            ("file", path.name),
            ("format", fmt.value),
            ("would go as", f"an upload (more than {limit})" if upload else "bulk calls"),
            ("rows", str(tally.rows)),
            ("valid", str(tally.rows - tally.invalid)),
            ("invalid", str(tally.invalid)),
            ("group", group or "-"),
        ],
    )
    print_invalid(out, tally)
    if tally.invalid:
        raise CommandFailed(f"{tally.invalid} of {tally.rows} rows are invalid", EXIT_FAILED)


ABOUT = About(
    "submit",
    help="create the tasks of a JSONL, JSON or CSV file",
    description="Validate a file of tasks locally, then create them: bulk calls for small files, "
    "an upload for large ones. Prints a summary; exit 1 if any row was invalid.",
)
