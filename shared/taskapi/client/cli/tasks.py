"""`taskapi tasks [SELECTOR] [--status S] [--type T] [--priority P] [--limit N | --all] [--json]`

Newest first, 100 per request; --limit (default 50) or --all. A table (id, type, status, progress,
group, updated) with "N of TOTAL tasks", or --json: one API task object per line."""

from __future__ import annotations

import argparse
from typing import Final

from taskapi.client.api import TaskApiClient
from taskapi.client.cli.arguments import About, add_selectors, add_type_option, positive_int, statuses
from taskapi.client.cli.credentials import failures, open_client
from taskapi.client.cli.output import Output
from taskapi.client.cli.runtime import runtime_of
from taskapi.client.cli.selection import Selector, selector_of
from taskapi.models.domain import Priority
from taskapi.models.responses import TaskOut

DEFAULT_LIST_LIMIT: Final = 50
PAGE_SIZE: Final = 100
"""Tasks per list call: whole tasks (request_data up to 24 KB each), as iter_tasks pages them."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selectors(parser, "list")
    parser.add_argument("--status", type=statuses, help="one status or several, comma-separated")
    add_type_option(parser)
    parser.add_argument("--priority", choices=[p.value for p in Priority], help="only this priority")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIST_LIMIT,
        help=f"at most N tasks (default {DEFAULT_LIST_LIMIT})",
    )
    amount.add_argument("--all", action="store_true", help="every matching task (all pages)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line (the API's task objects)")


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


def run(args: argparse.Namespace) -> None:
    runtime = runtime_of(args)
    out = Output(runtime, plain=args.plain)
    selector = selector_of(args)
    api = open_client(args, runtime)
    with api, failures("list the tasks", api):
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


ABOUT = About(
    "tasks",
    help="list tasks, newest first",
    description="List tasks with the API's filters, as a table or JSON lines.",
)
