"""`taskapi submit` of a file above --upload-threshold: POST /api/uploads, the file POSTed to the
presigned URL (streamed from disk; refused locally when it is empty or above the upload's
max_bytes), then GET /api/uploads/{id} every 2 seconds until COMPLETED or FAILED (--timeout: stop
waiting, exit 1, the upload goes on). Progress bars: bytes uploaded, then rows ingested. The ingest
function validates every row and derives missing ids from its upload id, so the same file uploaded
twice creates its tasks twice (unlike bulk calls). The summary gives the upload id, its counts,
error and report URL, and lists the first invalid rows read from the report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

import httpx

from taskapi.cli_support import EXIT_FAILED, EXIT_INTERRUPTED, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.cli.credentials import failures
from taskapi.client.cli.output import Output
from taskapi.client.cli.runtime import Runtime
from taskapi.client.cli.tally import SHOWN_INVALID_ROWS, Tally, print_invalid
from taskapi.client.errors import TaskApiError
from taskapi.client.uploads import UploadTimeout
from taskapi.ingest.formats import UploadFormat
from taskapi.models.uploads import UploadOut

UPLOAD_POLL_SECONDS: Final = 2.0


def submit_upload(
    api: TaskApiClient, out: Output, runtime: Runtime, args: argparse.Namespace, fmt: UploadFormat
) -> None:
    """POST /api/uploads, the file to its presigned URL, then GET /api/uploads/{id} until final."""
    path: Path = args.file
    size = path.stat().st_size
    upload_id = None
    try:
        with api, failures("upload the file", api):
            created = api.create_upload(fmt.value, task_source_group_id=args.group, filename=path.name[:256])
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
        ("format", fmt.value),
        ("sent as", f"upload {final.upload_id}"),
        ("status", final.status.value),
        *tally.counts(),
        ("group", final.task_source_group_id or "-"),
        ("report", final.report_url or "-"),
    ]
    if final.error:
        summary.append(("error", final.error))
    out.summary("Submitted" if final.status == "COMPLETED" else "Upload failed", summary)
    print_invalid(out, tally)
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
