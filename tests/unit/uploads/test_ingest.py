"""The ingest service over the fakes: rows become tasks (created and queued as the bulk endpoint
does), the report says what became of each row, counts follow every chunk, and neither a repeated
delivery nor a crash halfway creates anything twice. Keys that are not an upload of the account
are ignored; oversized, wrong-type and malformed files fail the upload with a clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskapi.errors import Retryable
from taskapi.ingest.rows import derived_task_id
from taskapi.models.domain import TaskStatus, isoformat, utc_now
from taskapi.models.requests import BulkCreateRequest
from taskapi.services import tasks as task_service
from taskapi.store.base import TaskFilters
from taskapi.uploads.ingest import IngestOutcome
from taskapi.uploads.model import UploadCounts, UploadStatus, report_key
from tests import factories
from tests.fakes import Fakes
from tests.unit.processing.support import completions
from tests.unit.uploads.support import (
    ACCOUNT,
    BUCKET,
    OTHER_ACCOUNT,
    drop,
    event_key,
    ingestor,
    jsonl,
    report,
    settings,
    start,
    stored,
)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def all_tasks(fakes: Fakes, account: str = ACCOUNT):
    return fakes.repo.page(account, TaskFilters(), before=None, want=100_000)


def ingest(fakes: Fakes, upload, **overrides: Any):
    return ingestor(fakes, **overrides).ingest(BUCKET, event_key(upload.object_key), None)


# ------------------------------------------------------------------ rows, tasks and the report


def test_valid_rows_become_queued_tasks_and_invalid_rows_are_reported(fakes):
    upload = start(fakes)
    drop(
        fakes,
        upload,
        jsonl(
            factories.video(),
            factories.quiz("quiz-1"),
            {"task_type": "quiz", "request_data": {"story_prompt": "x"}},  # no difficulty
            "",
            "not json at all",
            factories.documentation(),
        ),
    )

    result = ingest(fakes, upload)

    assert result.outcome is IngestOutcome.COMPLETED
    assert result.counts == UploadCounts(created=3, existing=0, invalid=2)
    current = stored(fakes, upload)
    assert current.status is UploadStatus.COMPLETED
    assert current.counts.rows == 5
    assert current.error is None
    assert current.report_key == report_key(ACCOUNT, upload.upload_id)
    lines = report(fakes, upload)
    assert [(line["row"], line["status"]) for line in lines] == [
        (1, "created"),
        (2, "created"),
        (3, "invalid"),
        (5, "invalid"),
        (6, "created"),
    ]
    assert lines[0]["task_id"] == derived_task_id(upload.upload_id, 1)
    assert lines[1]["task_id"] == "quiz-1"
    assert lines[2]["task_id"] is None
    assert lines[2]["errors"] == [{"field": "request_data.difficulty", "message": "Field required"}]
    assert lines[3]["errors"][0]["field"] is None
    assert lines[0]["errors"] is None
    tasks = {task.task_id: task for task in all_tasks(fakes)}
    assert set(tasks) == {lines[0]["task_id"], "quiz-1", lines[4]["task_id"]}
    assert {task.status for task in tasks.values()} == {TaskStatus.QUEUED}
    assert {task.user_id for task in tasks.values()} == {"user_1"}
    assert sorted(message.task_id for _, message, _ in fakes.queue.sent) == sorted(tasks)


def test_the_uploads_group_applies_to_rows_that_name_none(fakes):
    upload = start(fakes, group="course-7")
    drop(fakes, upload, jsonl(factories.video("v1"), factories.video("v2", task_source_group_id="own-group")))

    ingest(fakes, upload)

    assert fakes.repo.get(ACCOUNT, "v1").task_source_group_id == "course-7"
    assert fakes.repo.get(ACCOUNT, "v2").task_source_group_id == "own-group"


def test_ids_that_exist_already_are_reported_existing_and_left_as_they_are(fakes):
    (before,) = task_service.create_tasks(
        fakes.repo,
        fakes.queue,
        factories.principal(ACCOUNT),
        BulkCreateRequest.model_validate(factories.bulk(factories.quiz("t1"))).tasks,
    ).tasks
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video("t1"), factories.video("t2")))

    result = ingest(fakes, upload)

    assert result.counts == UploadCounts(created=1, existing=1, invalid=0)
    assert [line["status"] for line in report(fakes, upload)] == ["existing", "created"]
    assert fakes.repo.get(ACCOUNT, "t1") == before


def test_an_id_repeated_in_the_file_is_created_once(fakes):
    upload = start(fakes)
    rows = [factories.video("same"), factories.video("same"), factories.video("other"), factories.video("same")]
    drop(fakes, upload, jsonl(*rows))

    ingest(fakes, upload, chunk_rows=3)  # rows 1-2 share a chunk; row 4 is in the next one

    assert [line["status"] for line in report(fakes, upload)] == ["created", "existing", "created", "existing"]
    assert stored(fakes, upload).counts == UploadCounts(created=2, existing=2, invalid=0)
    assert len(all_tasks(fakes)) == 2


def test_json_documents_apply_their_shared_video_settings(fakes):
    upload = start(fakes, "json")
    document = factories.bulk(
        factories.video("v1"),
        factories.quiz("q1"),
        factories.video("v2", request_data={"story_prompt": "x", "segments": 2, "logo_url": "https://own/logo.png"}),
        logo_url="https://cdn.example/logo.png",
    )
    drop(fakes, upload, json.dumps(document).encode())

    assert ingest(fakes, upload).outcome is IngestOutcome.COMPLETED

    assert fakes.repo.get(ACCOUNT, "v1").request_data["logo_url"] == "https://cdn.example/logo.png"
    assert fakes.repo.get(ACCOUNT, "v2").request_data["logo_url"] == "https://own/logo.png"
    assert "logo_url" not in fakes.repo.get(ACCOUNT, "q1").request_data


def test_csv_rows_become_tasks(fakes):
    upload = start(fakes, "csv")
    drop(
        fakes,
        upload,
        b"task_id,task_type,priority,request_data.story_prompt,request_data.difficulty\n"
        b"c1,quiz,urgent,Photosynthesis,easy\n"
        b"c2,quiz,low,Osmosis,impossible\n",
    )

    result = ingest(fakes, upload)

    assert result.counts == UploadCounts(created=1, existing=0, invalid=1)
    task = fakes.repo.get(ACCOUNT, "c1")
    assert task.priority == "urgent"
    assert task.request_data == {"story_prompt": "Photosynthesis", "difficulty": "easy"}


def test_counts_are_written_after_every_chunk(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(5)]))
    progress: list[int] = []
    record_progress = fakes.uploads.record_progress

    def spy(*args, counts, **kwargs):
        progress.append(counts.rows)
        return record_progress(*args, counts=counts, **kwargs)

    fakes.uploads.record_progress = spy

    ingest(fakes, upload, chunk_rows=2)

    assert progress == [2, 4, 5]


def test_a_large_file_is_created_in_chunks_of_one_hundred(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(250)]))
    sizes: list[int] = []
    insert_new = fakes.repo.insert_new

    def spy(tasks):
        sizes.append(len(tasks))
        return insert_new(tasks)

    fakes.repo.insert_new = spy

    result = ingest(fakes, upload)

    assert result.counts == UploadCounts(created=250)
    assert sizes == [100, 100, 50]
    assert len(fakes.queue.sent) == 250


# ------------------------------------------------------------------ deliveries: repeated, concurrent, crashed


def test_a_repeated_delivery_of_a_completed_upload_does_nothing(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video(), factories.quiz()))
    ingest(fakes, upload)
    sent = len(fakes.queue.sent)
    reported = fakes.upload_files.objects[report_key(ACCOUNT, upload.upload_id)]

    again = ingest(fakes, upload)

    assert again.outcome is IngestOutcome.DUPLICATE
    assert len(all_tasks(fakes)) == 2
    assert len(fakes.queue.sent) == sent
    assert fakes.upload_files.objects[report_key(ACCOUNT, upload.upload_id)] == reported


def test_a_delivery_while_another_run_holds_the_upload_leaves_it_alone(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))
    now = utc_now()
    fakes.uploads.claim(
        ACCOUNT, upload.upload_id, claim="other-run", now=isoformat(now), lease_until="9999-01-01T00:00:00.000000Z"
    )

    result = ingest(fakes, upload)

    assert result.outcome is IngestOutcome.BUSY
    assert all_tasks(fakes) == []
    assert stored(fakes, upload).claim == "other-run"


class FailingOnce:
    """Wraps a method: the call numbered `on` raises Retryable (a crash halfway), the others pass."""

    def __init__(self, method, on: int) -> None:
        self.method = method
        self.on = on
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.on:
            raise Retryable("DynamoDB is busy")
        return self.method(*args, **kwargs)


def test_a_crash_halfway_then_a_new_delivery_creates_nothing_twice(fakes):
    upload = start(fakes, group="g")
    rows = [factories.documentation() for _ in range(7)] + ["{broken"] + [factories.quiz(f"q{n}") for n in range(3)]
    drop(fakes, upload, jsonl(*rows))
    fakes.repo.insert_new = FailingOnce(fakes.repo.insert_new, on=3)  # chunks 1 and 2 made it

    with pytest.raises(Retryable):
        ingest(fakes, upload, chunk_rows=3)

    halfway = stored(fakes, upload)
    assert halfway.status is UploadStatus.PROCESSING
    assert halfway.counts == UploadCounts(created=6)
    assert halfway.last_error == "Retryable: DynamoDB is busy"
    assert len(all_tasks(fakes)) == 6

    result = ingest(fakes, upload, chunk_rows=3)  # the message comes back; the released claim is taken over

    assert result.outcome is IngestOutcome.COMPLETED
    assert stored(fakes, upload).counts == UploadCounts(created=10, existing=0, invalid=1)
    assert len(all_tasks(fakes)) == 10
    # Messages go before each chunk's insert (one write per task): chunk 3's went before its insert
    # failed, and the new delivery sends again those of the chunks it re-creates or finds stored.
    # The processor runs each task once whatever the copies.
    sent = [message.task_id for _, message, _ in fakes.queue.sent]
    assert sorted(set(sent)) == sorted(t.task_id for t in all_tasks(fakes))
    assert [line["status"] for line in report(fakes, upload)] == ["created"] * 7 + ["invalid"] + ["created"] * 3
    fakes.run_queue()
    assert {completions(task) for task in all_tasks(fakes)} == {1}


def test_a_crash_after_a_chunk_was_written_but_not_counted_still_counts_it_once(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(4)]))
    fakes.uploads.record_progress = FailingOnce(fakes.uploads.record_progress, on=2)

    with pytest.raises(Retryable):
        ingest(fakes, upload, chunk_rows=2)
    assert stored(fakes, upload).counts == UploadCounts(created=2)
    assert len(all_tasks(fakes)) == 4

    ingest(fakes, upload, chunk_rows=2)

    assert stored(fakes, upload).counts == UploadCounts(created=4)
    assert [line["status"] for line in report(fakes, upload)] == ["created"] * 4


def test_tasks_that_existed_before_the_first_run_stay_existing_after_a_resume(fakes):
    task_service.create_tasks(
        fakes.repo,
        fakes.queue,
        factories.principal(ACCOUNT),
        BulkCreateRequest.model_validate(factories.bulk(factories.quiz("old"))).tasks,
    )
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.quiz("old"), factories.quiz("new"), factories.quiz("later")))
    fakes.repo.insert_new = FailingOnce(fakes.repo.insert_new, on=2)
    with pytest.raises(Retryable):
        ingest(fakes, upload, chunk_rows=2)

    ingest(fakes, upload, chunk_rows=2)

    assert [line["status"] for line in report(fakes, upload)] == ["existing", "created", "created"]


def test_a_run_that_loses_its_claim_stops_without_touching_the_upload(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(4)]))
    record_progress = fakes.uploads.record_progress

    def taken_over(account_id, upload_id, **kwargs):
        fakes.uploads.fail(account_id, upload_id, error="ingest failed repeatedly: x", now=isoformat(utc_now()))
        return record_progress(account_id, upload_id, **kwargs)

    fakes.uploads.record_progress = taken_over

    result = ingest(fakes, upload, chunk_rows=2)

    assert result.outcome is IngestOutcome.SUPERSEDED
    assert len(all_tasks(fakes)) == 2  # the first chunk, then the run stopped
    assert stored(fakes, upload).error == "ingest failed repeatedly: x"
    assert report_key(ACCOUNT, upload.upload_id) not in fakes.upload_files.objects


def test_the_dead_letter_path_fails_the_upload_with_the_last_error(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))
    fakes.repo.insert_new = FailingOnce(fakes.repo.insert_new, on=1)
    with pytest.raises(Retryable):
        ingest(fakes, upload)

    result = ingestor(fakes).fail_dead_lettered(BUCKET, event_key(upload.object_key))

    assert result.outcome is IngestOutcome.FAILED
    assert stored(fakes, upload).status is UploadStatus.FAILED
    assert stored(fakes, upload).error == "ingest failed repeatedly: Retryable: DynamoDB is busy"


def test_the_dead_letter_path_leaves_final_uploads_alone(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))
    ingest(fakes, upload)

    result = ingestor(fakes).fail_dead_lettered(BUCKET, event_key(upload.object_key))

    assert result.outcome is IngestOutcome.DUPLICATE
    assert stored(fakes, upload).status is UploadStatus.COMPLETED


def test_an_upload_that_never_ran_dead_letters_with_a_generic_reason(fakes):
    upload = start(fakes)

    ingestor(fakes).fail_dead_lettered(BUCKET, event_key(upload.object_key))

    assert stored(fakes, upload).error == (
        "ingest failed repeatedly: the ingest function did not finish (it timed out or ran out of memory)"
    )


# ------------------------------------------------------------------ keys that are no upload of the account


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("someone-elses-bucket", "{own}"),
        (BUCKET, "reports/acct_a/{id}.jsonl"),
        (BUCKET, "uploads/acct_b/{id}"),  # the id exists, in another account
        (BUCKET, "uploads/acct_a/{id}/extra"),
        (BUCKET, "uploads/acct_a"),
        (BUCKET, "uploads/acct_a/6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c"),  # unknown upload
        (BUCKET, "uploads/acct_a/not-a-uuid"),
        (BUCKET, "uploads/../uploads/acct_a/{id}"),
    ],
)
def test_keys_that_name_no_upload_of_the_account_are_ignored(fakes, bucket, key):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))
    fakes.upload_files.objects[f"uploads/{OTHER_ACCOUNT}/{upload.upload_id}"] = jsonl(factories.video())
    key = key.format(own=upload.object_key, id=upload.upload_id)

    result = ingestor(fakes).ingest(bucket, event_key(key), 10)

    assert result.outcome is IngestOutcome.IGNORED
    assert all_tasks(fakes) == []
    assert all_tasks(fakes, OTHER_ACCOUNT) == []
    assert stored(fakes, upload).status is UploadStatus.PENDING


def test_keys_are_decoded_once(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(factories.video()))

    twice_encoded = ingestor(fakes).ingest(BUCKET, event_key(event_key(upload.object_key)), None)
    assert twice_encoded.outcome is IngestOutcome.IGNORED

    assert ingestor(fakes).ingest(BUCKET, upload.object_key, None).outcome is IngestOutcome.COMPLETED  # "/" unencoded


# ------------------------------------------------------------------ files that fail the upload


def test_an_oversized_file_fails_the_upload(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(30)]))
    size = len(fakes.upload_files.objects[upload.object_key])

    result = ingest(fakes, upload, settings=settings(upload_max_bytes=1024))

    assert result.outcome is IngestOutcome.FAILED
    assert stored(fakes, upload).error == f"The file is {size} bytes; an upload may be at most 1024 bytes"
    assert all_tasks(fakes) == []
    assert report(fakes, upload) == []


def test_the_size_in_the_notification_is_checked_before_reading(fakes):
    upload = start(fakes)  # no file at all: it must not be opened

    result = ingestor(fakes).ingest(BUCKET, event_key(upload.object_key), 10**12)

    assert result.outcome is IngestOutcome.FAILED
    assert stored(fakes, upload).error.startswith("The file is 1000000000000 bytes")


@pytest.mark.parametrize(
    ("upload_format", "data", "error"),
    [
        (
            "jsonl",
            b"task_id,task_type\nt1,video\n",
            "The file cannot be read as JSON Lines: its first line is not a JSON object (it is not JSON)",
        ),
        (
            "jsonl",
            json.dumps(factories.bulk(factories.video()), indent=2).encode(),
            "The file cannot be read as JSON Lines: its first line is not a JSON object (it is not JSON)",
        ),
        (
            "jsonl",
            json.dumps(factories.bulk(factories.video())).encode(),
            'The file cannot be read as JSON Lines: its first line is a bulk body ({"tasks": [...]}): '
            'upload it with format "json"',
        ),
        (
            "jsonl",
            b"\n\n[1, 2]\n",
            "The file cannot be read as JSON Lines: its first line is not a JSON object (it is a JSON list)",
        ),
        (
            "jsonl",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
            "The file cannot be read as JSON Lines: its first line is not a JSON object (it is not UTF-8 text)",
        ),
        ("json", jsonl(factories.video(), factories.video()), "The file cannot be read as JSON: "),
        ("csv", jsonl(factories.video()), "The file cannot be read as CSV: unknown columns"),
        ("csv", b"task_type,story\xff\n", "The file cannot be read as CSV: the file is not valid UTF-8"),
    ],
)
def test_a_file_of_another_type_fails_the_upload_and_creates_nothing(fakes, upload_format, data, error):
    upload = start(fakes, upload_format)
    drop(fakes, upload, data)

    result = ingest(fakes, upload)

    assert result.outcome is IngestOutcome.FAILED
    assert stored(fakes, upload).status is UploadStatus.FAILED
    assert stored(fakes, upload).error.startswith(error)
    assert all_tasks(fakes) == []
    assert report(fakes, upload) == []


def test_a_long_first_line_is_judged_by_how_it_begins(fakes):
    upload = start(fakes)
    drop(fakes, upload, b"x" * 400_000 + b"\n" + jsonl(factories.video()))

    result = ingest(fakes, upload)

    assert result.error == "The file cannot be read as JSON Lines: its first line is not a JSON object (it is not JSON)"


def test_a_file_level_error_after_some_rows_keeps_those_rows_and_their_report(fakes):
    upload = start(fakes, "csv")
    drop(
        fakes,
        upload,
        b"task_id,task_type,request_data.story_prompt\nd1,documentation,One\nd2,documentation,Two\n"
        b'd3,documentation,"unterminated\n',
    )

    result = ingest(fakes, upload)

    assert result.outcome is IngestOutcome.FAILED
    current = stored(fakes, upload)
    assert current.error == (
        "The file cannot be read as CSV: the file is not valid CSV (in row 3): unexpected end of data"
    )
    assert current.counts == UploadCounts(created=2)
    assert [(line["row"], line["status"]) for line in report(fakes, upload)] == [(1, "created"), (2, "created")]
    assert {t.task_id for t in all_tasks(fakes)} == {"d1", "d2"}


def test_a_malformed_json_document_creates_nothing(fakes):
    upload = start(fakes, "json")
    drop(fakes, upload, json.dumps(factories.bulk(factories.video("v1"), factories.video("v2"))).encode()[:-10])

    result = ingest(fakes, upload)

    assert result.outcome is IngestOutcome.FAILED
    assert result.error.startswith("The file cannot be read as JSON: the document is not valid JSON")
    assert all_tasks(fakes) == []


def test_an_empty_file_fails_the_upload(fakes):
    upload = start(fakes)
    drop(fakes, upload, b"")

    assert ingest(fakes, upload).error == "The file is empty"


def test_a_file_deleted_before_it_was_read_fails_the_upload(fakes):
    upload = start(fakes)

    assert ingest(fakes, upload).error == "The uploaded file is gone (deleted before it was read)"


# ------------------------------------------------------------------ the plan's ceiling of unfinished tasks


def test_the_ceiling_stops_the_upload_and_the_rows_done_stay_reported(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(5)]))

    result = ingest(fakes, upload, chunk_rows=2, settings=settings(max_unfinished_free=3))

    assert result.outcome is IngestOutcome.FAILED
    current = stored(fakes, upload)
    assert current.counts == UploadCounts(created=2)
    assert current.error.startswith(
        "Stopped after 2 rows: account acct_a may hold at most 3 unfinished tasks (PENDING, QUEUED or PROCESSING)"
    )
    assert len(report(fakes, upload)) == 2
    assert len(all_tasks(fakes)) == 2


def test_existing_tasks_take_no_room_under_the_ceiling(fakes):
    upload = start(fakes)
    drop(fakes, upload, jsonl(*[factories.documentation(f"d{n}") for n in range(4)]))
    assert ingest(fakes, upload, settings=settings(max_unfinished_free=4)).outcome is IngestOutcome.COMPLETED

    again = start(fakes)  # the same rows, under another upload: every id exists, the account is full
    drop(fakes, again, jsonl(*[factories.documentation(f"d{n}") for n in range(4)]))

    result = ingest(fakes, again, settings=settings(max_unfinished_free=4))

    assert result.outcome is IngestOutcome.COMPLETED
    assert result.counts == UploadCounts(existing=4)


def test_the_ceiling_is_the_uploaders_plan(fakes):
    upload = start(fakes, principal=factories.principal(ACCOUNT).__class__(ACCOUNT, "u", "api_key", plan="standard"))
    drop(fakes, upload, jsonl(*[factories.documentation() for _ in range(5)]))

    result = ingest(fakes, upload, settings=settings(max_unfinished_free=1, max_unfinished_standard=10))

    assert result.outcome is IngestOutcome.COMPLETED
    assert {t.user_id for t in all_tasks(fakes)} == {"u"}
