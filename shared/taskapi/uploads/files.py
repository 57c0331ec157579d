"""The uploads bucket: presigned POSTs that can write one key only, streaming reads of uploaded
files, report writes, and presigned GETs of reports (made at read time)."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import IO, Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, error_code, translate
from taskapi.errors import NotFound, Retryable

REPORT_CONTENT_TYPE = "application/x-ndjson"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class PresignedPost:
    """An HTML-form POST: send `fields` as form fields, then the file as the field "file"."""

    url: str
    fields: dict[str, str]


@dataclass
class UploadedFile:
    body: Readable
    size: int

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if callable(close):
            close()


class UploadFiles(Protocol):
    def presign_post(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedPost:
        """A POST that may write exactly `key`, with 1 to max_bytes bytes, for expires_in seconds."""
        ...

    def open(self, key: str) -> UploadedFile:
        """The object's body as a stream (never read whole) and its size; NotFound if it is gone."""
        ...

    def put_report(self, key: str, report: IO[bytes]) -> None:
        """Store the report file (read from its current position to the end)."""
        ...

    def url(self, key: str) -> str:
        """A presigned GET of the object."""
        ...


class S3UploadFiles:
    def __init__(self, client: Any, bucket: str, url_expiry_seconds: int) -> None:
        self._client = client
        self._bucket = bucket
        self._url_expiry = url_expiry_seconds

    @property
    def bucket(self) -> str:
        return self._bucket

    def presign_post(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedPost:
        # boto3 adds the conditions {"bucket": ...} and {"key": key} (the exact key: it does not
        # end in ${filename}); the size range is ours. The policy is signed (SigV4), so a client
        # cannot widen any condition, and S3 refuses a form whose fields break one.
        answer = self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )
        return PresignedPost(url=str(answer["url"]), fields={k: str(v) for k, v in answer["fields"].items()})

    def open(self, key: str) -> UploadedFile:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key)
        except AWS_ERRORS as exc:
            if error_code(exc) in _MISSING:
                raise NotFound(f"Object {key} not found") from exc
            raise translate(exc, service="S3", unavailable=f"S3 did not answer for {key}: {exc}") from exc
        return UploadedFile(body=_RetryableReads(answer["Body"]), size=int(answer.get("ContentLength", 0)))

    def put_report(self, key: str, report: IO[bytes]) -> None:
        try:
            # Managed transfer: multipart above 8 MB, reading the file part by part.
            self._client.upload_fileobj(report, self._bucket, key, ExtraArgs={"ContentType": REPORT_CONTENT_TYPE})
        except AWS_ERRORS as exc:
            raise translate(exc, service="S3", unavailable=f"S3 did not store the report {key}: {exc}") from exc

    def url(self, key: str) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._url_expiry
            )
        )


class _RetryableReads:
    """A streaming body whose network errors surface as Retryable (the ingest run is retried)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int, /) -> bytes:
        try:
            return bytes(self._body.read(size))
        except AWS_ERRORS as exc:
            raise translate(exc, service="S3", unavailable=f"reading the uploaded file failed: {exc}") from exc
        except OSError as exc:
            raise Retryable(f"reading the uploaded file failed: {exc}") from exc

    def close(self) -> None:
        self._body.close()


class InMemoryUploadFiles:
    """The bucket as a dict, for unit tests. Presigned POSTs record their conditions."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def presign_post(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedPost:
        self.posts[key] = {"max_bytes": max_bytes, "expires_in": expires_in}
        return PresignedPost(url="memory://uploads", fields={"key": key})

    def open(self, key: str) -> UploadedFile:
        data = self.objects.get(key)
        if data is None:
            raise NotFound(f"Object {key} not found")
        return UploadedFile(body=io.BytesIO(data), size=len(data))

    def put_report(self, key: str, report: IO[bytes]) -> None:
        with self._lock:
            self.objects[key] = report.read()

    def url(self, key: str) -> str:
        return f"memory://uploads/{key}"
