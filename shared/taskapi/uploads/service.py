"""Upload rules the HTTP API calls: record an upload and presign the one POST that may write it;
read an upload back within the caller's account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from taskapi.auth.principal import Principal
from taskapi.errors import InvalidRequest, NotFound
from taskapi.models.domain import isoformat, utc_now
from taskapi.observability import logger, metrics, tracer
from taskapi.uploads.files import PresignedPost, UploadFiles
from taskapi.uploads.model import Upload, UploadFormatName, UploadStatus, can_own_uploads, object_key
from taskapi.uploads.store import UploadStore


@dataclass(frozen=True)
class NewUpload:
    upload: Upload
    post: PresignedPost
    expires_at: str
    max_bytes: int


@tracer.capture_method(capture_response=False)
def create_upload(
    store: UploadStore,
    files: UploadFiles,
    principal: Principal,
    *,
    upload_format: UploadFormatName,
    task_source_group_id: str | None,
    filename: str | None,
    max_bytes: int,
    expires_in: int,
    now: datetime | None = None,
) -> NewUpload:
    """Record a PENDING upload and presign a POST for its key uploads/<account_id>/<upload_id>."""
    if not can_own_uploads(principal.account_id):
        raise InvalidRequest(f"Account id {principal.account_id!r} cannot own uploads (letters, digits, _ and - only)")
    moment = now or utc_now()
    stamp = isoformat(moment)
    upload_id = str(uuid.uuid4())
    upload = Upload(
        account_id=principal.account_id,
        upload_id=upload_id,
        user_id=principal.user_id,
        auth_method=principal.auth_method,
        plan=principal.plan,
        format=upload_format,
        status=UploadStatus.PENDING,
        created_at=stamp,
        updated_at=stamp,
        object_key=object_key(principal.account_id, upload_id),
        task_source_group_id=task_source_group_id,
        filename=filename,
    )
    # Presigned first: signing is local and cannot fail halfway, so no record is left without a URL.
    post = files.presign_post(upload.object_key, max_bytes=max_bytes, expires_in=expires_in)
    store.create(upload)
    logger.info("upload created", extra={"upload_id": upload_id, "format": upload_format})
    metrics.add_metric(name="UploadsCreated", unit="Count", value=1)
    return NewUpload(
        upload=upload,
        post=post,
        expires_at=isoformat(moment + timedelta(seconds=expires_in)),
        max_bytes=max_bytes,
    )


@tracer.capture_method(capture_response=False)
def get_upload(store: UploadStore, principal: Principal, upload_id: str) -> Upload:
    upload = store.get(principal.account_id, upload_id)
    if upload is None:
        # The same answer whether the id is unknown or another account's: nothing is confirmed.
        raise NotFound(f"Upload {upload_id} not found")
    return upload
