"""What a task item adds to the counters, read from a DynamoDB image (typed JSON: {"S": ...}), as
stream records carry it and as taskapi.store.dynamodb.task_to_item writes it.

A task contributes 1 to:
  A#<account_id>              <status>; QUEUED#<priority> / PROCESSING#<priority> while in those
                              states; HELD while PENDING, QUEUED or PROCESSING with request_data
  G#<account_id>#<group_id>   <status>, when it has a task_source_group_id
  S#<account_id>#<source_id>  <status>, when it has a task_source_id

A change of a task moves its contributions: delta(old, new) = contributions(new) - contributions(old),
without the zeros. An image that is not a task (no account_id, task_id or known status) contributes
nothing, so foreign items of the table never touch a counter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Image = Mapping[str, Any]
"""A DynamoDB item in typed JSON ({"account_id": {"S": "acct"}, ...}); None or {} for no item."""
Counts = dict[str, dict[str, int]]
"""counter_key -> {attribute: amount}."""

STATUSES: tuple[str, ...] = ("PENDING", "QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")
PRIORITIES: tuple[str, ...] = ("urgent", "high", "normal", "low")
OPEN_STATUSES = frozenset({"PENDING", "QUEUED", "PROCESSING"})
BY_PRIORITY_STATUSES = frozenset({"QUEUED", "PROCESSING"})
HELD = "HELD"
"""Attribute of A#<account>: open tasks with request_data (what the unfinished-task ceiling counts)."""
REV = "rev"
CHANGED_AT = "changed_at"

ACCOUNT_PREFIX = "A#"
GROUP_PREFIX = "G#"
SOURCE_PREFIX = "S#"
MARKER_PREFIX = "M#"


def account_key(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def group_key(account_id: str, group_id: str) -> str:
    return f"{GROUP_PREFIX}{account_id}#{group_id}"


def source_key(account_id: str, source_id: str) -> str:
    return f"{SOURCE_PREFIX}{account_id}#{source_id}"


def marker_key(event_id: str) -> str:
    return f"{MARKER_PREFIX}{event_id}"


def priority_attribute(status: str, priority: str) -> str:
    """QUEUED#<priority> or PROCESSING#<priority> of A#<account>."""
    return f"{status}#{priority}"


def _text(image: Image, name: str) -> str | None:
    value = image.get(name)
    if isinstance(value, Mapping) and isinstance(value.get("S"), str):
        return str(value["S"])
    return None


def _present(image: Image, name: str) -> bool:
    value = image.get(name)
    return isinstance(value, Mapping) and bool(value) and not value.get("NULL")


def _has_request_data(image: Image) -> bool:
    """request_data stored (as JSON text), or the has_request_data flag the indexes project."""
    if _present(image, "request_data"):
        return True
    flag = image.get("has_request_data")
    return isinstance(flag, Mapping) and flag.get("BOOL") is True


def contributions(image: Image | None) -> Counts:
    """counter_key -> {attribute: 1} for one task item; {} for no item or one that is not a task."""
    if not image:
        return {}
    account_id, task_id, status = _text(image, "account_id"), _text(image, "task_id"), _text(image, "status")
    if not account_id or not task_id or status not in STATUSES:
        return {}
    assert status is not None
    own: dict[str, int] = {status: 1}
    priority = _text(image, "priority")
    if status in BY_PRIORITY_STATUSES and priority in PRIORITIES:
        assert priority is not None
        own[priority_attribute(status, priority)] = 1
    if status in OPEN_STATUSES and _has_request_data(image):
        own[HELD] = 1
    counts: Counts = {account_key(account_id): own}
    group_id = _text(image, "task_source_group_id")
    if group_id:
        counts[group_key(account_id, group_id)] = {status: 1}
    source_id = _text(image, "task_source_id")
    if source_id:
        counts[source_key(account_id, source_id)] = {status: 1}
    return counts


def add_into(total: Counts, change: Counts) -> Counts:
    """total += change, key by key and attribute by attribute; zeros and empty keys removed."""
    for key, attributes in change.items():
        into = total.setdefault(key, {})
        for attribute, amount in attributes.items():
            value = into.get(attribute, 0) + amount
            if value:
                into[attribute] = value
            else:
                into.pop(attribute, None)
        if not into:
            del total[key]
    return total


def delta(old_image: Image | None, new_image: Image | None) -> Counts:
    """What a change of one item (INSERT: no old image, REMOVE: no new one) does to the counters;
    {} when it moves no counter (a progress write, an event appended)."""
    change = contributions(new_image)
    old = contributions(old_image)
    removed = {key: {attribute: -amount for attribute, amount in attrs.items()} for key, attrs in old.items()}
    return add_into(change, removed)
