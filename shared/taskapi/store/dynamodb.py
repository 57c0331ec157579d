"""DynamoDB adapter of TaskRepository. The only module that knows the table's item layout.

Item layout (see template.yaml, TasksTable):
  account_id, task_id                 table key
  created_sk = "<created_at>#<task_id>"   range key of every index (unique within an account)
  account_status, account_group, account_source = "<account_id>#<value>"   index hash keys
  has_request_data = true             only on items with request_data (the indexes' filters test it)

The indexes project a few attributes (INDEX_ATTRIBUTES): a FilterExpression uses only those, and a
page reads the index's keys, then the items by BatchGetItem.
"""

from __future__ import annotations

import heapq
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

from taskapi.aws_errors import AWS_ERRORS, AwsError, cancellation_reasons, error_code, translate
from taskapi.errors import Conflict, Retryable, TaskApiError
from taskapi.models.domain import OPEN_STATUSES, Priority, Task, TaskEvent, TaskStatus, TaskType
from taskapi.store.base import InsertResult, TaskFilters

BATCH_GET_SIZE = 100
INSERT_ROUNDS = 4
TRANSACTION_LIMIT = 100
"""TransactWriteItems takes at most 100 items."""


def _s(value: str) -> dict[str, str]:
    return {"S": value}


INDEX_ATTRIBUTES: dict[str, frozenset[str]] = {
    "by_account": frozenset({"task_type", "priority", "has_request_data"}),
    "by_status": frozenset({"task_type", "priority", "task_source_group_id", "has_request_data"}),
    "by_group": frozenset({"status", "task_type", "priority", "has_request_data"}),
    "by_source": frozenset({"status", "task_type", "priority", "task_source_group_id", "has_request_data"}),
    "by_open": frozenset(),
}
"""The non-key attributes each index projects (template.yaml, TasksTable): a Query of an index may
filter on these, its keys and the table's keys, nothing else (DynamoDB would see them missing)."""
PAGE_KEY_ATTRIBUTES = ("account_id", "task_id", "created_sk")
"""What a page's Query keeps of each index entry: the table key to fetch the item, the sort key to merge."""

OPEN_SHARDS = 8
"""The reconciler's index spreads open tasks of one status over this many partitions."""


def open_key(task: Task) -> str | None:
    """Hash key of the by_open index: set only while a task is PENDING, QUEUED or PROCESSING."""
    if task.status not in OPEN_STATUSES:
        return None
    if task.status is TaskStatus.PENDING and task.request_data is None:
        return None  # stored, never queued: nothing for the reconciler to do
    shard = zlib.crc32(f"{task.account_id}#{task.task_id}".encode()) % OPEN_SHARDS
    return f"{task.status.value}#{shard}"


def _json(value: Any) -> dict[str, str]:
    return _s(json.dumps(value, separators=(",", ":")))


def task_to_item(task: Task) -> dict[str, Any]:
    item: dict[str, Any] = {
        "account_id": _s(task.account_id),
        "task_id": _s(task.task_id),
        "user_id": _s(task.user_id),
        "task_type": _s(task.task_type.value),
        "priority": _s(task.priority.value),
        "status": _s(task.status.value),
        "progress": {"N": str(Decimal(str(task.progress)))},
        "attempt": {"N": str(task.attempt)},
        "version": {"N": str(task.version)},
        "tries": {"N": str(task.tries)},
        "created_at": _s(task.created_at),
        "updated_at": _s(task.updated_at),
        "created_sk": _s(task.created_sk),
        "account_status": _s(f"{task.account_id}#{task.status.value}"),
        "events": {"L": [{"M": {"timestamp": _s(e.timestamp), "message": _s(e.message)}} for e in task.events]},
    }
    if task.task_source_name is not None:
        item["task_source_name"] = _s(task.task_source_name)
    if task.task_source_id is not None:
        item["task_source_id"] = _s(task.task_source_id)
        item["account_source"] = _s(f"{task.account_id}#{task.task_source_id}")
    if task.task_source_group_id is not None:
        item["task_source_group_id"] = _s(task.task_source_group_id)
        item["account_group"] = _s(f"{task.account_id}#{task.task_source_group_id}")
    if task.request_data is not None:
        # Stored as JSON text: numbers keep their exact JSON type (DynamoDB has no float).
        item["request_data"] = _json(task.request_data)
        item["has_request_data"] = {"BOOL": True}  # projected into the indexes, for their filters
    key = open_key(task)
    if key is not None:
        item["open_key"] = _s(key)
    for name in ("state_since", "progress_message", "result_key", "error_message"):
        value = getattr(task, name)
        if value is not None:
            item[name] = _s(value)
    if task.result_summary is not None:
        item["result_summary"] = _json(task.result_summary)
    if task.error_details is not None:
        item["error_details"] = _json(task.error_details)
    return item


def item_to_task(item: dict[str, Any]) -> Task:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else value["S"]

    def number(name: str, default: int) -> int:
        value = item.get(name)
        return default if value is None else int(value["N"])

    def document(name: str) -> Any:
        value = text(name)
        return None if value is None else json.loads(value)

    progress = float(item["progress"]["N"])
    return Task(
        account_id=item["account_id"]["S"],
        task_id=item["task_id"]["S"],
        user_id=item["user_id"]["S"],
        task_type=TaskType(item["task_type"]["S"]),
        priority=Priority(item["priority"]["S"]),
        status=TaskStatus(item["status"]["S"]),
        progress=progress,
        attempt=int(item["attempt"]["N"]),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        task_source_name=text("task_source_name"),
        task_source_id=text("task_source_id"),
        task_source_group_id=text("task_source_group_id"),
        request_data=document("request_data"),
        events=[
            TaskEvent(timestamp=e["M"]["timestamp"]["S"], message=e["M"]["message"]["S"]) for e in item["events"]["L"]
        ],
        version=number("version", 1),
        tries=number("tries", 0),
        state_since=text("state_since"),
        progress_message=text("progress_message"),
        result_key=text("result_key"),
        result_summary=document("result_summary"),
        error_message=text("error_message"),
        error_details=document("error_details"),
    )


def _domain_error(exc: AwsError) -> TaskApiError:
    return translate(exc, service="DynamoDB", conflict="The task changed while this request was being handled")


@dataclass
class _Expression:
    """Accumulates names and values for one Query."""

    names: dict[str, str]
    values: dict[str, Any]

    def value(self, raw: str) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _s(raw)
        return placeholder

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder


@dataclass(frozen=True)
class _Stream:
    """One Query: an index, its hash key value, and the filters it cannot serve by key."""

    index: str
    hash_attribute: str
    hash_value: str
    residual: TaskFilters


class DynamoTaskRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ------------------------------------------------------------------ writes
    def insert_new(self, tasks: Sequence[Task]) -> InsertResult:
        """One TransactWriteItems conditioned on each id being new. When some exist, the failed
        transaction answers their stored items (ALL_OLD) and the rest go in a second one."""
        result = InsertResult()
        pending = list(tasks)
        for round_number in range(INSERT_ROUNDS):
            if not pending:
                return result
            try:
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": task_to_item(task),
                                "ConditionExpression": "attribute_not_exists(task_id)",
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        }
                        for task in pending
                    ]
                )
            except AWS_ERRORS as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise _domain_error(exc) from exc
                reasons = cancellation_reasons(exc)
                if len(reasons) != len(pending):  # no per-item verdict: try them all again
                    time.sleep(0.05 * 2**round_number)
                    continue
                still_new: list[Task] = []
                lost_race = False
                for task, reason in zip(pending, reasons, strict=True):
                    reason_code = reason.get("Code", "None")
                    if reason_code == "ConditionalCheckFailed":
                        if "Item" in reason:
                            result.existing[task.task_id] = item_to_task(reason["Item"])
                        else:  # pragma: no cover - DynamoDB always returns ALL_OLD when asked
                            stored = self.get(task.account_id, task.task_id)
                            if stored is not None:
                                result.existing[task.task_id] = stored
                    elif reason_code in ("None", ""):
                        still_new.append(task)
                    else:  # TransactionConflict, throttling: try the same tasks again
                        lost_race = True
                        still_new.append(task)
                if lost_race:
                    time.sleep(0.05 * 2**round_number)
                pending = still_new
                continue
            result.created.update({task.task_id: task for task in pending})
            return result
        raise Retryable("Tasks could not be written after several attempts; retry the request")

    def save(self, task: Task, *, expected_version: int) -> Task:
        """Replace the stored task if it is still at expected_version; answer what was stored."""
        stored = task.model_copy(update={"version": expected_version + 1})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=task_to_item(stored),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
            )
        except AWS_ERRORS as exc:
            raise _domain_error(exc) from exc
        return stored

    def save_many(self, changes: Sequence[tuple[Task, int]]) -> dict[str, Task]:
        """save() for many tasks of one account: one TransactWriteItems per 100 (DynamoDB's limit)
        when every version still holds; otherwise one write each, skipping the tasks that changed.
        Answers what was stored."""
        saved: dict[str, Task] = {}
        for start in range(0, len(changes), TRANSACTION_LIMIT):
            saved.update(self._save_transaction(changes[start : start + TRANSACTION_LIMIT]))
        return saved

    def _save_transaction(self, changes: Sequence[tuple[Task, int]]) -> dict[str, Task]:
        if not changes:
            return {}
        stored = [(task.model_copy(update={"version": version + 1}), version) for task, version in changes]
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": task_to_item(task),
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeValues": {":v": {"N": str(version)}},
                        }
                    }
                    for task, version in stored
                ]
            )
            return {task.task_id: task for task, _ in stored}
        except AWS_ERRORS as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise _domain_error(exc) from exc
        saved: dict[str, Task] = {}
        for task, version in stored:
            try:
                saved[task.task_id] = self.save(task, expected_version=version)
            except Conflict:
                continue
        return saved

    def record_progress(
        self,
        account_id: str,
        task_id: str,
        *,
        attempt: int,
        progress: float,
        message: str,
        now: str,
        claim: str | None = None,
    ) -> bool:
        """Write progress while the task is PROCESSING this attempt (under this claim, when given:
        the claim's state_since); False means it no longer is (cancelled, regenerated, timed out,
        taken over after the lease ended): the worker must stop."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"account_id": _s(account_id), "task_id": _s(task_id)},
                UpdateExpression=(
                    "SET progress = :p, progress_message = :m, updated_at = :now, version = version + :one"
                ),
                ConditionExpression="#status = :processing AND attempt = :a AND progress <= :p"
                + (" AND state_since = :claim" if claim else ""),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":p": {"N": str(Decimal(str(progress)))},
                    ":m": _s(message),
                    ":now": _s(now),
                    ":one": {"N": "1"},
                    ":processing": _s(TaskStatus.PROCESSING.value),
                    ":a": {"N": str(attempt)},
                    **({":claim": _s(claim)} if claim else {}),
                },
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _domain_error(exc) from exc
        return True

    # ------------------------------------------------------------------ reads
    def get(self, account_id: str, task_id: str) -> Task | None:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"account_id": _s(account_id), "task_id": _s(task_id)},
                ConsistentRead=True,
            )
        except AWS_ERRORS as exc:
            raise _domain_error(exc) from exc
        item = answer.get("Item")
        return None if item is None else item_to_task(item)

    def get_many(self, account_id: str, task_ids: Iterable[str]) -> dict[str, Task]:
        return self._batch_get(account_id, task_ids, consistent=True)

    def _batch_get(self, account_id: str, task_ids: Iterable[str], *, consistent: bool) -> dict[str, Task]:
        ids = list(dict.fromkeys(task_ids))
        found: dict[str, Task] = {}
        for start in range(0, len(ids), BATCH_GET_SIZE):
            keys: list[dict[str, Any]] = [
                {"account_id": _s(account_id), "task_id": _s(task_id)}
                for task_id in ids[start : start + BATCH_GET_SIZE]
            ]
            attempt = 0
            while keys:
                try:
                    answer = self._client.batch_get_item(
                        RequestItems={self._table: {"Keys": keys, "ConsistentRead": consistent}}
                    )
                except AWS_ERRORS as exc:
                    raise _domain_error(exc) from exc
                for item in answer.get("Responses", {}).get(self._table, []):
                    task = item_to_task(item)
                    found[task.task_id] = task
                keys = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if keys:
                    attempt += 1
                    if attempt > 5:
                        raise Retryable("DynamoDB left keys unprocessed; retry the request")
                    time.sleep(0.05 * 2**attempt)
        return found

    def page(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int = 0
    ) -> list[Task]:
        """The index is read for keys only (the skipped ones too: DynamoDB has no offset, but only
        their sort key is kept while merging, so a skip of 100,000 costs index reads, not memory);
        then the page's items are fetched by BatchGetItem (eventually consistent, like the index)
        and answered in the index's order."""
        return self._window(account_id, filters, before=before, want=want, skip=skip, look_ahead=0)[0]

    def window(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int = 0
    ) -> tuple[list[Task], bool]:
        return self._window(account_id, filters, before=before, want=want, skip=skip, look_ahead=1)

    def _window(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int, look_ahead: int
    ) -> tuple[list[Task], bool]:
        if want <= 0:
            return [], False
        if filters.task_ids:
            tasks = self._page_by_ids(account_id, filters, before=before, want=skip + want + look_ahead)[skip:]
            return tasks[:want], len(tasks) > want
        task_ids = self._index_ids(account_id, filters, before=before, want=want + look_ahead, skip=skip)
        shown = task_ids[:want]
        found = self._batch_get(account_id, shown, consistent=False)
        # An id the index still lists but the table no longer holds is left out.
        return [found[task_id] for task_id in shown if task_id in found], len(task_ids) > want

    def newest_ids(self, account_id: str, filters: TaskFilters, *, want: int) -> list[str]:
        if want <= 0:
            return []
        if filters.task_ids:
            return [task.task_id for task in self._page_by_ids(account_id, filters, before=None, want=want)]
        return self._index_ids(account_id, filters, before=None, want=want, skip=0)

    def _index_ids(
        self, account_id: str, filters: TaskFilters, *, before: str | None, want: int, skip: int
    ) -> list[str]:
        streams = [self._iterate(stream, before=before, want=skip + want) for stream in self._plan(account_id, filters)]
        merged = heapq.merge(*streams, key=lambda entry: entry["created_sk"]["S"], reverse=True)
        return [entry["task_id"]["S"] for entry in islice(merged, skip, skip + want)]

    def count(self, account_id: str, filters: TaskFilters, *, at_most: int | None = None) -> int:
        if filters.task_ids:
            return sum(1 for task in self.get_many(account_id, filters.task_ids).values() if filters.matches(task))
        total = 0
        for stream in self._plan(account_id, filters):
            total += self._count(stream, None if at_most is None else at_most - total)
            if at_most is not None and total >= at_most:
                break
        return total

    def open_tasks(self, status: TaskStatus, *, before: str, limit: int) -> list[tuple[str, str]]:
        """(account_id, task_id) of tasks in `status` since before `before`, oldest first, across
        every shard. The index lags the table: callers re-read each task before acting."""
        found: list[tuple[str, str]] = []
        per_shard = max(1, -(-limit // OPEN_SHARDS))  # each shard gets its share of the run's work

        for shard in range(OPEN_SHARDS):
            shard_found: list[tuple[str, str]] = []

            def remaining(collected: list[tuple[str, str]] = shard_found) -> int:
                return max(min(per_shard - len(collected), 1000), 1)

            args = {
                "TableName": self._table,
                "IndexName": "by_open",
                "KeyConditionExpression": "open_key = :k AND state_since < :before",
                "ExpressionAttributeValues": {":k": _s(f"{status.value}#{shard}"), ":before": _s(before)},
            }
            for answer in self._pages(args, remaining):
                shard_found += [(item["account_id"]["S"], item["task_id"]["S"]) for item in answer.get("Items", [])]
                if len(shard_found) >= per_shard:
                    break
            found += shard_found[:per_shard]
        return found[:limit]

    # ------------------------------------------------------------------ planning
    def _page_by_ids(self, account_id: str, filters: TaskFilters, *, before: str | None, want: int) -> list[Task]:
        tasks = [t for t in self.get_many(account_id, filters.task_ids).values() if filters.matches(t)]
        if before is not None:
            tasks = [t for t in tasks if t.created_sk < before]
        tasks.sort(key=lambda t: t.created_sk, reverse=True)
        return tasks[:want]

    @staticmethod
    def _plan(account_id: str, filters: TaskFilters) -> list[_Stream]:
        """Query the most selective index; the other filters become a FilterExpression."""
        if filters.source_ids:
            residual = TaskFilters(
                group_id=filters.group_id,
                statuses=filters.statuses,
                task_type=filters.task_type,
                priority=filters.priority,
                queueable=filters.queueable,
            )
            return [
                _Stream("by_source", "account_source", f"{account_id}#{source}", residual)
                for source in dict.fromkeys(filters.source_ids)
            ]
        if filters.group_id is not None:
            residual = TaskFilters(
                statuses=filters.statuses,
                task_type=filters.task_type,
                priority=filters.priority,
                queueable=filters.queueable,
            )
            return [_Stream("by_group", "account_group", f"{account_id}#{filters.group_id}", residual)]
        residual = TaskFilters(task_type=filters.task_type, priority=filters.priority, queueable=filters.queueable)
        if filters.statuses:
            return [
                _Stream("by_status", "account_status", f"{account_id}#{status.value}", residual)
                for status in dict.fromkeys(filters.statuses)
            ]
        return [_Stream("by_account", "account_id", account_id, residual)]

    def _query_args(self, stream: _Stream, before: str | None) -> dict[str, Any]:
        expr = _Expression(names={}, values={})
        key_condition = f"{expr.name(stream.hash_attribute)} = {expr.value(stream.hash_value)}"
        if before is not None:
            key_condition += f" AND {expr.name('created_sk')} < {expr.value(before)}"
        clauses = []
        residual = stream.residual
        if residual.group_id is not None:
            clauses.append(f"{expr.name('task_source_group_id')} = {expr.value(residual.group_id)}")
        if residual.statuses:
            options = ", ".join(expr.value(str(status)) for status in residual.statuses)
            clauses.append(f"{expr.name('status')} IN ({options})")
        if residual.task_type is not None:
            clauses.append(f"{expr.name('task_type')} = {expr.value(str(residual.task_type))}")
        if residual.priority is not None:
            clauses.append(f"{expr.name('priority')} = {expr.value(str(residual.priority))}")
        if residual.queueable is not None:
            # A filter, so _count reads without Limit: items read are no longer items counted.
            test = "attribute_exists" if residual.queueable else "attribute_not_exists"
            clauses.append(f"{test}({expr.name('has_request_data')})")
        filtered = set(expr.names.values()) - {stream.hash_attribute, "created_sk"}
        if not filtered <= INDEX_ATTRIBUTES[stream.index]:  # pragma: no cover - a planning bug
            raise AssertionError(f"{stream.index} does not project {sorted(filtered - INDEX_ATTRIBUTES[stream.index])}")
        args: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": stream.index,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeNames": expr.names,
            "ExpressionAttributeValues": expr.values,
            "ScanIndexForward": False,
        }
        if clauses:
            args["FilterExpression"] = " AND ".join(clauses)
        return args

    def _pages(self, args: dict[str, Any], limit: Callable[[], int] | None) -> Iterator[dict[str, Any]]:
        start_key = None
        while True:
            call = dict(args)
            if start_key is not None:
                call["ExclusiveStartKey"] = start_key
            if limit is not None:
                call["Limit"] = limit()
            try:
                answer = self._client.query(**call)
            except AWS_ERRORS as exc:
                raise _domain_error(exc) from exc
            yield answer
            start_key = answer.get("LastEvaluatedKey")
            if start_key is None:
                return

    def _iterate(self, stream: _Stream, *, before: str | None, want: int) -> Iterator[dict[str, Any]]:
        """Index entries (PAGE_KEY_ATTRIBUTES) of one stream, newest first, reading only as many as
        the page needs.

        Without a FilterExpression every item read is returned, so Limit = what is still wanted.
        With one, reading twice that (at least 50) keeps round trips few for selective filters."""
        args = self._query_args(stream, before)
        filtered = "FilterExpression" in args
        args["ExpressionAttributeNames"] = names = dict(args["ExpressionAttributeNames"])
        names.update({f"#{attribute}": attribute for attribute in PAGE_KEY_ATTRIBUTES})
        args["ProjectionExpression"] = ", ".join(f"#{attribute}" for attribute in PAGE_KEY_ATTRIBUTES)
        yielded = 0

        def limit() -> int:
            remaining = max(want - yielded, 1)
            return min(max(remaining * 2, 50), 1000) if filtered else min(remaining, 1000)

        for answer in self._pages(args, limit):
            for item in answer.get("Items", []):
                yield item
                yielded += 1
            if yielded >= want:
                return

    def _count(self, stream: _Stream, at_most: int | None = None) -> int:
        """Select=COUNT over the stream's pages; with at_most (and no FilterExpression, where
        items read = items counted) each page reads only what is still needed."""
        args = self._query_args(stream, None)
        args["Select"] = "COUNT"
        total = 0

        def remaining() -> int:
            return max(1, (at_most or 0) - total)

        bounded = at_most is not None and "FilterExpression" not in args
        for answer in self._pages(args, remaining if bounded else None):
            total += answer.get("Count", 0)
            if at_most is not None and total >= at_most:
                break
        return total
