"""DynamoDB adapter of UploadStore: the only module that knows the UploadsTable item layout.

Item layout (template.yaml, UploadsTable): key account_id + upload_id; every other field of
Upload as an attribute of the same name (counts as the numbers created, existing, invalid);
optional fields are absent rather than null."""

from __future__ import annotations

from typing import Any

from taskapi.aws_errors import AWS_ERRORS, DEFAULT_CONFLICT, AwsError, error_code, translate
from taskapi.errors import TaskApiError
from taskapi.uploads.model import Upload, UploadCounts, UploadStatus

_CONDITION_FAILED = "ConditionalCheckFailedException"
_UNAVAILABLE = "The upload store did not answer; retry the request"
_OPTIONAL = (
    "task_source_group_id",
    "filename",
    "plan",
    "error",
    "report_key",
    "claim",
    "lease_until",
    "started_at",
    "last_error",
)
_FINAL = (UploadStatus.COMPLETED.value, UploadStatus.FAILED.value)


def _store_error(exc: AwsError, conflict: str = DEFAULT_CONFLICT) -> TaskApiError:
    return translate(exc, service="DynamoDB", unavailable=_UNAVAILABLE, conflict=conflict)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def upload_to_item(upload: Upload) -> dict[str, Any]:
    item: dict[str, Any] = {
        "account_id": _s(upload.account_id),
        "upload_id": _s(upload.upload_id),
        "user_id": _s(upload.user_id),
        "auth_method": _s(upload.auth_method),
        "format": _s(upload.format),
        "status": _s(upload.status.value),
        "created_at": _s(upload.created_at),
        "updated_at": _s(upload.updated_at),
        "object_key": _s(upload.object_key),
        "created": _n(upload.counts.created),
        "existing": _n(upload.counts.existing),
        "invalid": _n(upload.counts.invalid),
    }
    for name in _OPTIONAL:
        value = getattr(upload, name)
        if value is not None:
            item[name] = _s(value)
    return item


def item_to_upload(item: dict[str, Any]) -> Upload:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    def number(name: str) -> int:
        value = item.get(name)
        return 0 if value is None else int(value["N"])

    return Upload(
        account_id=item["account_id"]["S"],
        upload_id=item["upload_id"]["S"],
        user_id=item["user_id"]["S"],
        auth_method="api_key" if item["auth_method"]["S"] == "api_key" else "jwt",
        format=item["format"]["S"],
        status=UploadStatus(item["status"]["S"]),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        object_key=item["object_key"]["S"],
        counts=UploadCounts(created=number("created"), existing=number("existing"), invalid=number("invalid")),
        **{name: text(name) for name in _OPTIONAL},
    )


class _Update:
    """One UpdateItem: SET / REMOVE clauses and a condition, every name and value a placeholder
    (status, error and others are DynamoDB reserved words)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _n(value) if isinstance(value, int) else _s(value)
        return placeholder

    def set(self, attribute: str, value: str | int | None) -> _Update:
        if value is None:
            self.removes.append(self.name(attribute))
        else:
            self.sets.append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def set_once(self, attribute: str, value: str) -> _Update:
        placeholder = self.name(attribute)
        self.sets.append(f"{placeholder} = if_not_exists({placeholder}, {self.value(value)})")
        return self

    def counts(self, counts: UploadCounts) -> _Update:
        return self.set("created", counts.created).set("existing", counts.existing).set("invalid", counts.invalid)

    def expression(self) -> str:
        clauses = []
        if self.sets:
            clauses.append("SET " + ", ".join(self.sets))
        if self.removes:
            clauses.append("REMOVE " + ", ".join(self.removes))
        return " ".join(clauses)


class DynamoUploadStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, account_id: str, upload_id: str) -> dict[str, Any]:
        return {"account_id": _s(account_id), "upload_id": _s(upload_id)}

    def create(self, upload: Upload) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=upload_to_item(upload),
                ConditionExpression="attribute_not_exists(upload_id)",
            )
        except AWS_ERRORS as exc:
            raise _store_error(exc, conflict=f"Upload {upload.upload_id} already exists") from exc

    def get(self, account_id: str, upload_id: str) -> Upload | None:
        try:
            answer = self._client.get_item(
                TableName=self._table, Key=self._key(account_id, upload_id), ConsistentRead=True
            )
        except AWS_ERRORS as exc:
            raise _store_error(exc) from exc
        item = answer.get("Item")
        return None if item is None else item_to_upload(item)

    def _update(self, account_id: str, upload_id: str, update: _Update, condition: str) -> Upload | None:
        """Apply the update if the condition holds: the upload as stored, or None if it did not."""
        args: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(account_id, upload_id),
            "UpdateExpression": update.expression(),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": update.names,
            "ReturnValues": "ALL_NEW",
        }
        if update.values:
            args["ExpressionAttributeValues"] = update.values
        try:
            answer = self._client.update_item(**args)
        except AWS_ERRORS as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return None
            raise _store_error(exc) from exc
        return item_to_upload(answer["Attributes"])

    def claim(self, account_id: str, upload_id: str, *, claim: str, now: str, lease_until: str) -> Upload | None:
        update = _Update()
        update.set("status", UploadStatus.PROCESSING.value).set("claim", claim).set("lease_until", lease_until)
        update.set("updated_at", now).set_once("started_at", now)
        condition = (
            f"attribute_exists(upload_id) AND ({update.name('status')} = {update.value(UploadStatus.PENDING.value)} "
            f"OR ({update.name('status')} = {update.value(UploadStatus.PROCESSING.value)} "
            f"AND {update.name('lease_until')} < {update.value(now)}))"
        )
        return self._update(account_id, upload_id, update, condition)

    def _held_condition(self, update: _Update, claim: str) -> str:
        return (
            f"{update.name('status')} = {update.value(UploadStatus.PROCESSING.value)} "
            f"AND {update.name('claim')} = {update.value(claim)}"
        )

    def record_progress(self, account_id: str, upload_id: str, *, claim: str, counts: UploadCounts, now: str) -> bool:
        update = _Update().counts(counts).set("updated_at", now)
        return self._update(account_id, upload_id, update, self._held_condition(update, claim)) is not None

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
        update = _Update().counts(counts).set("updated_at", now).set("error", error).set("report_key", report_key)
        update.set("claim", None).set("lease_until", None)
        condition = self._held_condition(update, claim)  # names the claim before REMOVE lists it again
        update.set("status", status.value)
        return self._update(account_id, upload_id, update, condition) is not None

    def release(self, account_id: str, upload_id: str, *, claim: str, now: str, error: str) -> bool:
        update = _Update().set("lease_until", now).set("last_error", error).set("updated_at", now)
        return self._update(account_id, upload_id, update, self._held_condition(update, claim)) is not None

    def fail(self, account_id: str, upload_id: str, *, error: str, now: str) -> Upload | None:
        update = _Update()
        condition = (
            f"attribute_exists(upload_id) AND NOT {update.name('status')} "
            f"IN ({update.value(_FINAL[0])}, {update.value(_FINAL[1])})"
        )
        update.set("status", UploadStatus.FAILED.value).set("error", error).set("updated_at", now)
        update.set("claim", None).set("lease_until", None)
        return self._update(account_id, upload_id, update, condition)
