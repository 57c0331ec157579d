"""The tasks table's stream on moto, read as Lambda would deliver it, and the counters it should
give, recounted by query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3

from taskapi.counting.apply import Change
from taskapi.models.domain import Priority, TaskStatus
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository
from tests.support.streams import STREAMS_CONFIG, read_stream

OPEN = (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING)


def streams_client() -> Any:
    return boto3.client("dynamodbstreams", config=STREAMS_CONFIG)


def stream_records(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every record of the table's stream from TRIM_HORIZON, shaped as Lambda's event records."""
    return read_stream(dynamodb, streams_client(), table_name)


def changes(records: Sequence[dict[str, Any]]) -> list[Change]:
    return [Change.from_record(record) for record in records]


def event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def stored_counters(dynamodb: Any, table_name: str) -> dict[str, dict[str, int]]:
    """Every counter (A#, G#, S#) of the table: its non-zero counts, without rev and changed_at."""
    found: dict[str, dict[str, int]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        for item in page["Items"]:
            key = item["counter_key"]["S"]
            if key[:2] not in ("A#", "G#", "S#"):
                continue
            counts = {
                name: int(value["N"])
                for name, value in item.items()
                if "N" in value and name not in ("rev",) and int(value["N"]) != 0
            }
            if counts:
                found[key] = counts
    return found


def markers(dynamodb: Any, table_name: str) -> dict[str, int]:
    answer = dynamodb.scan(TableName=table_name, ConsistentRead=True)
    return {
        item["counter_key"]["S"]: int(item["applied"]["N"])
        for item in answer["Items"]
        if item["counter_key"]["S"].startswith("M#")
    }


def recount(repository: DynamoTaskRepository, dynamodb: Any, tasks_table: str) -> dict[str, dict[str, int]]:
    """What the counters should hold, counted by query (the repository's count) for every account,
    group and source the tasks table holds."""
    accounts: set[str] = set()
    groups: set[tuple[str, str]] = set()
    sources: set[tuple[str, str]] = set()
    for page in dynamodb.get_paginator("scan").paginate(TableName=tasks_table):
        for item in page["Items"]:
            account = item["account_id"]["S"]
            accounts.add(account)
            if "task_source_group_id" in item:
                groups.add((account, item["task_source_group_id"]["S"]))
            if "task_source_id" in item:
                sources.add((account, item["task_source_id"]["S"]))

    def count(account: str, **filters: Any) -> int:
        return repository.count(account, TaskFilters(**filters))

    expected: dict[str, dict[str, int]] = {}
    for account in accounts:
        counts = {status.value: count(account, statuses=(status,)) for status in TaskStatus}
        for status in (TaskStatus.QUEUED, TaskStatus.PROCESSING):
            for priority in Priority:
                counts[f"{status.value}#{priority.value}"] = count(account, statuses=(status,), priority=priority)
        counts["HELD"] = count(account, statuses=OPEN, queueable=True)
        expected[f"A#{account}"] = counts
    for account, group in groups:
        expected[f"G#{account}#{group}"] = {s.value: count(account, group_id=group, statuses=(s,)) for s in TaskStatus}
    for account, source in sources:
        expected[f"S#{account}#{source}"] = {
            s.value: count(account, source_ids=(source,), statuses=(s,)) for s in TaskStatus
        }
    return {key: nonzero for key, counts in expected.items() if (nonzero := {k: v for k, v in counts.items() if v})}
