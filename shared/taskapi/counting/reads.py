"""Which counts the counters answer, and the answers: one GetItem (or a BatchGetItem over the
source ids asked for) instead of COUNT queries whose cost grows with the account.

Covered (the counters' answer):
  no filter; status(es) only                 A#<account>  the statuses (all six without a filter)
  group, alone or with status(es)            G#<account>#<group>
  source id(s), alone or with status(es)     S#<account>#<source> for each id, summed
  status(es) among QUEUED/PROCESSING with a priority (no group, source)   A# QUEUED#<p> / PROCESSING#<p>
  PENDING + QUEUED + PROCESSING with request_data (the ceiling)           A# HELD
Not covered (counted by query on the most selective index, as before): task_ids, task_type,
a priority otherwise, group and source ids together, and request_data (queueable) otherwise."""

from __future__ import annotations

from taskapi.counting.contributions import (
    HELD,
    STATUSES,
    account_key,
    group_key,
    priority_attribute,
    source_key,
)
from taskapi.counting.store import BY_PRIORITY_STATUSES, CounterStore
from taskapi.models.domain import OPEN_STATUSES
from taskapi.store.base import TaskFilters

CounterReads = list[tuple[str, tuple[str, ...]]]
"""(counter key, attributes) pairs whose counts, summed, answer a count."""


def counter_reads(account_id: str, filters: TaskFilters) -> CounterReads | None:
    """The counter attributes that answer `filters` exactly, or None when no counter does."""
    if filters.task_ids or filters.task_type is not None:
        return None
    statuses = tuple(dict.fromkeys(status.value for status in filters.statuses))
    by_place = filters.group_id is not None or bool(filters.source_ids)
    if filters.queueable is not None:
        held = filters.queueable and set(filters.statuses) == OPEN_STATUSES
        if not held or by_place or filters.priority is not None:
            return None
        return [(account_key(account_id), (HELD,))]
    if filters.priority is not None:
        if by_place or not statuses or any(status not in BY_PRIORITY_STATUSES for status in statuses):
            return None
        return [(account_key(account_id), tuple(priority_attribute(s, filters.priority) for s in statuses))]
    attributes = statuses or STATUSES
    if filters.group_id is not None and filters.source_ids:
        return None
    if filters.source_ids:
        return [(source_key(account_id, source), attributes) for source in dict.fromkeys(filters.source_ids)]
    if filters.group_id is not None:
        return [(group_key(account_id, filters.group_id), attributes)]
    return [(account_key(account_id), attributes)]


def covered_count(store: CounterStore, account_id: str, filters: TaskFilters) -> int | None:
    """The count of the account's tasks matching `filters` from the counters (one GetItem, or one
    BatchGetItem per 100 source ids), or None when no counter covers these filters. Counters lag
    the tasks table by seconds."""
    reads = counter_reads(account_id, filters)
    if reads is None:
        return None
    counts = store.get([key for key, _ in reads])
    return sum(counts[key].total(attributes) for key, attributes in reads)
