"""The upload record: one file of tasks, from the presigned POST to its report.

Life cycle (every change is a conditional write, see UploadStore)::

    PENDING --claim--> PROCESSING --finish--> COMPLETED | FAILED
       |                    ^  |
       |                    +--+  claimed again once the previous run's lease has run out
       +--fail (dead letter, oversize)--> FAILED

A PROCESSING upload is held by one ingest run at a time: the run's random ``claim`` token fences
every write it makes (progress, finish), and ``lease_until`` says when another delivery may take
the upload over (the run crashed or timed out). COMPLETED and FAILED are final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from taskapi.auth.principal import AuthMethod, Principal
from taskapi.models.limits import ACCOUNT_ID_PATTERN

UPLOADS_PREFIX = "uploads/"
REPORTS_PREFIX = "reports/"
UploadFormatName = Literal["jsonl", "json", "csv"]
"""JSON Lines, the bulk body as JSON, or CSV (taskapi.ingest.formats describes each)."""

_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)
_UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class UploadStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


FINAL_UPLOAD_STATUSES = frozenset({UploadStatus.COMPLETED, UploadStatus.FAILED})


@dataclass(frozen=True)
class UploadCounts:
    """Rows read so far; every row is exactly one of created, existing or invalid."""

    created: int = 0
    existing: int = 0
    invalid: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.existing + self.invalid

    def plus(self, other: UploadCounts) -> UploadCounts:
        return UploadCounts(
            created=self.created + other.created,
            existing=self.existing + other.existing,
            invalid=self.invalid + other.invalid,
        )


@dataclass(frozen=True)
class Upload:
    account_id: str
    upload_id: str
    user_id: str
    auth_method: AuthMethod
    format: UploadFormatName
    status: UploadStatus
    created_at: str
    updated_at: str
    object_key: str
    task_source_group_id: str | None = None
    """Applied to every row that names no group."""
    filename: str | None = None
    """The client's name for the file (informational only: the object key never depends on it)."""
    plan: str | None = None
    """The uploader's usage plan when the credentials said (an API key's); else the account's applies."""
    counts: UploadCounts = UploadCounts()
    error: str | None = None
    """Why the upload FAILED (a file-level problem, the ceiling, repeated ingest failures)."""
    report_key: str | None = None
    claim: str | None = None
    lease_until: str | None = None
    started_at: str | None = None
    """When an ingest run first claimed the upload (kept when a later run resumes it)."""
    last_error: str | None = None
    """What stopped the last ingest run that raised (shown once the upload dead-letters)."""

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_UPLOAD_STATUSES

    def principal(self) -> Principal:
        """Who the upload's tasks are created for: the uploader, as authenticated at upload time."""
        return Principal(account_id=self.account_id, user_id=self.user_id, auth_method=self.auth_method, plan=self.plan)


def object_key(account_id: str, upload_id: str) -> str:
    """The one key a presigned POST for this upload may write."""
    return f"{UPLOADS_PREFIX}{account_id}/{upload_id}"


def report_key(account_id: str, upload_id: str) -> str:
    return f"{REPORTS_PREFIX}{account_id}/{upload_id}.jsonl"


def can_own_uploads(account_id: str) -> bool:
    """Account ids become one segment of the object key: no '/' (API key accounts never have one)."""
    return bool(_ACCOUNT.match(account_id))


def parse_object_key(key: str) -> tuple[str, str] | None:
    """(account_id, upload_id) of a decoded key "uploads/<account_id>/<upload_id>"; None for any
    other key (another prefix, more or fewer segments, an id this service never issues)."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX) :].split("/")
    if len(parts) != 2:
        return None
    account_id, upload_id = parts
    if not can_own_uploads(account_id) or not _UPLOAD_ID.match(upload_id):
        return None
    return account_id, upload_id
