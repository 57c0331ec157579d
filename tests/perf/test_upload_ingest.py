"""Uploads at scale (make bench). Informational speeds on this machine, plus the ingest function's
memory, each printed with the command that reproduces it:

(a) Ingest rate: a 10,000-row JSON Lines upload on the local stack (a subprocess: moto server, the
    API, the pollers), timed from the presigned POST's answer to GET /api/uploads/{id} COMPLETED,
    with processing paused (`taskapi queue pause`: the processor's mappings only) and the schedule
    off (TASKAPI_LOCAL_SCHEDULE_SECONDS=86400), so the figure is ingest's own: S3 notification,
    the ingest poller, 100 chunks of create_tasks (TransactWriteItems + SendMessageBatch by tens +
    a TransactWriteItems marking them QUEUED + a progress write each) and the report. The rates of
    the first and the last 1,000 rows are recorded too: whether the rate holds as the table and
    the queue fill.
(b) Peak memory of the ingest function for the same file: the handler, loaded from template.yaml
    like the local stack loads it, in a process of its own (tests/perf/ingest_child.py) against the
    local stack's moto server process (so moto's memory is not counted): tracemalloc's peak of the
    invocation's Python allocations (one run), and the process's peak RSS during the invocation
    (VmHWM, what Lambda reports as Max Memory Used) and its growth over the warm process (a second
    run, without tracemalloc). ru_maxrss is printed but is no figure: across execve Linux keeps the
    forked parent's high-water mark in it.
(c) The issue's end-to-end of 5,000 rows: a 5,000-row JSON Lines upload, then a 5,000-row CSV
    upload (request_data.<field> columns) on the same local stack, every task processed to
    COMPLETED ("Task completed" once per task) before the next starts. The local stack runs
    every function in one Python process beside moto's, so each takes minutes: these live here,
    not in make test.

Plans: (a) and (c) upload with API keys on the enterprise plan (`taskapi keys create --plan
enterprise`, 200,000 unfinished tasks); the default free plan's 1,000 would stop a 10,000-row upload
FAILED at its 1,001st row. (b) uploads as a principal on the enterprise plan.

Rows are quiz tasks of normal priority without task_id (derived ids), the same task as
test_local_stack_throughput.py's, so the speeds compare.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from infra.local_stack import aws_environment, stack_environment, start_moto_server
from infra.provision import provision
from infra.template import LocalNames
from taskapi import aws, wiring
from taskapi.auth.principal import Principal
from taskapi.settings import get_settings
from taskapi.store.base import TaskFilters
from taskapi.uploads import service
from tests.e2e.conftest import (
    RunningStack,
    clean_environment,
    cli_environment_for,
    cli_runner,
    free_port,
    start_stack,
    stop_stack,
)
from tests.e2e.support import PROMPT, group_tasks, processing_paused, task_body
from tests.perf.support import REPO_ROOT, Figure, Recorder

RATE_ROWS = 10_000
E2E_ROWS = 5_000
INGEST_SECONDS = 900
"""An upload's deadline to end: the ingest function's Timeout (10,000 rows take well under a
minute on this machine; a slower one still has the function's own limit)."""
BUSY_SECONDS = 300
"""How long a GET is repeated while the API answers 503 (moto busy) before the bench gives up."""
COMPLETE_SECONDS = 45 * 60
"""(c)'s deadline for an upload's 5,000 tasks to complete; missed, the test fails saying how far it got."""
PROGRESS_EVERY_SECONDS = 60
POLL_SECONDS = 20
"""(c) counts the COMPLETED tasks this often: moto answers a count by reading the whole table (a
GSI query there is a scan) while every other DynamoDB request waits, so the observer slows what
it observes: it counts one status, seldom (a task that FAILED shows at the end, in the check of
every task)."""
CHILD_SECONDS = 900
REPRODUCE = ".venv/bin/pytest tests/perf/test_upload_ingest.py -q -s -k {}"


def quiz_row() -> dict[str, Any]:
    body = task_body("")
    del body["task_id"]
    return body


def write_jsonl(path: Path, rows: int) -> int:
    line = json.dumps(quiz_row()).encode() + b"\n"
    with path.open("wb") as out:
        for _ in range(rows):
            out.write(line)
    return path.stat().st_size


def write_csv(path: Path, rows: int) -> int:
    """request_data.<field> columns, one quiz per record."""
    data = quiz_row()["request_data"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task_type", "priority", *(f"request_data.{name}" for name in data)])
    writer.writerow(["quiz", "normal", *(str(value) for value in data.values())])
    header, record = buffer.getvalue().splitlines(keepends=True)
    with path.open("w") as out:
        out.write(header)
        for _ in range(rows):
            out.write(record)
    return path.stat().st_size


def note_retried_transactions(existing: int, failed_attempts: list[str] | None = None) -> None:
    """Every row of these files is a new task, so "existing" rows mean a TransactWriteItems that
    botocore repeated after a read timeout (10 s, while moto served other DynamoDB requests) and
    that moto, which ignores ClientRequestToken, refused as already written. DynamoDB answers such a
    retry with success (botocore sends the same idempotency token), so only the counts differ here:
    the tasks exist once each, which the callers check."""
    if existing:
        print(f"[bench]      {existing} rows reported existing: a TransactWriteItems retried after a read timeout")
        for attempt in failed_attempts or []:
            if "TransactWriteItems" in attempt:
                print(f"[bench]        {attempt}")


def post_file(presigned: dict[str, Any], path: Path) -> None:
    """The presigned POST, the file streamed from disk."""
    with path.open("rb") as stream:
        answer = httpx.post(
            presigned["url"], data=presigned["fields"], files={"file": (path.name, stream)}, timeout=300
        )
    assert answer.status_code == 204, answer.text


# ------------------------------------------------------------------ the local stack


class Stack:
    """A local stack of the module's own, with enterprise keys and the API."""

    def __init__(self, running: RunningStack) -> None:
        self.running = running
        self.cli = cli_runner(cli_environment_for(running.aws_endpoint))
        self.http = httpx.Client(base_url=running.api_url, timeout=60)

    def stop(self) -> None:
        """Stop the stack (idempotent): an idle stack still polls, which would slow the next one."""
        self.http.close()
        stop_stack(self.running.process)

    def enterprise_key(self, account: str) -> dict[str, str]:
        created = self.cli("keys", "create", "--account", account, "--plan", "enterprise")
        assert created.returncode == 0, created.stderr
        return {"X-API-Key": created.stdout.strip().splitlines()[-1]}

    def start_upload(self, headers: dict[str, str], upload_format: str, group: str) -> dict[str, Any]:
        answer = self.http.post(
            "/api/uploads", headers=headers, json={"format": upload_format, "task_source_group_id": group}
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def get(self, path: str, headers: dict[str, str], **params: str) -> Any:
        """A GET, repeated after Retry-After while the API answers 503 or 429, or after a transport
        error, as the client does: on moto a long TransactWriteItems holds every DynamoDB request
        and the API's read of the upload can time out (10 s) behind it, and with the one process
        this busy a kept-alive connection was seen reset (uvicorn closes idle ones after 5 s)."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                answer = self.http.get(path, headers=headers, params=params)
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"GET {path} failed for {BUSY_SECONDS} s"
                time.sleep(1)
                continue
            if answer.status_code not in (429, 503) or time.monotonic() > deadline:
                break
            time.sleep(float(answer.headers.get("Retry-After", "1")))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def upload(self, headers: dict[str, str], upload_id: str) -> dict[str, Any]:
        upload: dict[str, Any] = self.get(f"/api/uploads/{upload_id}", headers)
        return upload

    def count(self, headers: dict[str, str], **params: str) -> int:
        total: int = self.get("/api/tasks/count/total", headers, **params)["total"]
        return total


@pytest.fixture(scope="module")
def new_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    """Start a stack (its own moto, more variables as keywords): one per figure, so that no run's
    tasks slow another's."""
    started: list[Stack] = []

    def start(name: str, **variables: str) -> Stack:
        env = clean_environment(TASKAPI_PORT=str(free_port()), TASKAPI_AWS_PORT=str(free_port()), **variables)
        stack = Stack(start_stack(tmp_path_factory.mktemp(name), env))
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()


def wait_for_upload(
    stack: Stack,
    headers: dict[str, str],
    upload_id: str,
    interval: float = 0.25,
    progress: list[tuple[float, int]] | None = None,
) -> dict[str, Any]:
    """GET the upload until it ends; `progress` collects (monotonic time, rows) as the counts move."""
    deadline = time.monotonic() + INGEST_SECONDS
    while True:
        upload = stack.upload(headers, upload_id)
        if progress is not None and (not progress or progress[-1][1] != upload["rows"]):
            progress.append((time.monotonic(), upload["rows"]))
        if upload["status"] in ("COMPLETED", "FAILED"):
            return upload
        assert time.monotonic() < deadline, f"upload {upload_id} still {upload['status']}: {upload}"
        time.sleep(interval)


def rate_between(progress: list[tuple[float, int]], first: int, last: int) -> float:
    """Rows per second from the first count >= `first` to the first count >= `last`."""
    start = next((t, rows) for t, rows in progress if rows >= first)
    end = next((t, rows) for t, rows in progress if rows >= last)
    return (end[1] - start[1]) / (end[0] - start[0])


@pytest.mark.timeout(INGEST_SECONDS + 300)
def test_ingest_rate_of_a_10000_row_jsonl_upload(
    new_stack: Callable[..., Stack], tmp_path: Path, bench: Recorder
) -> None:
    # Processing paused and the schedule off (its first run would come after a day): with 10,000
    # tasks QUEUED the reconciler's queries hold moto's DynamoDB for minutes, and ingest's calls
    # time out behind them. Nothing else runs, so the figure is ingest's own.
    stack = new_stack("ingest_rate_stack", TASKAPI_LOCAL_SCHEDULE_SECONDS="86400")
    headers = stack.enterprise_key("bench_rate")
    path = tmp_path / "rate.jsonl"
    size = write_jsonl(path, RATE_ROWS)
    progress: list[tuple[float, int]] = []

    try:
        with processing_paused(stack.cli):
            created = stack.start_upload(headers, "jsonl", "bench-rate")
            began = time.monotonic()
            post_file(created["upload"], path)
            posted = time.monotonic()
            progress.append((posted, 0))
            final = wait_for_upload(stack, headers, created["upload_id"], interval=1, progress=progress)
            ingested = time.monotonic()
            queued = stack.count(headers, task_source_group_id="bench-rate", status="QUEUED")
    finally:
        stack.stop()  # its 10,000 queued tasks are not processed

    assert final["status"] == "COMPLETED", final
    assert (final["rows"], final["invalid"]) == (RATE_ROWS, 0), final
    assert queued == RATE_ROWS, "one task per row"
    note_retried_transactions(final["existing"])
    seconds = ingested - posted
    first = rate_between(progress, 0, 1000)
    last = rate_between(progress, RATE_ROWS - 1000, RATE_ROWS)
    reproduce = REPRODUCE.format("ingest_rate")
    bench.record(
        Figure(
            "local_stack.upload_ingest_jsonl_10000.rows_per_second",
            round(RATE_ROWS / seconds, 1),
            "rows/s",
            note=f"POST answered to upload COMPLETED in {seconds:.1f} s with processing paused; "
            f"{size / 1e6:.1f} MB POSTed in {posted - began:.2f} s; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            "local_stack.upload_ingest_jsonl_10000.seconds",
            round(seconds, 1),
            "s",
            note=f"wall time, S3 notification to report written and upload COMPLETED; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            "local_stack.upload_ingest_jsonl_10000.first_1000_rows_per_second",
            round(first, 1),
            "rows/s",
            note=f"the last 1,000 rows (10,000 tasks in the table) went at {last:.1f} rows/s; reproduce: {reproduce}",
        )
    )


# ------------------------------------------------------------------ the ingest function's memory


@contextmanager
def fresh_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The local stack's moto server (a child process, the one whose moto carries the corrections),
    provisioned like the local stack, this process's environment the local stack's (so the ingest
    function, started with it, finds everything). Answers the physical names. It is reset first:
    each run starts from empty tables."""
    server = start_moto_server(port=0, own_process=True)
    host, port = server.get_host_and_port()
    try:
        httpx.post(f"http://{host}:{port}/moto-api/reset", timeout=30).raise_for_status()
        with monkeypatch.context() as patch:
            for name in list(os.environ):
                if name.startswith(("AWS_", "TASKAPI_", "POWERTOOLS_")):
                    patch.delenv(name)
            for name, value in aws_environment(f"http://{host}:{port}", {}, embedded=True).items():
                patch.setenv(name, value)
            _forget_cached()
            names = LocalNames()
            refs = provision(boto3.Session(region_name=names.region), names)
            for name, value in stack_environment(names, refs).items():
                patch.setenv(name, value)
            _forget_cached()
            yield refs
    finally:
        _forget_cached()
        server.stop()


def _forget_cached() -> None:
    get_settings.cache_clear()
    aws.reset_clients()
    wiring.reset()


def _notification_for(key: str, queue_url: str) -> dict[str, Any]:
    """The ingest queue's message for the object (skipping the s3:TestEvent and others)."""
    sqs = aws.client("sqs")
    deadline = time.monotonic() + 30
    encoded = key.replace("/", "%2F")
    while time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if encoded in message["Body"] or key in message["Body"]:
                found: dict[str, Any] = message
                return found
    raise AssertionError(f"no notification for {key} on the ingest queue")


def _upload_and_notification(path: Path, account: str, queue_url: str) -> tuple[str, dict[str, Any]]:
    """POST /api/uploads as the service does it (for an enterprise principal), the file POSTed to
    its presigned URL, and the notification S3 sent for it."""
    principal = Principal(account_id=account, user_id=f"user_{account}", auth_method="api_key", plan="enterprise")
    new = service.create_upload(
        wiring.get_upload_store(),
        wiring.get_upload_files(),
        principal,
        upload_format="jsonl",
        task_source_group_id="bench-memory",
        filename=path.name,
        max_bytes=get_settings().upload_max_bytes,
        expires_in=900,
    )
    post_file({"url": new.post.url, "fields": new.post.fields}, path)
    return new.upload.upload_id, _notification_for(new.upload.object_key, queue_url)


def _run_child(message: dict[str, Any], tmp_path: Path, *, trace: bool) -> dict[str, Any]:
    message_path, result_path = tmp_path / f"message-{trace}.json", tmp_path / f"result-{trace}.json"
    message_path.write_text(json.dumps(message))
    command = [sys.executable, "-m", "tests.perf.ingest_child", str(message_path), str(result_path)]
    if trace:
        command.append("--trace")
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=CHILD_SECONDS, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(result_path.read_text())
    assert result["answer"] == {"batchItemFailures": []}, result
    return result


@pytest.mark.timeout(2 * CHILD_SECONDS + 120)
def test_ingest_peak_memory_of_a_10000_row_jsonl_upload(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bench: Recorder
) -> None:
    path = tmp_path / "memory.jsonl"
    size = write_jsonl(path, RATE_ROWS)

    results = {}
    for trace in (True, False):  # each on an empty moto: the same table and queue sizes
        with fresh_moto(monkeypatch) as refs:
            account = "bench_memory"
            upload_id, message = _upload_and_notification(path, account, refs["IngestQueue"])
            results[trace] = _run_child(message, tmp_path, trace=trace)
            upload = wiring.get_upload_store().get(account, upload_id)
            assert upload is not None
            assert upload.status.value == "COMPLETED", upload
            assert (upload.counts.rows, upload.counts.invalid) == (RATE_ROWS, 0), upload
            note_retried_transactions(upload.counts.existing, results[trace]["failed_attempts"])
            assert wiring.get_repository().count(account, TaskFilters()) == RATE_ROWS, "one task per row"

    traced, plain = results[True], results[False]
    assert plain["hwm_kib"] is not None, "no /proc/self/status VmHWM on this system"
    mib = 1024 * 1024
    reproduce = REPRODUCE.format("peak_memory")
    print(
        f"[bench]      ru_maxrss of the ingest process: {plain['ru_maxrss_before_kib'] / 1024:.1f} MiB before, "
        f"{plain['ru_maxrss_after_kib'] / 1024:.1f} MiB after the invocation (carries the forked pytest "
        "parent's high-water mark across execve, so VmHWM is the figure)"
    )
    bench.record(
        Figure(
            "ingest.jsonl_10000.traced_peak_mib",
            round(traced["traced_peak_bytes"] / mib, 2),
            "MiB",
            note=f"tracemalloc peak of the invocation's Python allocations, {RATE_ROWS} rows / {size / 1e6:.1f} MB "
            f"JSON Lines, the handler in a process of its own against moto; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            "ingest.jsonl_10000.peak_rss_mib",
            round(plain["hwm_kib"] / 1024, 1),
            "MiB",
            note=f"VmHWM during the invocation (Lambda's Max Memory Used; the function has 1024 MB), "
            f"{plain['rss_before_kib'] / 1024:.1f} MiB resident before it (imports, clients); reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            "ingest.jsonl_10000.peak_rss_growth_mib",
            round((plain["hwm_kib"] - plain["rss_before_kib"]) / 1024, 1),
            "MiB",
            note=f"peak RSS minus RSS before the invocation (run without tracemalloc); reproduce: {reproduce}",
        )
    )
    print(
        f"[bench]      the invocation took {plain['seconds']:.1f} s ({traced['seconds']:.1f} s under tracemalloc), "
        "against a moto server started by the pytest process: not a speed figure"
    )


# ------------------------------------------------------------------ 5,000 + 5,000 rows to COMPLETED


@pytest.fixture(scope="module")
def e2e_stack(new_stack: Callable[..., Stack]) -> Stack:
    return new_stack("e2e_5000_stack")


@pytest.mark.timeout(COMPLETE_SECONDS + INGEST_SECONDS + 300)
@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_5000_rows_of_an_upload_become_completed_tasks(
    e2e_stack: Stack, tmp_path: Path, bench: Recorder, kind: str
) -> None:
    """One upload after the other on the same stack (each in an account of its own): the second
    starts once every task of the first has completed."""
    stack = e2e_stack
    headers = stack.enterprise_key(f"bench_e2e_{kind}")
    path = tmp_path / f"tasks.{kind}"
    size = (write_jsonl if kind == "jsonl" else write_csv)(path, E2E_ROWS)
    group = f"bench-{kind}"

    began = time.monotonic()
    created = stack.start_upload(headers, kind, group)
    post_file(created["upload"], path)
    final = wait_for_upload(stack, headers, created["upload_id"], interval=1)
    ingested = time.monotonic()
    assert final["status"] == "COMPLETED", final
    assert (final["rows"], final["invalid"]) == (E2E_ROWS, 0), final
    note_retried_transactions(final["existing"])

    last_print = time.monotonic()
    while True:
        completed = stack.count(headers, status="COMPLETED")
        elapsed = time.monotonic() - began
        if completed == E2E_ROWS:
            break
        if elapsed > COMPLETE_SECONDS:
            failed = stack.count(headers, status="FAILED")
            pytest.fail(
                f"only {completed} of {E2E_ROWS} tasks COMPLETED after {elapsed:.0f} s ({completed / elapsed:.2f}/s), "
                f"{failed} FAILED"
            )
        if time.monotonic() - last_print > PROGRESS_EVERY_SECONDS:
            print(f"[bench]      {kind}: {completed} of {E2E_ROWS} COMPLETED after {elapsed:.0f} s", flush=True)
            last_print = time.monotonic()
        time.sleep(POLL_SECONDS)
    seconds = time.monotonic() - began

    tasks = group_tasks(stack.http, headers, group)
    assert len(tasks) == E2E_ROWS == len({task["task_id"] for task in tasks})
    for task in tasks:
        events = [event["message"] for event in task["events"]]
        assert task["status"] == "COMPLETED", task["task_id"]
        assert events.count("Task completed") == 1, (task["task_id"], events)
    reproduce = REPRODUCE.format(f"'5000 and {kind}'")
    name = f"local_stack.upload_5000_{kind}"
    bench.record(
        Figure(
            f"{name}.seconds_to_completed",
            round(seconds, 1),
            "s",
            note=f"{size / 1e6:.1f} MB POSTed to every one of {E2E_ROWS} quiz tasks COMPLETED, each once "
            f"({seconds / 60:.1f} min); reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            f"{name}.tasks_per_second",
            round(E2E_ROWS / seconds, 2),
            "tasks/s",
            note=f"upload to the last task COMPLETED; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            f"{name}.ingest_seconds",
            round(ingested - began, 1),
            "s",
            note=f"POST to the upload COMPLETED while the processors ran ({E2E_ROWS / (ingested - began):.0f} rows/s); "
            f"reproduce: {reproduce}",
        )
    )


def test_the_files_are_what_they_claim(tmp_path: Path) -> None:
    """The generated files parse as the uploads' formats, every row a valid quiz."""
    from taskapi.ingest.formats import parse_rows

    for kind, write in (("jsonl", write_jsonl), ("csv", write_csv)):
        path = tmp_path / f"sample.{kind}"
        write(path, 3)
        with path.open("rb") as stream:
            rows = list(parse_rows(stream, kind, upload_id="sample"))
        assert [row.row for row in rows] == [1, 2, 3]
        assert all(row.task is not None and row.task.task_type == "quiz" for row in rows), rows
        assert rows[0].task is not None
        assert rows[0].task.request_data is not None
        assert rows[0].task.request_data.story_prompt == PROMPT
