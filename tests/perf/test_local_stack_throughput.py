"""Tasks per second from bulk create to COMPLETED: 1,000 quiz tasks through the local stack
(a subprocess: moto server, the API over HTTP, the processor pollers). Informational — a speed
on this machine, not an assertion — plus the processor's AWS calls per task, which are stable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import clean_environment, free_port, start_stack, stop_stack
from tests.e2e.support import task_body
from tests.perf.support import Figure, Recorder

TASKS = 1000
BULK = 100
DEADLINE_SECONDS = 600


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = clean_environment(TASKAPI_PORT=str(free_port()), TASKAPI_AWS_PORT=str(free_port()))
    running = start_stack(tmp_path_factory.mktemp("throughput_stack"), env)
    yield running
    stop_stack(running.process)


def test_thousand_quiz_tasks_from_bulk_create_to_completed(stack: Any, bench: Recorder) -> None:
    headers = {"X-API-Key": stack.api_key}
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        started = time.monotonic()
        for start in range(0, TASKS, BULK):
            body = {"tasks": [task_body(f"tp{n:05d}") for n in range(start, start + BULK)]}
            response = client.post("/api/tasks/bulk", headers=headers, json=body)
            assert response.status_code == 200, response.text
        created = time.monotonic() - started
        while True:
            done = client.get("/api/tasks/count/total", headers=headers, params={"status": "COMPLETED"}).json()["total"]
            if done == TASKS:
                break
            assert time.monotonic() - started < DEADLINE_SECONDS, f"only {done} of {TASKS} completed"
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        failed = client.get("/api/tasks/count/total", headers=headers, params={"status": "FAILED"}).json()["total"]
    assert failed == 0
    bench.record(Figure("local_stack.bulk_create_1000.seconds", round(created, 2), "s", note="10 bulk calls of 100"))
    bench.record(
        Figure(
            "local_stack.quiz_1000.tasks_per_second",
            round(TASKS / elapsed, 1),
            "tasks/s",
            note=f"bulk create to every task COMPLETED in {elapsed:.1f} s (2 cores, moto server, 4 pollers)",
        )
    )
