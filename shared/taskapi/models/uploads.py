"""Request and response bodies of the uploads endpoints, mapped explicitly from the upload record."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from taskapi.models.requests import SourceId
from taskapi.uploads.model import Upload, UploadFormatName, UploadStatus

Filename = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class UploadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: UploadFormatName = Field(
        description="jsonl: one task per line, shaped like an item of the bulk body. json: the bulk body "
        "itself (tasks plus the shared video settings) without the limit of 100. csv: a header row with "
        "task_id, task_type, priority, task_source_name, task_source_id, task_source_group_id and "
        "request_data (a JSON object) or request_data.<field> columns."
    )
    task_source_group_id: SourceId | None = Field(
        default=None, description="Given to every task of the file that names no group of its own."
    )
    filename: Filename | None = Field(
        default=None, description="Your name for the file, shown back; the object key never depends on it."
    )


class PresignedUploadOut(BaseModel):
    """Send an HTML-form POST (multipart/form-data) to `url`: every entry of `fields` as a form
    field, then the file as the last field, named "file"."""

    url: str
    method: Literal["POST"] = "POST"
    fields: dict[str, str] = Field(description="Form fields to send as they are (the key and its signed policy).")
    expires_at: str = Field(description="The POST is refused after this moment (ISO 8601, UTC).")
    max_bytes: int = Field(description="Largest file accepted, in bytes (an empty file is refused too).")


class UploadOut(BaseModel):
    """An upload and its progress: rows counts every row read so far (created + existing + invalid)."""

    upload_id: str
    status: UploadStatus = Field(description="PENDING until the file arrives, PROCESSING, then COMPLETED or FAILED.")
    format: UploadFormatName
    task_source_group_id: str | None
    filename: str | None
    rows: int = Field(ge=0)
    created: int = Field(ge=0, description="Rows whose task this upload created.")
    existing: int = Field(ge=0, description="Rows whose task_id already existed in the account (answered as stored).")
    invalid: int = Field(ge=0, description="Rows that did not validate (see the report for their errors).")
    error: str | None = Field(description="Why the upload FAILED.")
    report_url: str | None = Field(
        description="Presigned GET of the report (one JSON line per row: row, status, task_id, errors), once written."
    )
    created_at: str
    updated_at: str

    @classmethod
    def from_upload(cls, upload: Upload, report_url: str | None = None) -> UploadOut:
        return cls(
            upload_id=upload.upload_id,
            status=upload.status,
            format=upload.format,
            task_source_group_id=upload.task_source_group_id,
            filename=upload.filename,
            rows=upload.counts.rows,
            created=upload.counts.created,
            existing=upload.counts.existing,
            invalid=upload.counts.invalid,
            error=upload.error,
            report_url=report_url,
            created_at=upload.created_at,
            updated_at=upload.updated_at,
        )


class UploadCreatedOut(BaseModel):
    upload_id: str
    status: UploadStatus
    format: UploadFormatName
    task_source_group_id: str | None
    filename: str | None
    upload: PresignedUploadOut
