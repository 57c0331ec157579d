"""What cancel and regenerate share: a selector is required, the tasks are acted on through the
bulk endpoints one filter set at a time with one progress count, --dry-run only counts, and the
summary counts matched, acted on, skipped and not found tasks, and groups the skipped by reason."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from taskapi.client.api import TaskApiClient
from taskapi.client.cli.arguments import add_selectors, add_type_option, statuses
from taskapi.client.cli.credentials import failures, open_client
from taskapi.client.cli.output import Output, Update
from taskapi.client.cli.runtime import runtime_of
from taskapi.client.cli.selection import Selector, count, required_selector
from taskapi.client.tasks import TaskFilterArgs
from taskapi.models.responses import BulkCancelOut, BulkRegenerateOut

Answer = TypeVar("Answer", BulkCancelOut, BulkRegenerateOut)
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Verb:
    """What a bulk command does, as its messages say it: cancel, cancelling, cancelled (also the
    status of a task it acted on, in the answer's details)."""

    base: str
    ongoing: str
    done: str


def add_filters(parser: argparse.ArgumentParser, verb: Verb, *, status_help: str) -> None:
    """The options cancel and regenerate start with: selectors, --type and --status."""
    add_selectors(parser, verb.base)
    add_type_option(parser)
    parser.add_argument("--status", type=statuses, help=status_help)


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="count the matching tasks only")


@dataclass
class Acted(Generic[Answer]):
    """The answers of the bulk calls, and where to report them."""

    verb: Verb
    out: Output
    selector: Selector
    answers: list[Answer]

    def report(self, acted_on: int, nothing: str) -> None:
        """`No tasks to VERB: NOTHING.` when none matched; else the summary lines, then the tasks
        not acted on grouped by status and reason."""
        matched = sum(a.total_requested for a in self.answers)
        if not matched:
            self.out.line(f"No tasks to {self.verb.base}: {nothing}.")
            return
        done = self.verb.done
        lines = [
            ("matched", str(matched)),
            (done, str(acted_on)),
            ("skipped", str(sum(a.failed_count for a in self.answers))),
            ("not found", str(sum(a.not_found_count for a in self.answers))),
        ]
        self.out.summary(f"{done.capitalize()}: {self.selector.label}", lines)
        skipped = _reasons((d for a in self.answers for d in a.details), done)
        if skipped:
            self.out.table(f"Not {done}", ("status", "reason", "tasks"), skipped)


def act_on_selection(
    args: argparse.Namespace,
    verb: Verb,
    status: str | None,
    act: Callable[[TaskApiClient, TaskFilterArgs, Progress], Sequence[Answer]],
) -> Acted[Answer] | None:
    """The selected tasks acted on, one filter set at a time by `act(api, filters, on_progress)`
    (the client's cancel_all or regenerate_all); None after a --dry-run, which counts the selected
    tasks in `status`."""
    runtime = runtime_of(args)
    out = Output(runtime, plain=args.plain)
    selector = required_selector(args, verb.base)
    api = open_client(args, runtime)
    answers: list[Answer] = []
    with api, failures(f"{verb.base} the tasks", api):
        if args.dry_run:
            matching = count(api, selector, **({"status": status} if status else {}))
            what = f"{matching} tasks of {selector.label}{status_suffix(status)}"
            out.line(f"Would {verb.base} {what} (dry run: nothing changed).")
            return None
        with out.progress(verb.ongoing, None) as update:
            for filters in selector.filters:
                answers += act(api, filters, _offset(update, sum(a.total_requested for a in answers)))
    return Acted(verb, out, selector, answers)


def _offset(update: Update, before: int) -> Progress:
    """on_progress of one filter set, shown after the `before` tasks of the sets acted on already."""

    def progress(done: int, total: int | None) -> None:
        update(before + done, None if total is None else before + total, "")

    return progress


def statuses_text(names: str) -> str:
    """Comma-separated statuses as text: A; A or B; A, B or C."""
    split = names.split(",")
    return split[0] if len(split) == 1 else f"{', '.join(split[:-1])} or {split[-1]}"


def status_suffix(names: str | None) -> str:
    return f" in status {statuses_text(names)}" if names else ""


def _reasons(details: Iterable[Any], done: str) -> list[tuple[str, str, str]]:
    """Tasks not acted on, grouped by (status, reason)."""
    grouped = Counter((d.status, d.reason) for d in details if d.status != done)
    return [(status, reason, str(n)) for (status, reason), n in grouped.most_common()]
