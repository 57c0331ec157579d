"""Upload routes: a presigned POST for a file of tasks, and the upload's progress and report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from taskapi.http.deps import PrincipalDep, SettingsDep
from taskapi.http.routes import AUTH_ERRORS
from taskapi.models.responses import ErrorOut
from taskapi.models.uploads import PresignedUploadOut, UploadCreate, UploadCreatedOut, UploadOut
from taskapi.uploads import service
from taskapi.uploads.files import UploadFiles
from taskapi.uploads.store import UploadStore
from taskapi.wiring import get_upload_files, get_upload_store

UploadStoreDep = Annotated[UploadStore, Depends(get_upload_store)]
UploadFilesDep = Annotated[UploadFiles, Depends(get_upload_files)]

router = APIRouter(prefix="/api/uploads", tags=["uploads"])


@router.post(
    "",
    status_code=201,
    response_model=UploadCreatedOut,
    responses={
        **AUTH_ERRORS,
        400: {"model": ErrorOut, "description": "The body is not JSON, or the account cannot own uploads"},
    },
    summary="Start an upload: a presigned POST for one file of tasks",
)
def create_upload(
    body: UploadCreate,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: UploadStoreDep,
    files: UploadFilesDep,
) -> UploadCreatedOut:
    """Records a PENDING upload and answers an HTML-form POST that can write only this upload's
    file (uploads/{account_id}/{upload_id}, 1 byte to max_bytes) until expires_at. Once the file
    is stored, its tasks are created in chunks of 100 exactly as POST /api/tasks/bulk does (and
    queued); follow the progress with GET /api/uploads/{upload_id}."""
    new = service.create_upload(
        store,
        files,
        principal,
        upload_format=body.format,
        task_source_group_id=body.task_source_group_id,
        filename=body.filename,
        max_bytes=settings.upload_max_bytes,
        expires_in=settings.upload_url_expiry_seconds,
    )
    return UploadCreatedOut(
        upload_id=new.upload.upload_id,
        status=new.upload.status,
        format=new.upload.format,
        task_source_group_id=new.upload.task_source_group_id,
        filename=new.upload.filename,
        upload=PresignedUploadOut(
            url=new.post.url, fields=new.post.fields, expires_at=new.expires_at, max_bytes=new.max_bytes
        ),
    )


@router.get(
    "/{upload_id}",
    response_model=UploadOut,
    responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such upload in this account"}},
    summary="Get an upload: status, counts and report",
)
def get_upload(
    upload_id: Annotated[str, Path(max_length=64)],
    principal: PrincipalDep,
    store: UploadStoreDep,
    files: UploadFilesDep,
) -> UploadOut:
    upload = service.get_upload(store, principal, upload_id)
    report_url = files.url(upload.report_key) if upload.report_key else None
    return UploadOut.from_upload(upload, report_url=report_url)
