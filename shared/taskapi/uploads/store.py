"""The upload store interface, and its in-memory fake (the DynamoDB adapter is in .dynamodb).

Every status change is conditional, so two ingest runs of one upload (a duplicated S3 event, a
re-delivery after a crash) never overwrite each other's work, and a final upload never changes."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Protocol

from taskapi.errors import Conflict
from taskapi.uploads.model import Upload, UploadCounts, UploadStatus


class UploadStore(Protocol):
    def create(self, upload: Upload) -> None:
        """Store a new upload (Conflict if its id exists in the account)."""
        ...

    def get(self, account_id: str, upload_id: str) -> Upload | None: ...

    def claim(self, account_id: str, upload_id: str, *, claim: str, now: str, lease_until: str) -> Upload | None:
        """PENDING -> PROCESSING, or PROCESSING whose lease ended before `now` -> PROCESSING under
        this claim. Sets started_at on the first claim only. Answers the upload as stored, or None
        when it is unknown, final or held by a live claim."""
        ...

    def record_progress(self, account_id: str, upload_id: str, *, claim: str, counts: UploadCounts, now: str) -> bool:
        """Set the counts while the upload is PROCESSING under this claim; False once it is not
        (another run took it over, or it was failed): the run must stop."""
        ...

    def finish(
        self,
        account_id: str,
        upload_id: str,
        *,
        claim: str,
        status: UploadStatus,
        counts: UploadCounts,
        now: str,
        error: str | None = None,
        report_key: str | None = None,
    ) -> bool:
        """PROCESSING under this claim -> COMPLETED or FAILED, with the final counts and report."""
        ...

    def release(self, account_id: str, upload_id: str, *, claim: str, now: str, error: str) -> bool:
        """End this claim's lease now (the run raised), keeping the error for the dead-letter
        handler; the next delivery may claim the upload at once."""
        ...

    def fail(self, account_id: str, upload_id: str, *, error: str, now: str) -> Upload | None:
        """PENDING or PROCESSING (under any claim) -> FAILED with this error. Answers the upload as
        stored, or None when it is unknown or already final."""
        ...


class InMemoryUploadStore:
    def __init__(self) -> None:
        self._uploads: dict[tuple[str, str], Upload] = {}
        self._lock = threading.Lock()

    def create(self, upload: Upload) -> None:
        with self._lock:
            key = (upload.account_id, upload.upload_id)
            if key in self._uploads:
                raise Conflict(f"Upload {upload.upload_id} already exists")
            self._uploads[key] = upload

    def get(self, account_id: str, upload_id: str) -> Upload | None:
        return self._uploads.get((account_id, upload_id))

    def claim(self, account_id: str, upload_id: str, *, claim: str, now: str, lease_until: str) -> Upload | None:
        with self._lock:
            current = self._uploads.get((account_id, upload_id))
            if current is None:
                return None
            claimable = current.status is UploadStatus.PENDING or (
                current.status is UploadStatus.PROCESSING and (current.lease_until or "") < now
            )
            if not claimable:
                return None
            stored = replace(
                current,
                status=UploadStatus.PROCESSING,
                claim=claim,
                lease_until=lease_until,
                started_at=current.started_at or now,
                updated_at=now,
            )
            self._uploads[(account_id, upload_id)] = stored
            return stored

    def _held(self, account_id: str, upload_id: str, claim: str) -> Upload | None:
        current = self._uploads.get((account_id, upload_id))
        if current is None or current.status is not UploadStatus.PROCESSING or current.claim != claim:
            return None
        return current

    def record_progress(self, account_id: str, upload_id: str, *, claim: str, counts: UploadCounts, now: str) -> bool:
        with self._lock:
            current = self._held(account_id, upload_id, claim)
            if current is None:
                return False
            self._uploads[(account_id, upload_id)] = replace(current, counts=counts, updated_at=now)
            return True

    def finish(
        self,
        account_id: str,
        upload_id: str,
        *,
        claim: str,
        status: UploadStatus,
        counts: UploadCounts,
        now: str,
        error: str | None = None,
        report_key: str | None = None,
    ) -> bool:
        with self._lock:
            current = self._held(account_id, upload_id, claim)
            if current is None:
                return False
            self._uploads[(account_id, upload_id)] = replace(
                current,
                status=status,
                counts=counts,
                error=error,
                report_key=report_key,
                claim=None,
                lease_until=None,
                updated_at=now,
            )
            return True

    def release(self, account_id: str, upload_id: str, *, claim: str, now: str, error: str) -> bool:
        with self._lock:
            current = self._held(account_id, upload_id, claim)
            if current is None:
                return False
            self._uploads[(account_id, upload_id)] = replace(current, lease_until=now, last_error=error, updated_at=now)
            return True

    def fail(self, account_id: str, upload_id: str, *, error: str, now: str) -> Upload | None:
        with self._lock:
            current = self._uploads.get((account_id, upload_id))
            if current is None or current.is_final:
                return None
            stored = replace(
                current, status=UploadStatus.FAILED, error=error, claim=None, lease_until=None, updated_at=now
            )
            self._uploads[(account_id, upload_id)] = stored
            return stored
