"""The counters on the running stack: the tasks table's stream reaches functions/counters through
the local stack's stream poller, and after a burst of creates, cancels, regenerates and
completions over HTTP the counters agree with the tasks — in the counters table and in what the
API answers from them (/api/tasks/count/total and the first list page's `total` by status, group
and source, a tenant's queue status) against the tasks it lists; a batch of the stream delivered
again (from the first record of a chunk the poller delivered, running on to the end) changes
nothing."""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.e2e.support import (
    CliRunner,
    aws_client,
    count,
    create,
    eventually,
    listed_ids,
    processing_paused,
    queue_status,
    task_body,
    wait_for_status,
    wait_until,
)
from tests.support.streams import read_stream

pytestmark = pytest.mark.e2e

ACCOUNT = "counters_e2e"
TASKS_TABLE = "taskapi-local-TasksTable"
COUNTERS_TABLE = "taskapi-local-CountersTable"
OPEN = ("PENDING", "QUEUED", "PROCESSING")
COUNTER_SECONDS = 30
"""How long the counters may lag the tasks on a busy stack (the poller reads every half second)."""
STATUSES = ("PENDING", "QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")
HTTP_FILTERS: list[dict[str, str]] = [
    {},
    *({"status": status} for status in STATUSES),
    {"status": "PENDING,QUEUED,PROCESSING"},
    {"task_source_group_id": "cg1"},
    {"task_source_group_id": "cg2"},
    {"task_source_group_id": "cg2", "status": "CANCELLED"},
    {"task_source_group_id": "cg2", "status": "PENDING,QUEUED,PROCESSING"},
    {"task_source_ids": "cs0"},
    {"task_source_ids": "cs1"},
    {"task_source_ids": "cs0,cs1"},
    {"task_source_ids": "cs0,cs1", "status": "COMPLETED"},
    {"task_source_ids": "cs1", "status": "PENDING"},
]
"""Filters the counters answer (the account's, a group's, sources' counters, with or without statuses)."""


@pytest.fixture(scope="module")
def headers(create_api_key: Callable[[str], str]) -> dict[str, str]:
    return {"X-API-Key": create_api_key(ACCOUNT)}


def counters_of(dynamodb: Any, account: str) -> dict[str, dict[str, int]]:
    """The account's counters (A#, G#, S#): their non-zero counts."""
    found: dict[str, dict[str, int]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=COUNTERS_TABLE, ConsistentRead=True):
        for item in page["Items"]:
            key = item["counter_key"]["S"]
            if key != f"A#{account}" and not key.startswith((f"G#{account}#", f"S#{account}#")):
                continue
            counts = {name: int(v["N"]) for name, v in item.items() if "N" in v and name != "rev" and int(v["N"])}
            if counts:
                found[key] = counts
    return found


def tasks_counted(dynamodb: Any, account: str) -> dict[str, dict[str, int]]:
    """The same counts, from the account's task items (a Query of the table)."""
    counts: dict[str, Counter[str]] = {}
    pages = dynamodb.get_paginator("query").paginate(
        TableName=TASKS_TABLE,
        KeyConditionExpression="account_id = :a",
        ExpressionAttributeValues={":a": {"S": account}},
        ConsistentRead=True,
    )
    for page in pages:
        for item in page["Items"]:
            status, priority = item["status"]["S"], item["priority"]["S"]
            own = counts.setdefault(f"A#{account}", Counter())
            own[status] += 1
            if status in ("QUEUED", "PROCESSING"):
                own[f"{status}#{priority}"] += 1
            if status in OPEN and "request_data" in item:
                own["HELD"] += 1
            if "task_source_group_id" in item:
                counts.setdefault(f"G#{account}#{item['task_source_group_id']['S']}", Counter())[status] += 1
            if "task_source_id" in item:
                counts.setdefault(f"S#{account}#{item['task_source_id']['S']}", Counter())[status] += 1
    return {key: dict(counter) for key, counter in counts.items()}


def http_disagreements(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    """What the API answers from the counters that differs from the tasks it lists: per filter,
    (count/total, the first page's total at limit 1, tasks listed) where these are not all equal;
    and the queue status's account_task_counts against the PENDING/QUEUED/PROCESSING tasks listed."""
    found: dict[str, Any] = {}
    for params in HTTP_FILTERS:
        page = client.get("/api/tasks", headers=headers, params={**params, "limit": 1})
        assert page.status_code == 200, page.text
        figures = (count(client, headers, **params), page.json()["total"], len(listed_ids(client, headers, **params)))
        if len(set(figures)) > 1:
            found[str(params)] = figures
    answered = queue_status(client, headers)["account_task_counts"]
    listed = {status.lower(): len(listed_ids(client, headers, status=status)) for status in OPEN}
    if answered != listed:
        found["queue status"] = (answered, listed)
    return found


def stream_records(endpoint: str) -> list[dict[str, Any]]:
    """Every record of the tasks table's stream on the stack, from TRIM_HORIZON, in Lambda's shape."""
    return read_stream(aws_client("dynamodb", endpoint), aws_client("dynamodbstreams", endpoint), TASKS_TABLE)


def chunk_starts(dynamodb: Any) -> set[str]:
    """The eventIDs that begin a chunk the counters function committed (its markers)."""
    found = set()
    for page in dynamodb.get_paginator("scan").paginate(TableName=COUNTERS_TABLE, ConsistentRead=True):
        found |= {item["counter_key"]["S"][2:] for item in page["Items"] if item["counter_key"]["S"].startswith("M#")}
    return found


def counters_function(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """functions/counters/app.py loaded in this process, on the stack's endpoint and tables."""
    from taskapi import aws, wiring
    from taskapi.settings import get_settings

    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TASKAPI_COUNTERS_TABLE": COUNTERS_TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    get_settings.cache_clear()
    aws.reset_clients()
    wiring.reset()
    path = Path(__file__).resolve().parents[2] / "functions" / "counters" / "app.py"
    spec = importlib.util.spec_from_file_location("counters_e2e_function", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counters_agree_with_the_tasks_after_a_burst_and_after_a_replayed_batch(
    client: httpx.Client,
    headers: dict[str, str],
    stack: Any,
    run_cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dynamodb = aws_client("dynamodb", stack.aws_endpoint)
    # Given a burst over HTTP: creates (groups, sources, priorities, two stored without
    # request_data: one cancelled, one kept PENDING), cancels of queued tasks, completions, then
    # regenerates and their completions
    done = [task_body(f"cq{n}", "quiz", "urgent", task_source_group_id="cg1") for n in range(6)]
    done += [task_body(f"cd{n}", "documentation", task_source_id=f"cs{n % 2}") for n in range(4)]
    stored = [
        {"task_id": "c_stored", "task_type": "quiz", "task_source_group_id": "cg2"},
        {"task_id": "c_kept", "task_type": "documentation", "task_source_group_id": "cg2", "task_source_id": "cs1"},
    ]
    create(client, headers, *done, *stored)
    with processing_paused(run_cli):
        create(client, headers, *[task_body(f"cx{n}", "quiz", "low", task_source_group_id="cg2") for n in range(3)])
        response = client.post(
            "/api/tasks/bulk-cancel", headers=headers, json={"task_ids": ["cx0", "cx1", "c_stored"], "reason": "e2e"}
        )
        assert response.status_code == 200, response.text
        # (while paused, what the API counts agrees with what it lists once the counters caught up)
        none: dict[str, Any] = {}
        eventually(lambda: http_disagreements(client, headers), none, COUNTER_SECONDS, "counts unlike the tasks")
    ids = [body["task_id"] for body in done] + ["cx2"]
    wait_for_status(client, headers, ids)
    response = client.post("/api/tasks/bulk-regenerate", headers=headers, json={"task_ids": ["cq0", "cd0", "cx0"]})
    assert response.status_code == 200, response.text
    wait_for_status(client, headers, [*ids, "cx0"])

    # Then the counters (kept by the stack's stream poller) agree with the tasks
    expected = tasks_counted(dynamodb, ACCOUNT)
    assert expected[f"A#{ACCOUNT}"] == {"COMPLETED": 12, "CANCELLED": 2, "PENDING": 1}
    wait_until(lambda: counters_of(dynamodb, ACCOUNT) == expected, COUNTER_SECONDS, "the counters to agree")
    # and so does every count the API answers from them, with the tasks it lists
    assert http_disagreements(client, headers) == {}
    assert count(client, headers) == 15
    assert count(client, headers, status="COMPLETED") == 12
    assert count(client, headers, task_source_group_id="cg2") == 5
    assert count(client, headers, task_source_ids="cs0,cs1", status="COMPLETED") == 4
    assert queue_status(client, headers)["account_task_counts"] == {"pending": 1, "queued": 0, "processing": 0}

    # When a batch of the stream is delivered again: from the first record of the chunk the burst
    # began in, on to the end of the stream, as one batch
    records = stream_records(stack.aws_endpoint)
    first_of_burst = next(n for n, r in enumerate(records) if r["dynamodb"]["Keys"]["account_id"]["S"] == ACCOUNT)
    starts = chunk_starts(dynamodb)
    start = max(n for n in range(first_of_burst + 1) if records[n]["eventID"] in starts)
    function = counters_function(stack.aws_endpoint, monkeypatch)

    report = function.handler({"Records": records[start:]}, factories.LambdaContext())

    # Then nothing is counted twice
    assert report["skipped"] == len(records) - start
    assert counters_of(dynamodb, ACCOUNT) == expected
    assert http_disagreements(client, headers) == {}
