"""Drop a file, get tasks, on the local stack: POST /api/uploads, the file POSTed with httpx to the
presigned URL, the embedded S3's notification on the ingest queue, the stack's ingest poller, the
tasks QUEUED and then processed to COMPLETED, and GET /api/uploads/{id} with its counts and report.

On the session stack:
- files of the wrong type end FAILED with a clear error and create nothing;
- `taskapi submit FILE` (a CSV with a request_data JSON column) goes through an upload and prints
  its summary;
- a JSON Lines upload (request_data as objects, 160 lines) and a CSV upload (request_data.<field>
  columns, 120 records), each with malformed rows: the report answers every row (its number,
  created / existing / invalid, the task id or the errors), the invalid rows stop nothing, and
  every task ends COMPLETED exactly once.

On a stack of this module's own (TASKAPI_UPLOAD_MAX_BYTES small, and the local stack's fault
TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES: the first read of every uploaded file breaks halfway):
- an oversized file: moto 5.2.5 does not enforce the POST policy's content-length-range (S3 answers
  400 EntityTooLarge and stores nothing), so the object is stored and notified, and ingest's own
  size check fails the upload; the CLI refuses such a file before sending it;
- an ingest crash halfway (after the first chunk of 100 is created), re-delivered: the upload
  COMPLETES with rows = created + existing + invalid, every task exists once and completes once.

Order matters for time only: the small files go first, while the session stack is idle (a stack
busy processing takes seconds to answer ingest's DynamoDB calls); the module's stack starts in the
background as the module begins; the larger uploads are awaited to COMPLETED by the last tests, so
they are processed (on both stacks at once) while the tests in between run."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from infra import local_stack
from infra.faults import INGEST_CRASH_MESSAGE, IngestReadCrash
from taskapi.ingest.rows import derived_task_id
from tests.e2e.support import (
    PROMPT,
    CliRunner,
    get_tasks,
    group_tasks,
    messages,
    processing_paused,
    settled_count,
    task_body,
    wait_until,
)

pytestmark = pytest.mark.e2e

UPLOAD_SECONDS = 60
"""From the file's POST to the upload final, on a stack busy processing."""
COMPLETE_SECONDS = 150
"""For the session uploads' tasks to complete (~7 tasks/s, shared with the rest of the session)."""
CLI_UPLOAD_SECONDS = 90
JSONL_LINES = 160
CSV_RECORDS = 120
CRASH_ROWS = 160
CRASH_AFTER_BYTES = 40_000
"""Ingest's first read of each file on the module's stack breaks here: after the first chunk of 100
rows (about 330 bytes each) was created, well before the end of the file."""
MAX_BYTES = 120_000
"""TASKAPI_UPLOAD_MAX_BYTES of the module's stack: above the crash file, below the oversized one."""
TYPES = ("quiz", "documentation")
PRIORITIES = ("urgent", "high", "normal", "low")


# ------------------------------------------------------------------ files and their expected reports


@dataclass
class Expected:
    """A file being built, and what its report must say: row -> (status, task_id or None, error
    fields). task_id None on a valid row means "derived from (upload_id, row)"."""

    lines: list[bytes] = field(default_factory=list)
    rows: dict[int, tuple[str, str | None, list[str | None]]] = field(default_factory=dict)

    def data(self) -> bytes:
        return b"\n".join(self.lines) + b"\n"

    def counts(self) -> dict[str, int]:
        statuses = Counter(status for status, _, _ in self.rows.values())
        return {
            "rows": len(self.rows),
            "created": statuses["created"],
            "existing": statuses["existing"],
            "invalid": statuses["invalid"],
        }

    def task_id(self, upload_id: str, row: int) -> str:
        status, task_id, _ = self.rows[row]
        assert status != "invalid"
        return task_id or derived_task_id(upload_id, row)


def row_body(n: int, **changes: Any) -> dict[str, Any]:
    body = task_body("", TYPES[n % len(TYPES)], PRIORITIES[n % len(PRIORITIES)], task_source_name="e2e-uploads")
    del body["task_id"]
    return {**body, **changes}


def jsonl_file(lines: int, *, pre_existing: dict[int, str], given_ids: dict[int, str], prefix: str) -> Expected:
    """JSON Lines: rows without task_id (derived ids), some with one, some of tasks that exist
    already, one id given twice, a blank line and five malformed rows of different kinds."""
    expected = Expected()
    duplicate_of = min(given_ids)
    bad: dict[int, tuple[bytes, list[str | None]]] = {
        3: (b"not json at all", [None]),
        50: (b"[1, 2, 3]", [None]),
        90: (json.dumps(row_body(90, priority="asap")).encode(), ["priority"]),
        130: (json.dumps(row_body(130, task_type="podcast")).encode(), ["task_type"]),
        150: (json.dumps(row_body(150, request_data={"difficulty": "easy"})).encode(), ["request_data.story_prompt"]),
    }
    for row in range(1, lines + 1):
        if row in bad:
            line, fields = bad[row]
            expected.lines.append(line)
            expected.rows[row] = ("invalid", None, fields)
        elif row == 100:
            expected.lines.append(b"")  # blank: skipped, but counted as a line
        elif row in pre_existing:
            expected.lines.append(json.dumps(row_body(row, task_id=pre_existing[row])).encode())
            expected.rows[row] = ("existing", pre_existing[row], [])
        elif row == duplicate_of + 40:
            expected.lines.append(json.dumps(row_body(row, task_id=given_ids[duplicate_of])).encode())
            expected.rows[row] = ("existing", given_ids[duplicate_of], [])
        elif row in given_ids:
            expected.lines.append(json.dumps(row_body(row, task_id=given_ids[row])).encode())
            expected.rows[row] = ("created", given_ids[row], [])
        else:
            expected.lines.append(json.dumps(row_body(row)).encode())
            expected.rows[row] = ("created", None, [])
    assert expected.lines[0].startswith(b"{"), "ingest judges a JSON Lines file by its first line"
    assert all(prefix in task_id for task_id in [*pre_existing.values(), *given_ids.values()])
    return expected


def csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def csv_file(records: int) -> Expected:
    """CSV with request_data.<field> columns (quiz tasks): typed cells (num_questions), an empty
    record (skipped, counted) and four malformed records."""
    expected = Expected()
    header = ["task_id", "task_type", "priority", "task_source_name"]
    header += ["request_data.story_prompt", "request_data.difficulty", "request_data.num_questions"]
    expected.lines.append(",".join(header).encode())
    prompt = csv_cell(PROMPT)
    bad: dict[int, tuple[str, list[str | None]]] = {
        7: (f",quiz,normal,e2e-csv,{prompt},easy", [None]),  # a cell short
        40: (f",quiz,normal,e2e-csv,{prompt},easy,five", ["request_data.num_questions"]),
        80: (f",podcast,normal,e2e-csv,{prompt},easy,3", ["task_type"]),
        120: (",quiz,normal,e2e-csv,,easy,3", ["request_data.story_prompt"]),
    }
    for record in range(1, records + 1):
        if record in bad:
            line, fields = bad[record]
            expected.lines.append(line.encode())
            expected.rows[record] = ("invalid", None, fields)
        elif record == 60:
            expected.lines.append(b",,,,,,")  # every cell blank: skipped, counted
        elif record % 50 == 25:
            task_id = f"e2e_csv_{record:03d}"
            line = f"{task_id},quiz,{PRIORITIES[record % 4]},e2e-csv,{prompt},medium,{record % 5 + 1}"
            expected.lines.append(line.encode())
            expected.rows[record] = ("created", task_id, [])
        else:
            line = f",quiz,{PRIORITIES[record % 4]},e2e-csv,{prompt},easy,{record % 5 + 1}"
            expected.lines.append(line.encode())
            expected.rows[record] = ("created", None, [])
    return expected


# ------------------------------------------------------------------ HTTP helpers


def start_upload(client: httpx.Client, headers: dict[str, str], upload_format: str, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/uploads", headers=headers, json={"format": upload_format, **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def post_file(upload: dict[str, Any], data: bytes, filename: str = "tasks") -> httpx.Response:
    """The HTML-form POST to the presigned URL: its fields as given, then the file."""
    presigned = upload["upload"]
    return httpx.post(presigned["url"], data=presigned["fields"], files={"file": (filename, data)}, timeout=30)


def get_upload(client: httpx.Client, headers: dict[str, str], upload_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/uploads/{upload_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    upload: dict[str, Any] = answer.json()
    return upload


def wait_for_upload(
    client: httpx.Client, headers: dict[str, str], upload_id: str, timeout: float = UPLOAD_SECONDS
) -> dict[str, Any]:
    final: dict[str, Any] = wait_until(
        lambda: (u := get_upload(client, headers, upload_id))["status"] in ("COMPLETED", "FAILED") and u,
        timeout,
        f"upload {upload_id} to end",
        interval=0.5,
    )
    return final


def report_of(upload: dict[str, Any]) -> list[dict[str, Any]]:
    """The report, downloaded from its presigned URL (no API credentials)."""
    assert upload["report_url"], upload
    answer = httpx.get(upload["report_url"], timeout=30)
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines()]


def assert_report_matches(report: list[dict[str, Any]], expected: Expected, upload_id: str) -> None:
    assert [line["row"] for line in report] == sorted(expected.rows), "one line per row, in order, blanks skipped"
    for line in report:
        status, _, fields = expected.rows[line["row"]]
        assert line["status"] == status, line
        if status == "invalid":
            assert line["task_id"] is None
            assert [error["field"] for error in line["errors"]] == fields, line
            assert all(error["message"] for error in line["errors"]), line
        else:
            assert line["task_id"] == expected.task_id(upload_id, line["row"]), line
            assert line["errors"] is None


def count(client: httpx.Client, headers: dict[str, str], **params: str) -> int:
    answer = client.get("/api/tasks/count/total", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    total: int = answer.json()["total"]
    return total


def wait_until_group_completed(client: httpx.Client, headers: dict[str, str], group: str, total: int) -> None:
    def done() -> bool:
        failed = count(client, headers, task_source_group_id=group, status="FAILED")
        assert failed == 0, f"{failed} tasks of {group} FAILED"
        return count(client, headers, task_source_group_id=group, status="COMPLETED") == total

    wait_until(done, COMPLETE_SECONDS, f"{total} COMPLETED tasks in group {group}", interval=1)


def assert_completed_exactly_once(tasks: list[dict[str, Any]]) -> None:
    ids = [task["task_id"] for task in tasks]
    assert len(ids) == len(set(ids)), "a task listed twice"
    for task in tasks:
        events = messages(task)
        assert task["status"] == "COMPLETED", task["task_id"]
        assert events.count("Task completed") == 1, (task["task_id"], events)
        assert task["attempt"] == 1, task["task_id"]


def create_tasks(client: httpx.Client, headers: dict[str, str], *bodies: dict[str, Any]) -> None:
    answer = client.post("/api/tasks/bulk", headers=headers, json={"tasks": list(bodies)})
    assert answer.status_code == 200, answer.text


AsAccount = Callable[[str], dict[str, str]]


def token_for(run_cli: CliRunner, accounts: tuple[str, ...]) -> AsAccount:
    """Headers for each account, from one bearer token granting them all (`taskapi token`: one CLI
    run instead of one `keys create` per account). Their plan is the default (free) one."""
    args = ["token", "--sub", "e2e-uploads"]
    for account in accounts:
        args += ["--account", account]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]

    def headers(account: str) -> dict[str, str]:
        assert account in accounts
        return {"Authorization": f"Bearer {token}", "X-Account-ID": account}

    return headers


# ------------------------------------------------------------------ files of the wrong type, and the CLI


WRONG_TYPES = {
    "gzip-as-jsonl": (
        "jsonl",
        gzip.compress(b'{"task_type": "quiz"}\n' * 50),
        "The file cannot be read as JSON Lines: its first line is not a JSON object (it is not UTF-8 text)",
    ),
    "csv-as-jsonl": (
        "jsonl",
        b"task_id,task_type\nq1,quiz\n",
        "The file cannot be read as JSON Lines: its first line is not a JSON object (it is not JSON)",
    ),
    "gzip-as-csv": (
        "csv",
        gzip.compress(b"task_id,task_type\nq1,quiz\n" * 50),
        "The file cannot be read as CSV: the file is not valid UTF-8 (at or after the header)",
    ),
}


@pytest.fixture(scope="module")
def as_account(run_cli: CliRunner) -> AsAccount:
    """The session stack's accounts of this module."""
    return token_for(run_cli, ("up_wrong_types", "up_cli", "up_jsonl", "up_csv"))


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_a_file_of_the_wrong_type_fails_the_upload_with_a_clear_error(
    client: httpx.Client, as_account: AsAccount, case: str
) -> None:
    upload_format, data, error = WRONG_TYPES[case]
    headers = as_account("up_wrong_types")
    upload = start_upload(client, headers, upload_format)

    assert post_file(upload, data).status_code == 204
    final = wait_for_upload(client, headers, upload["upload_id"])

    assert final["status"] == "FAILED", final
    assert final["error"] == error
    assert (final["rows"], final["created"]) == (0, 0)
    assert report_of(final) == []
    assert settled_count(client, headers) == 0


def taskapi(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `taskapi` console script, with time for an upload to be ingested."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("taskapi")), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_UPLOAD_SECONDS,
        check=False,
    )


def summary_of(stdout: str) -> dict[str, str]:
    """The summary table's "  name   value" lines."""
    return {m.group(1): m.group(2) for m in map(_SUMMARY_LINE.match, stdout.splitlines()) if m}


_SUMMARY_LINE = re.compile(r"^  (\S+(?: \S+)?)\s{2,}(\S.*)$")


def test_taskapi_submit_sends_a_file_through_an_upload_and_prints_the_summary(
    stack: Any,
    cli_environment: dict[str, str],
    client: httpx.Client,
    as_account: AsAccount,
    tmp_path: Path,
) -> None:
    # Given a CSV with request_data as a JSON column: 24 rows, row 5 without the quiz's difficulty
    headers = as_account("up_cli")
    lines = ["task_id,task_type,priority,request_data"]
    for row in range(1, 25):
        data: dict[str, Any] = {"story_prompt": PROMPT, "num_questions": 3}
        if row != 5:
            data["difficulty"] = "easy"
        lines.append(f",quiz,{PRIORITIES[row % 4]},{csv_cell(json.dumps(data))}")
    path = tmp_path / "course.csv"
    path.write_text("\n".join(lines) + "\n")

    # When it is submitted with a threshold below its size (an upload, not bulk calls)
    result = taskapi(
        {
            **cli_environment,
            "TASKAPI_URL": stack.api_url,
            "TASKAPI_TOKEN": headers["Authorization"].removeprefix("Bearer "),
            "TASKAPI_ACCOUNT_ID": "up_cli",
        },
        *("submit", str(path), "--group", "e2e-cli", "--upload-threshold", "10"),
    )

    # Then it prints the upload's summary and the invalid row, and exits 1 for that row
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 of 24 rows are invalid (see the report)" in result.stderr
    summary = summary_of(result.stdout)
    upload_id = summary["sent as"].removeprefix("upload ")
    assert {name: summary[name] for name in ("file", "format", "status", "rows", "created", "existing")} == {
        "file": "course.csv",
        "format": "csv",
        "status": "COMPLETED",
        "rows": "24",
        "created": "23",
        "existing": "0",
    }
    assert (summary["invalid"], summary["group"]) == ("1", "e2e-cli")
    assert summary["report"].startswith(stack.aws_endpoint)
    assert re.search(r"^5\s+request_data\.difficulty\s+Field required$", result.stdout, re.MULTILINE), result.stdout
    # as the API tells it
    final = get_upload(client, headers, upload_id)
    assert (final["status"], final["rows"], final["created"], final["invalid"]) == ("COMPLETED", 24, 23, 1)
    assert (final["format"], final["filename"]) == ("csv", "course.csv")
    assert settled_count(client, headers, task_source_group_id="e2e-cli") == 23


# ------------------------------------------------------------------ the session stack's uploads


@dataclass
class SessionUpload:
    group: str
    upload_id: str
    expected: Expected
    headers: dict[str, str]
    pre_existing: int


@pytest.fixture(scope="module")
def session_uploads(client: httpx.Client, as_account: AsAccount) -> dict[str, SessionUpload]:
    """Both files POSTed up front, so their ingest and processing overlap the tests that follow."""
    uploads: dict[str, SessionUpload] = {}

    headers = as_account("up_jsonl")
    pre_existing = {10: "e2e_jsonl_pre_10", 140: "e2e_jsonl_pre_140"}
    create_tasks(
        client,
        headers,
        *[row_body(row, task_id=i, task_source_group_id="e2e-jsonl") for row, i in pre_existing.items()],
    )
    given = {row: f"e2e_jsonl_{row:03d}" for row in (7, 33, 77, 111, 120)}
    expected = jsonl_file(JSONL_LINES, pre_existing=pre_existing, given_ids=given, prefix="e2e_jsonl_")
    upload = start_upload(client, headers, "jsonl", task_source_group_id="e2e-jsonl", filename="lessons.jsonl")
    assert post_file(upload, expected.data(), "lessons.jsonl").status_code == 204
    uploads["jsonl"] = SessionUpload("e2e-jsonl", upload["upload_id"], expected, headers, len(pre_existing))

    headers = as_account("up_csv")
    expected = csv_file(CSV_RECORDS)
    upload = start_upload(client, headers, "csv", task_source_group_id="e2e-csv", filename="quizzes.csv")
    assert post_file(upload, expected.data(), "quizzes.csv").status_code == 204
    uploads["csv"] = SessionUpload("e2e-csv", upload["upload_id"], expected, headers, 0)
    return uploads


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_an_upload_reports_every_row_and_queues_the_valid_ones(
    client: httpx.Client, session_uploads: dict[str, SessionUpload], kind: str
) -> None:
    upload = session_uploads[kind]

    final = wait_for_upload(client, upload.headers, upload.upload_id)

    # The upload COMPLETED with one count per row; malformed rows did not stop the rest
    assert final["status"] == "COMPLETED", final
    assert final["error"] is None
    counts = {name: final[name] for name in ("rows", "created", "existing", "invalid")}
    assert counts == upload.expected.counts()
    assert counts["rows"] == counts["created"] + counts["existing"] + counts["invalid"]
    assert (final["format"], final["task_source_group_id"]) == (kind, upload.group)
    # the report answers each row: created / existing with its task id, invalid with its errors
    report = report_of(final)
    assert_report_matches(report, upload.expected, upload.upload_id)
    assert max(line["row"] for line in report if line["status"] == "invalid") > 100, "rows after a bad one go on"
    # and the tasks exist in the upload's group, each once
    task_ids = {line["task_id"] for line in report if line["task_id"]}
    assert settled_count(client, upload.headers, task_source_group_id=upload.group) == len(task_ids)
    assert settled_count(client, upload.headers) == len(task_ids), "nothing outside the group"


# ------------------------------------------------------------------ a stack with the ingest fault

INGEST_STACK_ENV = {
    "TASKAPI_UPLOAD_MAX_BYTES": str(MAX_BYTES),
    "TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES": str(CRASH_AFTER_BYTES),
}
CRASH_LOG = "ingest run raised; the claim is released for the next delivery"
RESUME_LOG = "resuming an upload whose previous run stopped"


@pytest.fixture(scope="module", autouse=True)
def ingest_stack_starting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, stack_tools: Any
) -> Iterator[Future[Any] | None]:
    """The module's own stack, started in the background as the module begins (while the session
    stack ingests), when any selected test of the module needs it."""
    tools = stack_tools
    needed = any(
        getattr(item, "module", None) is request.module and "ingest_stack" in getattr(item, "fixturenames", ())
        for item in request.session.items
    )
    if not needed:
        yield None
        return
    aws_port = tools.free_port()
    env = tools.clean_environment(
        TASKAPI_PORT=str(tools.free_port()), TASKAPI_AWS_PORT=str(aws_port), **INGEST_STACK_ENV
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-stack") as pool:
        starting = pool.submit(tools.start_stack, tmp_path_factory.mktemp("ingest_fault_stack"), env)
        yield starting
        running = starting.result()
    code = tools.stop_stack(running.process)
    assert code == 0, f"the ingest fault stack exited with {code} on SIGTERM:\n{running.output()}"
    assert not tools.port_is_listening(aws_port)


@pytest.fixture(scope="module")
def ingest_stack(ingest_stack_starting: Future[Any] | None) -> Any:
    assert ingest_stack_starting is not None
    return ingest_stack_starting.result()


@pytest.fixture(scope="module")
def ingest_client(ingest_stack: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ingest_stack.api_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def ingest_cli(ingest_stack: Any, stack_tools: Any) -> CliRunner:
    runner: CliRunner = stack_tools.cli_runner(stack_tools.cli_environment_for(ingest_stack.aws_endpoint))
    return runner


@pytest.fixture(scope="module")
def as_ingest_account(ingest_cli: CliRunner) -> AsAccount:
    return token_for(ingest_cli, ("crash", "oversize"))


@dataclass
class CrashUpload:
    upload_id: str
    expected: Expected
    headers: dict[str, str]
    pre_existing: dict[int, str]
    final: dict[str, Any]


@pytest.fixture(scope="module")
def crash_upload(
    ingest_stack: Any,
    ingest_client: httpx.Client,
    as_ingest_account: AsAccount,
    ingest_cli: CliRunner,
) -> CrashUpload:
    """A file whose first read breaks after CRASH_AFTER_BYTES (past the first chunk of 100 rows),
    uploaded and ingested while processing is paused on the stack (`taskapi queue pause`: only the
    processor's mappings; ingest runs): processing the first chunk's tasks would otherwise slow the
    re-delivered run several times over. The tasks are processed once it is final."""
    assert f"breaks after {CRASH_AFTER_BYTES} bytes" in ingest_stack.output(), "the fault is not configured"
    headers = as_ingest_account("crash")
    pre_existing = {20: "crash_pre_020", 160: "crash_pre_160"}  # one before the break, one after
    create_tasks(
        ingest_client,
        headers,
        *[row_body(row, task_id=task_id, task_source_group_id="crash-run") for row, task_id in pre_existing.items()],
    )
    given = {row: f"crash_given_{row:03d}" for row in (5, 60, 105, 140)}
    expected = jsonl_file(CRASH_ROWS, pre_existing=pre_existing, given_ids=given, prefix="crash_")
    first_chunk = len(b"\n".join(expected.lines[:101])) + 1  # rows 1-101 (line 100 is blank)
    assert first_chunk < CRASH_AFTER_BYTES < len(b"\n".join(expected.lines[:150])), "the break is halfway"
    upload = start_upload(ingest_client, headers, "jsonl", task_source_group_id="crash-run")
    with processing_paused(ingest_cli):
        assert post_file(upload, expected.data()).status_code == 204
        final = wait_for_upload(ingest_client, headers, upload["upload_id"])
    return CrashUpload(upload["upload_id"], expected, headers, pre_existing, final)


def log_time(stamp: str) -> datetime:
    """A Powertools log timestamp ("2026-01-02 03:04:05,678+0000")."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z")


def logged(output: str, message: str) -> list[dict[str, Any]]:
    """The stack's JSON log records with this message."""
    records = []
    for line in output.splitlines():
        if line.startswith("{") and message in line:
            record = json.loads(line)
            if record.get("message") == message:
                records.append(record)
    return records


def test_an_ingest_crash_halfway_redelivered_creates_nothing_twice(
    ingest_stack: Any, ingest_client: httpx.Client, crash_upload: CrashUpload
) -> None:
    upload, expected, headers, final = crash_upload, crash_upload.expected, crash_upload.headers, crash_upload.final

    # The first run broke on the injected fault, and the delivery after it resumed the upload
    output = ingest_stack.output()
    (crash,) = [record for record in logged(output, CRASH_LOG) if INGEST_CRASH_MESSAGE in record["exception"]]
    assert len(logged(output, RESUME_LOG)) == 1
    # the upload COMPLETED with the counts of one uninterrupted run
    assert final["status"] == "COMPLETED", final
    counts = {name: final[name] for name in ("rows", "created", "existing", "invalid")}
    assert counts == expected.counts() == {"rows": 159, "created": 151, "existing": 3, "invalid": 5}
    assert counts["rows"] == counts["created"] + counts["existing"] + counts["invalid"]
    report = report_of(final)
    assert_report_matches(report, expected, upload.upload_id)
    # every task exists once: the group holds the report's tasks and nothing else
    task_ids = {line["task_id"] for line in report if line["task_id"]}
    assert len(task_ids) == counts["created"] + len(upload.pre_existing)
    assert settled_count(ingest_client, headers, task_source_group_id="crash-run") == len(task_ids)
    assert settled_count(ingest_client, headers) == len(task_ids)
    # and the break came halfway: the first chunk's tasks were created before it, the rest after
    tasks = get_tasks(ingest_client, headers, sorted(task_ids))
    crashed_at = log_time(crash["timestamp"])
    ours = {line["row"]: tasks[line["task_id"]] for line in report if line["status"] == "created"}
    before = [row for row, task in ours.items() if datetime.fromisoformat(task["created_at"]) < crashed_at]
    assert sorted(before) == [row for row in sorted(ours) if row <= 101], "the first run created rows 1-101"


def test_an_oversized_file_fails_the_upload_and_the_cli_refuses_to_send_it(
    ingest_stack: Any,
    ingest_client: httpx.Client,
    as_ingest_account: AsAccount,
    stack_tools: Any,
    tmp_path: Path,
) -> None:
    headers = as_ingest_account("oversize")
    data = b"".join(json.dumps(row_body(n)).encode() + b"\n" for n in range(500))
    assert len(data) > MAX_BYTES
    upload = start_upload(ingest_client, headers, "jsonl")
    assert upload["upload"]["max_bytes"] == MAX_BYTES
    policy = json.loads(base64.b64decode(upload["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1, MAX_BYTES] in policy["conditions"], "S3 itself would refuse it"

    # moto stores what S3 refuses (400 EntityTooLarge); ingest's size check is what stops it here
    assert post_file(upload, data).status_code == 204
    final = wait_for_upload(ingest_client, headers, upload["upload_id"])

    assert final["status"] == "FAILED", final
    assert final["error"] == f"The file is {len(data)} bytes; an upload may be at most {MAX_BYTES} bytes"
    assert (final["rows"], final["created"]) == (0, 0)
    assert settled_count(ingest_client, headers) == 0

    # and `taskapi submit` refuses such a file before sending it
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    result = taskapi(
        {
            **stack_tools.cli_environment_for(ingest_stack.aws_endpoint),
            "TASKAPI_URL": ingest_stack.api_url,
            "TASKAPI_TOKEN": headers["Authorization"].removeprefix("Bearer "),
            "TASKAPI_ACCOUNT_ID": "oversize",
        },
        *("submit", str(path), "--upload-threshold", "10"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"big.jsonl is {len(data)} bytes; an upload takes at most {MAX_BYTES}" in result.stderr
    assert settled_count(ingest_client, headers) == 0


def test_the_ingest_crash_fault_breaks_only_the_first_read_of_an_uploaded_file() -> None:
    server = local_stack.start_moto_server(port=0)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=local_stack.http_url(*server.get_host_and_port()),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="uploads")
        s3.create_bucket(Bucket="results")
        body = bytes(range(256)) * 100
        for bucket, key in (("uploads", "uploads/a/1"), ("uploads", "reports/a/1"), ("results", "uploads/a/1")):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        crash = IngestReadCrash(1000)
        crash.install(s3, "uploads")

        first = s3.get_object(Bucket="uploads", Key="uploads/a/1")["Body"]
        assert first.read(600) == body[:600]
        assert first.read(600) == body[600:1000]
        with pytest.raises(Exception, match="Injected fault"):
            first.read(600)
        assert s3.get_object(Bucket="uploads", Key="uploads/a/1")["Body"].read() == body  # read again: whole
        assert s3.get_object(Bucket="uploads", Key="reports/a/1")["Body"].read() == body  # not an upload
        assert s3.get_object(Bucket="results", Key="uploads/a/1")["Body"].read() == body  # another bucket
        assert crash.broken == ["uploads/a/1"]
    finally:
        server.stop()


@pytest.mark.parametrize("raw", ["0", "-5", "1.5", "lots"])
def test_an_invalid_ingest_crash_setting_stops_the_stack_naming_it(raw: str) -> None:
    with pytest.raises(local_stack.StackError, match="TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES"):
        local_stack.StackConfig.from_environ({"TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES": raw})


def test_the_ingest_crash_setting_is_read_from_the_environment() -> None:
    assert local_stack.StackConfig.from_environ({}).ingest_crash is None
    config = local_stack.StackConfig.from_environ({"TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES": "4096"})
    assert config.ingest_crash is not None
    assert config.ingest_crash.after_bytes == 4096


# ------------------------------------------------------------------ last: the session uploads' tasks


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_every_task_of_an_upload_completes_exactly_once(
    client: httpx.Client, session_uploads: dict[str, SessionUpload], kind: str
) -> None:
    upload = session_uploads[kind]
    final = wait_for_upload(client, upload.headers, upload.upload_id)
    total = final["created"] + upload.pre_existing

    wait_until_group_completed(client, upload.headers, upload.group, total)

    tasks = group_tasks(client, upload.headers, upload.group)
    assert len(tasks) == total
    assert_completed_exactly_once(tasks)
    assert {task["task_type"] for task in tasks} == ({"quiz"} if kind == "csv" else set(TYPES))


def test_every_task_of_the_crashed_upload_completes_exactly_once(
    ingest_client: httpx.Client, crash_upload: CrashUpload
) -> None:
    final = wait_for_upload(ingest_client, crash_upload.headers, crash_upload.upload_id)
    total = final["created"] + len(crash_upload.pre_existing)

    wait_until_group_completed(ingest_client, crash_upload.headers, "crash-run", total)

    tasks = group_tasks(ingest_client, crash_upload.headers, "crash-run")
    assert len(tasks) == total
    assert_completed_exactly_once(tasks)
