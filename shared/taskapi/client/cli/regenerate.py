"""`taskapi regenerate SELECTOR [--status S] [--type T] [--force] [--keep-results] [--dry-run]`

A selector is required. Acts on every matching task (the API skips QUEUED ones, and PROCESSING
ones without --force). --keep-results sends reset_to_pending=false (the previous result stays
visible until the new attempt replaces it). --dry-run only counts."""

from __future__ import annotations

import argparse

from taskapi.client.api import TaskApiClient
from taskapi.client.cli.arguments import About
from taskapi.client.cli.bulk import Progress, Verb, act_on_selection, add_dry_run, add_filters, status_suffix
from taskapi.client.tasks import TaskFilterArgs
from taskapi.models.responses import BulkRegenerateOut

VERB = Verb("regenerate", ongoing="regenerating", done="regenerated")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_filters(parser, VERB, status_help="only tasks in these statuses, e.g. FAILED")
    parser.add_argument("--force", action="store_true", help="regenerate PROCESSING tasks too (their run stops)")
    parser.add_argument(
        "--keep-results",
        action="store_true",
        help="keep the previous result, progress and error visible until the new attempt replaces them",
    )
    add_dry_run(parser)


def run(args: argparse.Namespace) -> None:
    def regenerate_all(api: TaskApiClient, filters: TaskFilterArgs, progress: Progress) -> list[BulkRegenerateOut]:
        reset = not args.keep_results
        return api.regenerate_all(reset_to_pending=reset, force=args.force, on_progress=progress, **filters)

    acted = act_on_selection(args, VERB, args.status, regenerate_all)
    if acted is not None:
        regenerated = sum(a.regenerated_count for a in acted.answers)
        acted.report(regenerated, f"none match {acted.selector.label}{status_suffix(args.status)}")


ABOUT = About(
    VERB.base,
    help="start a new attempt of the matching tasks",
    description="Regenerate every matching task (the API skips QUEUED ones, and PROCESSING ones unless --force).",
)
