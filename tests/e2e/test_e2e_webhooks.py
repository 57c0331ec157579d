"""Push on the running stack: the tasks table's stream reaches functions/events, which stores the
events and sends them through the delivery queue to functions/webhook_delivery, which POSTs them to
a receiver of this test process on 127.0.0.1 (signatures verified with the `standardwebhooks`
package). A stack of its own, with the retry schedule shortened to seconds
(TASKAPI_WEBHOOK_RETRY_DELAYS_SECONDS) so that retries happen within the test."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack, clean_environment, free_port, start_stack, stop_stack
from tests.e2e.receiver import Receiver, running_receiver
from tests.e2e.support import task_body, wait_until

pytestmark = pytest.mark.e2e

TASKS = 1000
BULK = 100
DELIVERY_SECONDS = 300
QUIET_SECONDS = 3
"""After the last expected delivery, how long nothing more may arrive."""


@pytest.fixture(scope="module")
def push_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    env = clean_environment(
        TASKAPI_PORT=str(free_port()),
        TASKAPI_AWS_PORT=str(free_port()),
        TASKAPI_WEBHOOK_RETRY_DELAYS_SECONDS="[1, 1, 1]",
    )
    running = start_stack(tmp_path_factory.mktemp("push_stack"), env)
    yield running
    stop_stack(running.process)


@pytest.fixture
def client(push_stack: RunningStack) -> Iterator[httpx.Client]:
    headers = {"X-API-Key": push_stack.api_key}
    with httpx.Client(base_url=push_stack.api_url, headers=headers, timeout=60) as session:
        yield session


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def register(client: httpx.Client, receiver: Receiver, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/webhooks", json={"url": receiver.url, **body})
    assert answer.status_code == 201, answer.text
    endpoint = answer.json()
    receiver.secret = endpoint["secret"]
    return endpoint


def every_delivery(client: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.get(f"/api/webhooks/{endpoint_id}/deliveries", params=params).json()
        found += page["deliveries"]
        if not page["next_token"]:
            return found
        params["next_token"] = page["next_token"]


def test_a_thousand_tasks_give_one_completed_event_each_and_their_group_one_completion(
    client: httpx.Client, receiver: Receiver
) -> None:
    # Given an endpoint for task.completed and group.completed of one group
    group = f"push-{int(time.time())}"
    endpoint = register(client, receiver, events=["task.completed", "group.completed"], task_source_group_id=group)

    # When 1,000 quiz tasks of the group are created and processed
    ids = [f"{group}-{n:04d}" for n in range(TASKS)]
    for start in range(0, TASKS, BULK):
        body = {"tasks": [task_body(task_id, task_source_group_id=group) for task_id in ids[start : start + BULK]]}
        answer = client.post("/api/tasks/bulk", json=body)
        assert answer.status_code == 200, answer.text

    # Then each task's completion arrives, signed, under one webhook-id per task; the group's once
    wait_until(
        lambda: len(receiver.by_id("task.completed")) == TASKS and receiver.of_type("group.completed"),
        DELIVERY_SECONDS,
        "a task.completed of every task and the group's group.completed",
    )
    time.sleep(QUIET_SECONDS)
    completed = receiver.by_id("task.completed")
    assert sorted(deliveries[0].event["data"]["task_id"] for deliveries in completed.values()) == ids
    assert all(d.verified for d in receiver.deliveries), "a delivery whose signature standardwebhooks refused"
    assert all(d.event["data"]["status"] == "COMPLETED" for d in receiver.of_type("task.completed"))
    assert {d.event["group_id"] for d in receiver.deliveries} == {group}
    (finished,) = receiver.by_id("group.completed").values()
    assert {d.event["id"] for d in finished} == {finished[0].webhook_id}  # at least once, same id
    counts = finished[0].event["data"]["counts"]
    assert counts["COMPLETED"] == TASKS
    assert sum(counts.values()) == TASKS
    client.delete(f"/api/webhooks/{endpoint['id']}")


def test_a_receiver_failing_twice_gets_the_same_event_three_times_then_it_is_delivered(
    client: httpx.Client, receiver: Receiver
) -> None:
    # Given a receiver that answers 500 to the first two deliveries of each task.completed
    group = f"flaky-{int(time.time())}"
    endpoint = register(client, receiver, events=["task.completed"], task_source_group_id=group)
    receiver.scripts["task.completed"] = [500, 500]

    # When five tasks complete
    body = {"tasks": [task_body(f"{group}-{n}", task_source_group_id=group) for n in range(5)]}
    assert client.post("/api/tasks/bulk", json=body).status_code == 200

    # Then each event came three times under the same webhook-id, and the deliveries say succeeded
    wait_until(
        lambda: sorted(Counter(d.webhook_id for d in receiver.deliveries).values()) == [3] * 5,
        DELIVERY_SECONDS,
        "three deliveries of each of the five events",
    )
    time.sleep(QUIET_SECONDS)
    assert sorted(Counter(d.webhook_id for d in receiver.deliveries).values()) == [3] * 5
    assert [d.status for d in receiver.deliveries].count(200) == 5
    deliveries = client.get(f"/api/webhooks/{endpoint['id']}/deliveries").json()["deliveries"]
    assert sorted((d["status"], d["attempts"]) for d in deliveries) == [("succeeded", 3)] * 5
    client.delete(f"/api/webhooks/{endpoint['id']}")


def test_a_receiver_answering_410_disables_its_endpoint_with_the_reason(
    client: httpx.Client, receiver: Receiver
) -> None:
    group = f"gone-{int(time.time())}"
    endpoint = register(client, receiver, events=["task.completed"], task_source_group_id=group)
    receiver.scripts["task.completed"] = [410]

    assert client.post(
        "/api/tasks/bulk", json={"tasks": [task_body(f"{group}-0", task_source_group_id=group)]}
    ).is_success

    def disabled() -> dict[str, Any] | None:
        current = client.get(f"/api/webhooks/{endpoint['id']}").json()
        return current if current["enabled"] is False else None

    current = wait_until(disabled, DELIVERY_SECONDS, "the endpoint disabled")
    assert "410" in current["disabled_reason"]
    assert len(receiver.deliveries) == 1


CRASH_EVERY = 40
"""Five crashes over CRASH_TASKS deliveries; each leaves its lease until it expires (30 s)."""
CRASH_TASKS = 200


@pytest.fixture(scope="module")
def crashing_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack whose webhook sender crashes after every CRASH_EVERY-th POST its receiver answered
    (infra/faults.py: the whole invocation fails, as a dying Lambda's does)."""
    env = clean_environment(
        TASKAPI_PORT=str(free_port()),
        TASKAPI_AWS_PORT=str(free_port()),
        TASKAPI_LOCAL_FAULT_DELIVERY_CRASH_EVERY=str(CRASH_EVERY),
    )
    running = start_stack(tmp_path_factory.mktemp("crashing_push_stack"), env)
    yield running
    stop_stack(running.process)


def test_a_sender_crashing_mid_batch_loses_nothing_and_resends_under_the_same_ids(
    crashing_stack: RunningStack, receiver: Receiver
) -> None:
    headers = {"X-API-Key": crashing_stack.api_key}
    with httpx.Client(base_url=crashing_stack.api_url, headers=headers, timeout=60) as client:
        group = f"crash-{int(time.time())}"
        endpoint = register(client, receiver, events=["task.completed"], task_source_group_id=group)
        ids = [f"{group}-{n:04d}" for n in range(CRASH_TASKS)]
        for start in range(0, CRASH_TASKS, BULK):
            body = {"tasks": [task_body(t, task_source_group_id=group) for t in ids[start : start + BULK]]}
            assert client.post("/api/tasks/bulk", json=body).status_code == 200

        def all_succeeded() -> bool:
            deliveries = every_delivery(client, endpoint["id"])
            return len(deliveries) == CRASH_TASKS and all(d["status"] == "succeeded" for d in deliveries)

        wait_until(all_succeeded, DELIVERY_SECONDS, "every delivery succeeded despite the crashes")

    by_id = receiver.by_id("task.completed")
    assert sorted(deliveries[0].event["data"]["task_id"] for deliveries in by_id.values()) == ids  # none lost
    received = sum(len(deliveries) for deliveries in by_id.values())
    assert received > CRASH_TASKS  # the crashes made the sender POST some events again ...
    assert all(len({d.event["id"] for d in deliveries}) == 1 for deliveries in by_id.values())  # ... same ids
    assert all(d.verified for d in receiver.deliveries)
