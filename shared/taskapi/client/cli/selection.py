"""Which tasks a command acts on: --group, --source or --ids with the filters (--status, --type,
--priority), as one filter set per request."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from taskapi.cli_support import EXIT_USAGE, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.tasks import TaskFilterArgs
from taskapi.models import limits
from taskapi.models.domain import OPEN_STATUSES, TaskStatus

OPEN_FILTER: Final = ",".join(s.value for s in TaskStatus if s in OPEN_STATUSES)


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


def selector_of(args: argparse.Namespace) -> Selector:
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


def required_selector(args: argparse.Namespace, command: str) -> Selector:
    selector = selector_of(args)
    if selector.empty:
        raise CommandFailed(
            f"{command} needs --group, --source or --ids (it would otherwise act on every task)", EXIT_USAGE
        )
    return selector


def _with(filters: TaskFilterArgs, **extra: str) -> TaskFilterArgs:
    merged = filters.copy()
    merged.update(extra)  # type: ignore[typeddict-item]
    return merged


def count(api: TaskApiClient, selector: Selector, **extra: str) -> int:
    """Tasks of the selector (with `extra` filters), summed over its filter sets."""
    return sum(api.count_tasks(**_with(f, **extra)).total for f in selector.filters)
