"""ResultStore: where artifacts go (S3, private) and how readers get them (presigned GET URLs
made at read time, so a stored URL never expires on a client)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, translate

if TYPE_CHECKING:  # the API reads results without loading the engines (cold start)
    from taskapi.engines.base import Artifact


def result_prefix(account_id: str, task_id: str, attempt: int, claim: str | None = None) -> str:
    """Unique to account, task and attempt (and to the claim that ran it, when given): a late
    worker of an old attempt or an expired claim never overwrites another run's result."""
    prefix = f"results/{account_id}/{task_id}/attempt-{attempt}/"
    if claim:
        prefix += "claim-" + "".join(ch for ch in claim if ch.isalnum()) + "/"
    return prefix


class ResultStore(Protocol):
    def put(self, prefix: str, artifact: Artifact) -> str:
        """Store every file under prefix; answers the primary file's key."""
        ...

    def delete(self, prefix: str, artifact: Artifact) -> None: ...

    def url(self, key: str) -> str: ...


class S3ResultStore:
    def __init__(self, client: Any, bucket: str, expiry_seconds: int) -> None:
        self._client = client
        self._bucket = bucket
        self._expiry = expiry_seconds

    def put(self, prefix: str, artifact: Artifact) -> str:
        try:
            for file in artifact.files:
                self._client.put_object(
                    Bucket=self._bucket, Key=prefix + file.name, Body=file.body, ContentType=file.content_type
                )
        except AWS_ERRORS as exc:
            raise translate(exc, service="S3", unavailable=f"S3 did not store the result: {exc}") from exc
        return prefix + artifact.primary

    def delete(self, prefix: str, artifact: Artifact) -> None:
        try:
            self._client.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": prefix + file.name} for file in artifact.files], "Quiet": True},
            )
        except AWS_ERRORS as exc:
            raise translate(exc, service="S3", unavailable=f"S3 did not delete the orphaned result: {exc}") from exc

    def url(self, key: str) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._expiry
            )
        )


class InMemoryResultStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def put(self, prefix: str, artifact: Artifact) -> str:
        with self._lock:
            for file in artifact.files:
                self.objects[prefix + file.name] = (file.content_type, file.body)
        return prefix + artifact.primary

    def delete(self, prefix: str, artifact: Artifact) -> None:
        with self._lock:
            for file in artifact.files:
                self.objects.pop(prefix + file.name, None)

    def url(self, key: str) -> str:
        return f"memory://results/{key}"
