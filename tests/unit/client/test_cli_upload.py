"""Uploads: the client's upload methods and `taskapi submit` of a file above the upload threshold,
against the app over the in-memory fakes.

The presigned POST goes to S3 in real life. Here an httpx.MockTransport plays the bucket: it
checks the form (the signed fields as given, then the file last, as "file"), stores the file in
the fake bucket, and answers 204 as S3 does. The ingest service (taskapi.uploads.ingest.Ingestor
over the same fakes) runs when the client sleeps between polls of GET /api/uploads/{id}, as the
S3 notification would trigger it, so the CLI sees PENDING and then the final counts. The same
transport serves the report's presigned GET. The whole path through moto's S3, its notification
and the local stack's ingest poller is the e2e tests' business."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP

import httpx
import pytest

from taskapi.client import NotFound, TaskApiClient, Unauthorized
from taskapi.client.uploads import UploadRejected, UploadTimeout
from taskapi.settings import Settings
from taskapi.uploads.ingest import Ingestor
from taskapi.uploads.model import UploadStatus
from tests import factories
from tests.fakes import Fakes
from tests.unit.client.conftest import BASE_URL
from tests.unit.client.support import Ran, summary, write_jsonl


class Bucket:
    """The other end of presigned POSTs and report GETs (InMemoryUploadFiles' memory:// URLs)."""

    def __init__(self, fakes: Fakes) -> None:
        self.fakes = fakes
        self.forms: list[list[tuple[str, bytes]]] = []
        self.arrived: list[str] = []
        self.refuse: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert "X-API-Key" not in request.headers, "no API credentials go to the bucket"
        if request.method == "GET":
            key = request.url.path.lstrip("/")
            data = self.fakes.upload_files.objects.get(key)
            return httpx.Response(200, content=data) if data is not None else httpx.Response(404)
        if self.refuse is not None:
            return self.refuse
        head = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
        message = BytesParser(policy=HTTP).parsebytes(head + request.content)
        form = [
            (str(part.get_param("name", header="content-disposition")), part.get_payload(decode=True))
            for part in message.iter_parts()
        ]
        self.forms.append(form)
        fields = dict(form)
        self.fakes.upload_files.objects[fields["key"].decode()] = fields["file"]
        self.arrived.append(fields["key"].decode())
        return httpx.Response(204)

    def ingest(self) -> None:
        """What the S3 notification sets off: every file that arrived, ingested."""
        ingestor = Ingestor(
            uploads=self.fakes.uploads,
            files=self.fakes.upload_files,
            repository=self.fakes.repo,
            queue=self.fakes.queue,
            key_store=self.fakes.keys,
            settings=Settings(),
        )
        while self.arrived:
            ingestor.ingest(Settings().uploads_bucket, self.arrived.pop(0))


@pytest.fixture
def bucket(fakes: Fakes) -> Bucket:
    return Bucket(fakes)


@pytest.fixture
def bucket_http(bucket: Bucket) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(bucket))


@pytest.fixture
def cli(cli: Callable[..., Ran], bucket: Bucket, bucket_http: httpx.Client):
    """The conftest's `cli`, with uploads going to the bucket, whose notification (the ingest) comes
    while the command sleeps between polls; `cli.polls` holds those sleeps."""
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        bucket.ingest()

    def run(*argv: object, **runtime: object) -> Ran:
        return cli(*argv, **{"upload_http": bucket_http, "sleep": sleep, **runtime})

    run.polls = polls  # type: ignore[attr-defined]
    return run


# ------------------------------------------------------------------ the client methods


def test_create_upload_then_upload_file_then_wait_for_upload(api, bucket, bucket_http, tmp_path, seen, sleeps):
    file = write_jsonl(tmp_path / "b.jsonl", [factories.quiz(f"q{i}") for i in range(3)])

    created = api.create_upload("jsonl", task_source_group_id="g", filename="b.jsonl")
    assert (created.status, created.format, created.task_source_group_id) == (UploadStatus.PENDING, "jsonl", "g")
    progress: list[tuple[int, int]] = []
    api.upload_file(created, file, http=bucket_http, on_progress=lambda sent, total: progress.append((sent, total)))
    size = file.stat().st_size
    assert progress[-1] == (size, size)
    assert [name for name, _ in bucket.forms[0]] == [*created.upload.fields, "file"], "the file goes last"
    assert bucket.forms[0][-1][1] == file.read_bytes()

    seen_states: list[UploadStatus] = []
    api._sleep = lambda _: bucket.ingest()
    final = api.wait_for_upload(created.upload_id, interval=1, on_progress=lambda u: seen_states.append(u.status))

    assert seen_states == [UploadStatus.PENDING, UploadStatus.COMPLETED]
    assert (final.rows, final.created, final.existing, final.invalid) == (3, 3, 0, 0)
    assert api.get_task("q1").task_source_group_id == "g"
    assert [line["status"] for line in api.report_lines(final.report_url, http=bucket_http)] == ["created"] * 3
    assert [f"{r.method} {r.url.path}" for r in seen] == [
        "POST /api/uploads",
        *["GET " + f"/api/uploads/{created.upload_id}"] * 2,
        "GET /api/tasks/q1",
    ]
    with pytest.raises(NotFound):
        api.get_upload("4b3bb2bc-8d3e-4c47-9a63-0b5a2a0f7c11")


def test_upload_file_is_retried_on_a_bucket_error_and_refusals_are_raised(api, bucket, bucket_http, tmp_path, sleeps):
    file = write_jsonl(tmp_path / "b.jsonl", [factories.quiz()])
    created = api.create_upload("jsonl")
    answers = [httpx.Response(503, text="<Error><Code>SlowDown</Code></Error>")]
    original = bucket.__call__

    def flaky(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else original(request)

    api.upload_file(created, file, http=httpx.Client(transport=httpx.MockTransport(flaky)))
    assert len(sleeps) == 1
    assert len(bucket.forms) == 1

    bucket.refuse = httpx.Response(
        403, text="<Error><Code>AccessDenied</Code><Message>Invalid according to Policy</Message></Error>"
    )
    with pytest.raises(UploadRejected, match="AccessDenied: Invalid according to Policy") as refused:
        api.upload_file(created, file, http=bucket_http)
    assert refused.value.status_code == 403
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected, match="is empty"):
        api.upload_file(created, empty, http=bucket_http)


def test_wait_for_upload_gives_up_after_its_timeout(api):
    created = api.create_upload("csv")
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    api._sleep = sleep
    with pytest.raises(UploadTimeout, match="still PENDING after 5 seconds") as timed_out:
        api.wait_for_upload(created.upload_id, interval=2, timeout=5, clock=lambda: clock[0])
    assert timed_out.value.upload.upload_id == created.upload_id
    assert clock == [5.0]


# ------------------------------------------------------------------ taskapi submit


def test_submit_of_a_large_file_goes_through_an_upload(cli, tmp_path, api, bucket, seen):
    rows = [factories.quiz(task_source_id=f"s{i}") for i in range(30)]
    rows[4] = factories.video(request_data={"story_prompt": "no segments"})
    file = write_jsonl(tmp_path / "large.jsonl", rows)

    ran = cli("submit", file, "--group", "big", "--upload-threshold", "25")

    assert ran.code == 1, "an invalid row makes the submit exit 1"
    upload_id = summary(ran.out)["sent as"].removeprefix("upload ")
    assert summary(ran.out) == {
        "file": "large.jsonl",
        "format": "jsonl",
        "sent as": f"upload {upload_id}",
        "status": "COMPLETED",
        "rows": "30",
        "created": "29",
        "existing": "0",
        "invalid": "1",
        "group": "big",
        "report": f"memory://uploads/reports/acct_a/{upload_id}.jsonl",
    }
    assert "Invalid rows, not sent: 1" in ran.out
    assert any(line.split()[:2] == ["5", "request_data.segments"] for line in ran.out.splitlines())
    assert "rows ingested: 0 (PENDING: created 0, existing 0, invalid 0)" in ran.out
    assert cli.polls == [2.0]
    assert [r.url.path for r in seen if r.method == "POST"] == ["/api/uploads"], "no bulk calls"
    assert api.count_tasks(task_source_group_id="big").total == 29
    assert api.count_tasks(task_source_group_id="big", status="QUEUED").total == 29
    assert json.loads(seen[0].content) == {"format": "jsonl", "task_source_group_id": "big", "filename": "large.jsonl"}


def test_submit_chooses_the_upload_by_size_too(cli, tmp_path, api, bucket):
    file = tmp_path / "lessons.csv"
    file.write_text(
        "task_type,request_data.story_prompt,request_data.difficulty\n"
        + "".join(f"quiz,Lesson {i},easy\n" for i in range(40))
    )

    ran = cli("submit", file, "--upload-threshold", "512B")

    assert ran.code == 0
    assert summary(ran.out)["sent as"].startswith("upload ")
    assert (summary(ran.out)["rows"], summary(ran.out)["created"]) == ("40", "40")
    assert api.count_tasks(status="QUEUED").total == 40


def test_a_failed_upload_is_reported_with_its_error(cli, tmp_path, api, capsys):
    """A CSV record breaks after the rows read locally (the threshold's worth): the ingest creates
    the rows before it and fails the upload there."""
    file = tmp_path / "broken.csv"
    file.write_text(
        "task_id,task_type,request_data.story_prompt,request_data.difficulty\n"
        + "".join(f"c{i},quiz,Lesson {i},easy\n" for i in range(8))
        + 'c8,quiz,"Lesson" 8,easy\n'
    )

    ran = cli("submit", file, "--upload-threshold", "2")

    assert ran.code == 1
    assert (summary(ran.out)["status"], summary(ran.out)["created"]) == ("FAILED", "8")
    assert "not valid CSV (in row 9)" in summary(ran.out)["error"]
    assert "Upload failed" in ran.out
    assert "FAILED: The file cannot be read as CSV: the file is not valid CSV" in capsys.readouterr().err
    assert api.count_tasks().total == 8


def test_a_jsonl_file_whose_first_line_is_not_an_object_fails_locally_as_ingest_would(cli, tmp_path, bucket, capsys):
    file = write_jsonl(tmp_path / "t.jsonl", ["task_type,request_data", factories.quiz(), factories.quiz()])

    for threshold in ("1", "10"):  # through an upload, and through bulk calls
        assert cli("submit", file, "--upload-threshold", threshold).code == 1
        assert "t.jsonl cannot be read as JSONL: its first line is not a JSON object" in capsys.readouterr().err
    assert bucket.forms == []


def test_a_file_above_the_upload_limit_is_not_sent(cli, tmp_path, bucket, monkeypatch, capsys):
    monkeypatch.setenv("TASKAPI_UPLOAD_MAX_BYTES", "1024")
    file = write_jsonl(tmp_path / "big.jsonl", [factories.quiz() for _ in range(20)])

    ran = cli("submit", file, "--upload-threshold", "5")

    assert ran.code == 1
    err = capsys.readouterr().err
    assert f"cannot upload the file: big.jsonl is {file.stat().st_size} bytes; an upload takes at most 1024" in err
    assert bucket.forms == []


def test_submit_stops_waiting_after_its_timeout(cli, tmp_path, bucket, capsys):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz() for _ in range(3)])
    bucket.ingest = lambda: None  # the notification never comes

    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    ran = cli("submit", file, "--upload-threshold", "1", "--timeout", "3", sleep=sleep, clock=lambda: clock[0])

    assert ran.code == 1
    assert "is still PENDING after 3 seconds; it goes on" in capsys.readouterr().err


def test_a_large_file_then_watch_until_its_tasks_are_done(cli, tmp_path, fakes, api):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz(task_source_group_id="w") for _ in range(12)])

    assert cli("submit", file, "--upload-threshold", "10").code == 0
    watched = cli("watch", "--group", "w", sleep=lambda _: fakes.run_queue())

    assert watched.code == 0
    assert "Tasks of group w: all 12 final" in watched.out
    assert api.count_tasks(task_source_group_id="w", status="COMPLETED").total == 12


def test_upload_threshold_values(cli, tmp_path, seen, capsys):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz() for _ in range(3)])

    for threshold in ("2", "2rows", "10B"):
        seen.clear()
        assert cli("submit", file, "--upload-threshold", threshold).code == 0
        assert [r.url.path for r in seen if r.method == "POST"] == ["/api/uploads"]
    for index, threshold in enumerate(("3", "3 rows", "1kb")):
        seen.clear()  # a group of its own each time: the same file and group again would find its tasks
        assert cli("submit", file, "--upload-threshold", threshold, "--group", f"g{index}").code == 0
        assert [r.url.path for r in seen if r.method == "POST"] == ["/api/tasks/bulk"]
    assert cli("submit", file, "--upload-threshold", "lots").code == 2
    assert "expected rows (1000, 1000rows) or a size" in capsys.readouterr().err


def test_uploads_need_valid_credentials(app_http):
    stranger = TaskApiClient(BASE_URL, api_key="tk.acct_a.nokey.secret", http=app_http)
    with pytest.raises(Unauthorized):
        stranger.create_upload("jsonl")
