"""`taskapi cancel SELECTOR [--status S] [--type T] [--reason TEXT] [--dry-run]`

A selector is required. Acts on the open tasks (PENDING, QUEUED, PROCESSING) unless --status says
otherwise; --reason is recorded on each task. --dry-run only counts."""

from __future__ import annotations

import argparse

from taskapi.client.api import TaskApiClient
from taskapi.client.cli.arguments import About
from taskapi.client.cli.bulk import Progress, Verb, act_on_selection, add_dry_run, add_filters, statuses_text
from taskapi.client.cli.selection import OPEN_FILTER
from taskapi.client.tasks import TaskFilterArgs
from taskapi.models.responses import BulkCancelOut

VERB = Verb("cancel", ongoing="cancelling", done="cancelled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_filters(parser, VERB, status_help="only tasks in these statuses (comma-separated)")
    parser.add_argument("--reason", help="recorded on each task (default: the API's)")
    add_dry_run(parser)


def run(args: argparse.Namespace) -> None:
    status = args.status or OPEN_FILTER

    def cancel_all(api: TaskApiClient, filters: TaskFilterArgs, progress: Progress) -> list[BulkCancelOut]:
        return api.cancel_all(reason=args.reason, on_progress=progress, **filters)

    acted = act_on_selection(args, VERB, status, cancel_all)
    if acted is not None:
        cancelled = sum(a.cancelled_count for a in acted.answers)
        acted.report(cancelled, f"none of {acted.selector.label} is {statuses_text(status)}")


ABOUT = About(
    VERB.base,
    help="cancel the matching tasks",
    description="Cancel every matching open task (PENDING, QUEUED, PROCESSING unless --status narrows it).",
)
