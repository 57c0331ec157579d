"""How fast task.completed webhooks reach a receiver: 1,000 quiz tasks through the local stack (a
subprocess: moto server, the API over HTTP, the processor, events and webhook delivery pollers),
delivered to a receiver of this process on 127.0.0.1 (tests/e2e/receiver.py, which verifies every
signature with the `standardwebhooks` package). Informational — speeds on this machine, not
assertions — except that every delivery must carry a valid signature."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

import httpx
import pytest

from tests.e2e.conftest import RunningStack, clean_environment, free_port, start_stack, stop_stack
from tests.e2e.receiver import Delivery, Receiver, running_receiver
from tests.e2e.support import task_body, wait_until
from tests.perf.support import Figure, Recorder

TASKS = 1000
BULK = 100
DEADLINE_SECONDS = 600
QUIET_SECONDS = 3
"""After the last task.completed has arrived, how long the receiver keeps counting (late duplicates)."""
SETTING = "2 cores, moto server, local pollers"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    env = clean_environment(TASKAPI_PORT=str(free_port()), TASKAPI_AWS_PORT=str(free_port()))
    running = start_stack(tmp_path_factory.mktemp("webhook_stack"), env)
    yield running
    stop_stack(running.process)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def lag_seconds(delivery: Delivery) -> float:
    """From the state change (the payload's created_at: the task's updated_at at the transition,
    ISO UTC) to receipt. The receiver runs on the stack's machine: one clock."""
    changed = datetime.fromisoformat(delivery.event["created_at"]).timestamp()
    return delivery.received_at - changed


def test_thousand_task_completed_webhooks_from_state_change_to_receipt(
    stack: RunningStack, receiver: Receiver, bench: Recorder
) -> None:
    headers = {"X-API-Key": stack.api_key}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
        # Given an endpoint for task.completed on a loopback receiver
        answer = client.post("/api/webhooks", json={"url": receiver.url, "events": ["task.completed"]})
        assert answer.status_code == 201, answer.text
        receiver.secret = answer.json()["secret"]

        # When 1,000 quiz tasks are created in bodies of 100 and processed
        started = time.monotonic()
        ids = [f"wh{n:05d}" for n in range(TASKS)]
        for start in range(0, TASKS, BULK):
            response = client.post("/api/tasks/bulk", json={"tasks": [task_body(i) for i in ids[start : start + BULK]]})
            assert response.status_code == 200, response.text

        # Then every task's completion arrives (and nothing more for a few seconds)
        wait_until(
            lambda: len(receiver.by_id("task.completed")) == TASKS,
            DEADLINE_SECONDS,
            f"a task.completed of each of the {TASKS} tasks",
        )
        elapsed = time.monotonic() - started
        time.sleep(QUIET_SECONDS)
        client.delete(f"/api/webhooks/{answer.json()['id']}")

    deliveries = receiver.of_type("task.completed")
    first = [min(copies, key=lambda d: d.received_at) for copies in receiver.by_id("task.completed").values()]
    assert sorted(d.event["data"]["task_id"] for d in first) == ids
    lags = [lag_seconds(d) for d in first]
    receipts = sorted(d.received_at for d in first)
    span = receipts[-1] - receipts[0]
    failures = sum(not d.verified for d in receiver.deliveries)

    lag_note = f"payload created_at (task updated_at at COMPLETED) to receipt, first copy per webhook-id ({SETTING})"
    bench.record(Figure("webhooks.delivery_lag.p50", round(percentile(lags, 0.50), 3), "s", note=lag_note))
    bench.record(Figure("webhooks.delivery_lag.p95", round(percentile(lags, 0.95), 3), "s", note=lag_note))
    bench.record(Figure("webhooks.delivery_lag.max", round(max(lags), 3), "s", note=lag_note))
    bench.record(
        Figure(
            "webhooks.events_per_second",
            round(len(first) / span, 1) if span > 0 else float(len(first)),
            "events/s",
            note=f"{TASKS} task.completed, first to last receipt in {span:.1f} s ({SETTING})",
        )
    )
    bench.record(
        Figure(
            "webhooks.all_delivered.seconds",
            round(elapsed, 1),
            "s",
            note=f"first bulk create to the last task.completed received ({SETTING})",
        )
    )
    bench.record(
        Figure(
            "webhooks.duplicates",
            len(deliveries) - len(first),
            "deliveries",
            note=f"task.completed deliveries minus distinct webhook-ids, {QUIET_SECONDS} s after the last ({SETTING})",
        )
    )
    bench.record(
        Figure(
            "webhooks.signature_failures",
            failures,
            "deliveries",
            note=f"refused by standardwebhooks' Webhook.verify ({SETTING})",
        )
    )
    assert failures == 0, f"{failures} deliveries whose signature standardwebhooks refused"
