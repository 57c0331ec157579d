"""`taskapi watch [SELECTOR] [--type T] [--interval SECONDS] [--timeout SECONDS]`

Counts by status (GET /api/tasks/count/total with status=..., one call per status) and per task
type (task_type=...: only for the types present, only for statuses whose overall count is not 0,
and the last type by subtraction; StatusCounter says when the types are counted again), every
--interval seconds (default 5), until no task is PENDING, QUEUED or PROCESSING (confirmed by one
count of the three together). While tasks move, a poll may count one twice or miss it. Exit 0 when
every task ended COMPLETED or CANCELLED, 1 when any ended FAILED (so `taskapi watch --group g &&
...` goes on only after a clean run), 1 when nothing matches, 1 on --timeout."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from taskapi.cli_support import EXIT_INTERRUPTED, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.cli.arguments import About, add_selectors, add_type_option, positive_float
from taskapi.client.cli.credentials import failures, open_client
from taskapi.client.cli.output import Output
from taskapi.client.cli.runtime import runtime_of
from taskapi.client.cli.selection import OPEN_FILTER, Selector, count, selector_of
from taskapi.models.domain import OPEN_STATUSES, TaskStatus, TaskType

DEFAULT_INTERVAL: Final = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selectors(parser, "watch")
    add_type_option(parser)
    parser.add_argument(
        "--interval", type=positive_float, default=DEFAULT_INTERVAL, help="seconds between polls (default 5)"
    )
    parser.add_argument("--timeout", type=positive_float, help="give up (exit 1) after this many seconds")


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
        by_status = {status: count(self.api, self.selector, status=status.value) for status in TaskStatus}
        total = sum(by_status.values())
        quiet = not any(by_status[s] for s in OPEN_STATUSES)
        self._differed = self._differed + 1 if total != self._types_total else 0
        if self._types_total is None or self._differed >= 2 or (quiet and self._differed):
            found = {t: count(self.api, self.selector, task_type=t.value) for t in TaskType}
            self.types = [t for t in TaskType if found[t]]
            self._types_total = sum(found.values())
            self._differed = 0
        by_type: dict[TaskType, dict[TaskStatus, int]] = {}
        for task_type in self.types[:-1]:
            by_type[task_type] = {
                s: count(self.api, self.selector, task_type=task_type.value, status=s.value) if by_status[s] else 0
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
        return count(self.api, self.selector, status=OPEN_FILTER) == 0


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


def run(args: argparse.Namespace) -> None:
    runtime = runtime_of(args)
    out = Output(runtime, plain=args.plain)
    selector = selector_of(args)
    api = open_client(args, runtime)
    deadline = runtime.clock() + args.timeout if args.timeout else None
    try:
        with api, failures("count the tasks", api), out.live() as show:
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


ABOUT = About(
    "watch",
    help="show task counts live until every matching task is final",
    description="A live table of counts by status and task type, until no matching task is PENDING, "
    "QUEUED or PROCESSING. Exit 0 when none FAILED, 1 when some did, nothing matched, or --timeout passed.",
)
