"""Drop a file, get tasks — on moto in server mode, as the local stack runs it: POST /api/uploads,
the presigned POST sent with httpx, S3's notification on the ingest queue, the ingest function run
by the local stack's poller (or invoked with the message it would deliver), tasks QUEUED, and the
report behind the presigned report URL.

moto 5.2.5 does not check a POST's signed policy (responses.py _bucket_response_post stores any
form's key and body), so the refusals S3 makes (a key other than the pinned one, a body outside
content-length-range) cannot be observed here: the signed conditions are checked in
tests/unit/uploads/test_endpoints.py, and these tests show what ingest does with such objects."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from infra.pollers import Mapping, build_pollers, discover_mappings, sqs_record
from infra.runtime import ExecutionEnvironment, function_specs
from taskapi import wiring
from taskapi.http.app import create_app
from taskapi.models.domain import TaskStatus
from taskapi.store.base import TaskFilters
from tests import factories
from tests.unit.uploads.support import jsonl

WAIT_SECONDS = 30


@pytest.fixture
def api(stack) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


def ingest_mappings(stack) -> dict[str, Mapping]:
    ssm = stack.client("ssm")
    found = discover_mappings(ssm, stack.names.mappings_parameter_prefix)
    return {m.event_name: m for m in found if m.function == "IngestFunction"}


def start_upload(api, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = api.post("/api/uploads", headers=headers, json={"format": "jsonl", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def post_file(upload: dict[str, Any], data: bytes, **field_changes: str) -> httpx.Response:
    """The HTML-form POST a browser or the CLI sends: the fields as given, then the file."""
    fields = {**upload["upload"]["fields"], **field_changes}
    return httpx.post(upload["upload"]["url"], data=fields, files={"file": ("tasks.jsonl", data)}, timeout=10)


def receive(stack, queue: str = "IngestQueue", wait: int = 5) -> list[dict[str, Any]]:
    answer = stack.client("sqs").receive_message(
        QueueUrl=stack.refs[queue],
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return answer.get("Messages", [])


def invoke_ingest(stack, messages: list[dict[str, Any]], event_name: str = "Uploads") -> Any:
    """What the ingest function's event source mapping does with received messages."""
    mapping = ingest_mappings(stack)[event_name]
    environment = ExecutionEnvironment(function_specs()["IngestFunction"], stack.names)
    return environment.invoke({"Records": [sqs_record(message, mapping) for message in messages]})


def wait_until_final(api, headers, upload_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        body = api.get(f"/api/uploads/{upload_id}", headers=headers).json()
        if body["status"] in ("COMPLETED", "FAILED"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"upload {upload_id} is still {body['status']} after {WAIT_SECONDS} s")


def test_a_presigned_upload_becomes_queued_tasks_through_the_local_pollers(stack, api, account):
    headers = stack.api_key(account)
    upload = start_upload(api, headers, task_source_group_id="course-9")
    rows = [
        factories.video(),
        factories.quiz("quiz-1"),
        {"task_type": "quiz", "priority": "asap"},
        factories.documentation(),
    ]

    sent = post_file(upload, jsonl(*rows))
    assert sent.status_code == 204, sent.text

    mappings = ingest_mappings(stack)
    assert set(mappings) == {"Uploads", "FailedUploads"}
    pollers = build_pollers(
        list(mappings.values()),
        function_specs(),
        stack.names,
        sqs=stack.client("sqs"),
        ssm=stack.client("ssm"),
        concurrency_cap=1,
        retry_visibility_seconds=1,
    )
    for poller in pollers:
        poller.start()
    try:
        final = wait_until_final(api, headers, upload["upload_id"])
    finally:
        for poller in pollers:
            poller.stop()

    assert final["status"] == "COMPLETED", final
    assert (final["rows"], final["created"], final["existing"], final["invalid"]) == (4, 3, 0, 1)
    tasks = api.get("/api/tasks", headers=headers, params={"task_source_group_id": "course-9"}).json()
    assert tasks["total"] == 3
    assert {task["status"] for task in tasks["tasks"]} == {TaskStatus.QUEUED.value}
    report = httpx.get(final["report_url"], timeout=10)
    assert report.status_code == 200
    lines = [json.loads(line) for line in report.text.splitlines()]
    assert [(line["row"], line["status"]) for line in lines] == [
        (1, "created"),
        (2, "created"),
        (3, "invalid"),
        (4, "created"),
    ]
    assert {line["task_id"] for line in lines if line["task_id"]} == {t["task_id"] for t in tasks["tasks"]}
    assert receive(stack, wait=0) == []


def test_a_repeated_notification_creates_nothing_twice(stack, api, account):
    headers = stack.api_key(account)
    upload = start_upload(api, headers)
    assert post_file(upload, jsonl(factories.video(), factories.video())).status_code == 204
    (message,) = receive(stack)

    assert invoke_ingest(stack, [message]) == {"batchItemFailures": []}
    assert invoke_ingest(stack, [message]) == {"batchItemFailures": []}  # S3 delivers at least once
    assert post_file(upload, jsonl(factories.video())).status_code == 204  # the same key written again
    (again,) = receive(stack)
    assert invoke_ingest(stack, [again]) == {"batchItemFailures": []}

    final = api.get(f"/api/uploads/{upload['upload_id']}", headers=headers).json()
    assert (final["status"], final["created"]) == ("COMPLETED", 2)
    repository = wiring.get_repository()
    assert repository.count(account, TaskFilters()) == 2


def test_the_key_arrives_url_encoded_and_is_decoded_once(stack, api, account):
    headers = stack.api_key(account)
    upload = start_upload(api, headers)
    assert post_file(upload, jsonl(factories.documentation())).status_code == 204

    (message,) = receive(stack)
    (record,) = json.loads(message["Body"])["Records"]
    assert record["s3"]["object"]["key"] == f"uploads%2F{account}%2F{upload['upload_id']}"
    assert record["eventName"] == "ObjectCreated:Post"

    invoke_ingest(stack, [message])
    assert api.get(f"/api/uploads/{upload['upload_id']}", headers=headers).json()["created"] == 1


def test_objects_outside_an_upload_key_never_become_tasks(stack, api, account):
    headers = stack.api_key(account)
    upload = start_upload(api, headers)
    elsewhere = f"uploads/{account}/{uuid.uuid4()}"  # a well-formed key of no upload

    # S3 refuses this form (the signed policy pins the key); moto stores it, which lets us see that
    # ingest ignores it.
    assert post_file(upload, jsonl(factories.video()), key=elsewhere).status_code == 204
    assert post_file(upload, jsonl(factories.video()), key=f"notes/{account}/x").status_code == 204

    messages = receive(stack)
    assert len(messages) == 1  # notes/ is outside the notification's prefix
    assert invoke_ingest(stack, messages) == {"batchItemFailures": []}

    assert wiring.get_repository().count(account, TaskFilters()) == 0
    pending = api.get(f"/api/uploads/{upload['upload_id']}", headers=headers).json()
    assert pending["status"] == "PENDING"


def test_a_body_over_the_size_ceiling_fails_the_upload(stack, api, account, monkeypatch):
    monkeypatch.setenv("TASKAPI_UPLOAD_MAX_BYTES", "1024")
    from taskapi.settings import get_settings

    get_settings.cache_clear()
    wiring.reset()
    headers = stack.api_key(account)
    upload = start_upload(api, headers)
    assert upload["upload"]["max_bytes"] == 1024
    data = jsonl(*[factories.documentation() for _ in range(40)])
    assert len(data) > 1024

    # S3 answers 400 EntityTooLarge (content-length-range); moto stores it, and ingest refuses it.
    assert post_file(upload, data).status_code == 204
    invoke_ingest(stack, receive(stack))

    final = api.get(f"/api/uploads/{upload['upload_id']}", headers=headers).json()
    assert final["status"] == "FAILED"
    assert final["error"] == f"The file is {len(data)} bytes; an upload may be at most 1024 bytes"
    assert wiring.get_repository().count(account, TaskFilters()) == 0


def test_a_notification_on_the_dead_letter_queue_fails_its_upload(stack, api, account):
    headers = stack.api_key(account)
    upload = start_upload(api, headers)
    assert post_file(upload, jsonl(factories.video())).status_code == 204
    (message,) = receive(stack)
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.refs["IngestDeadLetterQueue"], MessageBody=message["Body"])

    assert invoke_ingest(stack, receive(stack, "IngestDeadLetterQueue"), "FailedUploads") == {"batchItemFailures": []}

    final = api.get(f"/api/uploads/{upload['upload_id']}", headers=headers).json()
    assert final["status"] == "FAILED"
    assert final["error"].startswith("ingest failed repeatedly: ")
