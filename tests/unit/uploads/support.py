"""What the upload tests share: starting an upload over the fakes, dropping its file in the fake
bucket, the ingest service wired to the fakes, S3 notifications as SQS delivers them, and reports."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

from taskapi.auth.principal import Principal
from taskapi.settings import Settings
from taskapi.uploads import service
from taskapi.uploads.ingest import Ingestor
from taskapi.uploads.model import Upload, report_key
from tests import factories
from tests.fakes import Fakes

ACCOUNT = "acct_a"
OTHER_ACCOUNT = "acct_b"
BUCKET = Settings().uploads_bucket
INGEST_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:taskapi-local-IngestQueue"
INGEST_DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:taskapi-local-IngestDeadLetterQueue"


def settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def ingestor(fakes: Fakes, **overrides: Any) -> Ingestor:
    values: dict[str, Any] = {
        "uploads": fakes.uploads,
        "files": fakes.upload_files,
        "repository": fakes.repo,
        "queue": fakes.queue,
        "key_store": fakes.keys,
        "settings": Settings(),
    }
    values.update(overrides)
    return Ingestor(**values)


def start(
    fakes: Fakes,
    upload_format: str = "jsonl",
    *,
    principal: Principal | None = None,
    group: str | None = None,
    filename: str | None = None,
) -> Upload:
    """POST /api/uploads, as the service does it."""
    new = service.create_upload(
        fakes.uploads,
        fakes.upload_files,
        principal or factories.principal(ACCOUNT),
        upload_format=upload_format,  # type: ignore[arg-type]
        task_source_group_id=group,
        filename=filename,
        max_bytes=Settings().upload_max_bytes,
        expires_in=900,
    )
    return new.upload


def drop(fakes: Fakes, upload: Upload, data: bytes) -> None:
    """The client's POST: the file lands at the upload's key."""
    fakes.upload_files.objects[upload.object_key] = data


def event_key(key: str) -> str:
    """An object key as S3 puts it in a notification (URL-encoded; moto encodes "/" too)."""
    return quote_plus(key)


def jsonl(*items: Any) -> bytes:
    """One line per item: dicts as JSON, strings as they are."""
    return b"".join((item if isinstance(item, str) else json.dumps(item)).encode() + b"\n" for item in items)


def report(fakes: Fakes, upload: Upload) -> list[dict[str, Any]]:
    data = fakes.upload_files.objects[report_key(upload.account_id, upload.upload_id)]
    return [json.loads(line) for line in data.decode().splitlines()]


def stored(fakes: Fakes, upload: Upload) -> Upload:
    current = fakes.uploads.get(upload.account_id, upload.upload_id)
    assert current is not None
    return current


def notification(bucket: str, key: str, size: int | None = None, event_name: str = "ObjectCreated:Post") -> str:
    """The SQS message body S3 sends for one stored object (key URL-encoded)."""
    obj: dict[str, Any] = {"key": event_key(key), "eTag": "0123456789abcdef"}
    if size is not None:
        obj["size"] = size
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-01-01T00:00:00.000Z",
                    "eventName": event_name,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "uploads",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": obj,
                    },
                }
            ]
        }
    )


TEST_EVENT = json.dumps(
    {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00.000Z", "Bucket": BUCKET}
)
