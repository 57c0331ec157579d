"""POST /api/uploads and GET /api/uploads/{upload_id} over the fakes: the presigned POST can write
only the upload's own key (checked in the signed policy of a real S3 presign, which needs no
network), and another account's upload is not found."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime

import boto3
import pytest
from fastapi.testclient import TestClient

from taskapi import aws
from taskapi.auth.tokens import issue_local_token
from taskapi.http.app import create_app
from taskapi.settings import Settings
from taskapi.uploads.files import S3UploadFiles
from taskapi.uploads.model import UploadStatus
from taskapi.wiring import get_upload_files
from tests import factories
from tests.fakes import Fakes
from tests.unit.uploads.support import ACCOUNT, BUCKET, OTHER_ACCOUNT, drop, event_key, ingestor, jsonl

UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


@pytest.fixture
def api():
    fakes = Fakes()
    client = TestClient(fakes.install(create_app()), raise_server_exceptions=False)
    client.fakes = fakes
    return client


@pytest.fixture
def s3_presigning_api(api):
    """The app with the real S3 adapter: generate_presigned_post signs locally (no request)."""
    client = boto3.session.Session().client("s3", region_name="us-east-1", config=aws._S3_CONFIG)
    api.app.dependency_overrides[get_upload_files] = lambda: S3UploadFiles(client, BUCKET, 3600)
    return api


def key_for(api, account: str = ACCOUNT) -> dict[str, str]:
    return api.fakes.api_key(account)


def test_post_records_a_pending_upload_and_answers_a_presigned_post(api):
    answer = api.post(
        "/api/uploads",
        headers=key_for(api),
        json={"format": "csv", "task_source_group_id": "course-1", "filename": "week 1.csv"},
    )

    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"upload_id", "status", "format", "task_source_group_id", "filename", "upload"}
    assert re.match(UUID4, body["upload_id"])
    assert body["status"] == "PENDING"
    assert body["format"] == "csv"
    assert body["task_source_group_id"] == "course-1"
    assert body["filename"] == "week 1.csv"
    assert body["upload"]["method"] == "POST"
    assert body["upload"]["max_bytes"] == Settings().upload_max_bytes
    assert body["upload"]["fields"]["key"] == f"uploads/{ACCOUNT}/{body['upload_id']}"
    stored = api.fakes.uploads.get(ACCOUNT, body["upload_id"])
    assert stored.status is UploadStatus.PENDING
    assert stored.user_id == f"api_key_user_{ACCOUNT}"
    assert stored.auth_method == "api_key"
    assert stored.object_key == body["upload"]["fields"]["key"]
    assert api.fakes.upload_files.posts[stored.object_key] == {
        "max_bytes": Settings().upload_max_bytes,
        "expires_in": Settings().upload_url_expiry_seconds,
    }


def test_every_upload_gets_its_own_key(api):
    headers = key_for(api)
    ids = {api.post("/api/uploads", headers=headers, json={"format": "jsonl"}).json()["upload_id"] for _ in range(3)}
    assert len(ids) == 3


def test_the_signed_policy_pins_the_exact_key_the_bucket_and_the_size(s3_presigning_api):
    api = s3_presigning_api
    answer = api.post("/api/uploads", headers=key_for(api), json={"format": "jsonl"})

    assert answer.status_code == 201
    upload = answer.json()["upload"]
    key = f"uploads/{ACCOUNT}/{answer.json()['upload_id']}"
    assert upload["url"] == f"https://{BUCKET}.s3.amazonaws.com/"
    fields = upload["fields"]
    assert fields["key"] == key
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert {"x-amz-credential", "x-amz-date", "x-amz-signature", "policy"} <= set(fields)
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions  # the exact key: not a prefix, not ${filename}
    assert {"bucket": BUCKET} in conditions
    assert ["content-length-range", 1, Settings().upload_max_bytes] in conditions
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    expires_at = datetime.fromisoformat(upload["expires_at"].replace("Z", "+00:00"))
    assert abs((expiration - expires_at).total_seconds()) < 5


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"format": "xlsx"},
        {"format": "jsonl", "unknown": 1},
        {"format": "jsonl", "task_source_group_id": "has\ttab"},
        {"format": "jsonl", "task_source_group_id": "g" * 257},
        {"format": "jsonl", "filename": "a\nb"},
        {"format": "jsonl", "filename": ""},
        {"format": "jsonl", "task_source_group_id": ""},
        {"format": "jsonl", "filename": "f" * 257},
    ],
)
def test_invalid_bodies_answer_422_naming_the_field(api, body):
    answer = api.post("/api/uploads", headers=key_for(api), json=body)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"
    assert api.fakes.upload_files.posts == {}


def test_uploads_need_credentials(api):
    assert api.post("/api/uploads", json={"format": "jsonl"}).status_code == 401
    answer = api.get("/api/uploads/6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c")
    assert answer.status_code == 401
    assert "detail" in answer.json()


def test_bearer_tokens_upload_for_the_account_they_name(api):
    token = issue_local_token(Settings(), subject="user-42", accounts=[ACCOUNT])
    headers = {"Authorization": f"Bearer {token}", "X-Account-ID": ACCOUNT}

    answer = api.post("/api/uploads", headers=headers, json={"format": "json"})

    assert answer.status_code == 201
    stored = api.fakes.uploads.get(ACCOUNT, answer.json()["upload_id"])
    assert (stored.user_id, stored.auth_method) == ("user-42", "jwt")


def test_get_answers_status_counts_and_the_report_url(api):
    headers = key_for(api)
    upload_id = api.post("/api/uploads", headers=headers, json={"format": "jsonl", "task_source_group_id": "g"}).json()[
        "upload_id"
    ]

    pending = api.get(f"/api/uploads/{upload_id}", headers=headers)
    assert pending.status_code == 200
    assert pending.json() | {"created_at": None, "updated_at": None} == {
        "upload_id": upload_id,
        "status": "PENDING",
        "format": "jsonl",
        "task_source_group_id": "g",
        "filename": None,
        "rows": 0,
        "created": 0,
        "existing": 0,
        "invalid": 0,
        "error": None,
        "report_url": None,
        "created_at": None,
        "updated_at": None,
    }

    upload = api.fakes.uploads.get(ACCOUNT, upload_id)
    drop(api.fakes, upload, jsonl(factories.video(), factories.quiz(), {"task_type": "nope"}))
    ingestor(api.fakes).ingest(BUCKET, event_key(upload.object_key), None)

    done = api.get(f"/api/uploads/{upload_id}", headers=headers).json()
    assert done["status"] == "COMPLETED"
    assert (done["rows"], done["created"], done["existing"], done["invalid"]) == (3, 2, 0, 1)
    assert done["report_url"] == f"memory://uploads/reports/{ACCOUNT}/{upload_id}.jsonl"
    assert done["updated_at"] >= done["created_at"]


def test_another_accounts_upload_is_not_found_like_an_unknown_one(api):
    upload_id = api.post("/api/uploads", headers=key_for(api, ACCOUNT), json={"format": "jsonl"}).json()["upload_id"]
    other = key_for(api, OTHER_ACCOUNT)

    foreign = api.get(f"/api/uploads/{upload_id}", headers=other)
    unknown = api.get("/api/uploads/6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c", headers=other)

    assert foreign.status_code == 404
    assert foreign.json() == {"detail": f"Upload {upload_id} not found"}
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Upload 6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c not found"}


def test_an_over_long_upload_id_is_refused(api):
    answer = api.get("/api/uploads/" + "x" * 65, headers=key_for(api))
    assert answer.status_code == 422


def test_the_openapi_document_describes_both_routes(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/api/uploads"]) == {"post"}
    assert {"201", "401", "422"} <= set(paths["/api/uploads"]["post"]["responses"])
    assert {"200", "401", "404"} <= set(paths["/api/uploads/{upload_id}"]["get"]["responses"])
