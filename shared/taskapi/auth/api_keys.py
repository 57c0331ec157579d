"""API keys: "tk.<account_id>.<key_id>.<secret>". The account id and key id are readable, but
only the SHA-256 of the whole key, stored at creation, proves a key. The secret has 256 random bits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, replace
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from taskapi.errors import Conflict, NotFound, Retryable
from taskapi.models.domain import isoformat, utc_now
from taskapi.models.limits import ACCOUNT_ID_PATTERN

KEY_PREFIX = "tk"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    account_id: str
    key_hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def display_prefix(self) -> str:
        """The non-secret beginning of the key: enough to name it in logs and CLIs."""
        return f"{KEY_PREFIX}.{self.account_id}.{self.key_id}"


@dataclass(frozen=True)
class ParsedKey:
    account_id: str
    key_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key(key: str) -> ParsedKey | None:
    parts = key.split(".")
    if len(parts) != 4 or parts[0] != KEY_PREFIX:
        return None
    _, account_id, key_id, secret = parts
    if not _ACCOUNT.match(account_id) or not _KEY_ID.match(key_id) or len(secret) < 22:
        return None
    return ParsedKey(account_id=account_id, key_id=key_id)


def key_id_from_reference(reference: str) -> str:
    """Accept a key id, a key's display prefix or the whole key."""
    parts = reference.strip().split(".")
    candidate = parts[2] if len(parts) >= 3 and parts[0] == KEY_PREFIX else reference.strip()
    if not _KEY_ID.match(candidate):
        raise NotFound(f"{reference!r} names no API key (expected a key id or 'tk.<account>.<key id>')")
    return candidate


def generate_key(account_id: str) -> tuple[str, ApiKeyRecord]:
    if not _ACCOUNT.match(account_id):
        raise ValueError(f"account id {account_id!r} must match {ACCOUNT_ID_PATTERN}")
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}.{account_id}.{key_id}.{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(key_id=key_id, account_id=account_id, key_hash=hash_key(key), created_at=isoformat(utc_now()))
    return key, record


def key_matches(key: str, record: ApiKeyRecord, parsed: ParsedKey) -> bool:
    return record.account_id == parsed.account_id and hmac.compare_digest(hash_key(key), record.key_hash)


def _code(exc: Exception) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


class ApiKeyStore(Protocol):
    def put(self, record: ApiKeyRecord) -> None: ...

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def revoke(self, key_id: str) -> ApiKeyRecord: ...


class InMemoryApiKeyStore:
    def __init__(self) -> None:
        self._records: dict[str, ApiKeyRecord] = {}
        self._lock = threading.Lock()

    def put(self, record: ApiKeyRecord) -> None:
        self._records[record.key_id] = record

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._records.get(key_id)

    def revoke(self, key_id: str) -> ApiKeyRecord:
        with self._lock:
            record = self._records.get(key_id)
            if record is None:
                raise NotFound(f"API key {key_id} not found")
            if record.revoked_at is None:
                record = replace(record, revoked_at=isoformat(utc_now()))
                self._records[key_id] = record
            return record


class DynamoApiKeyStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, record: ApiKeyRecord) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "key_id": {"S": record.key_id},
                    "account_id": {"S": record.account_id},
                    "key_hash": {"S": record.key_hash},
                    "created_at": {"S": record.created_at},
                },
                ConditionExpression="attribute_not_exists(key_id)",
            )
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"API key {record.key_id} already exists") from exc
            raise Retryable("The API key store did not answer; retry the request") from exc

    def get(self, key_id: str) -> ApiKeyRecord | None:
        try:
            item = self._client.get_item(TableName=self._table, Key={"key_id": {"S": key_id}}).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise Retryable("The API key store did not answer; retry the request") from exc
        if item is None:
            return None
        return ApiKeyRecord(
            key_id=item["key_id"]["S"],
            account_id=item["account_id"]["S"],
            key_hash=item["key_hash"]["S"],
            created_at=item["created_at"]["S"],
            revoked_at=item.get("revoked_at", {}).get("S"),
        )

    def revoke(self, key_id: str) -> ApiKeyRecord:
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ConditionExpression="attribute_exists(key_id)",
                ExpressionAttributeValues={":now": {"S": isoformat(utc_now())}},
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise NotFound(f"API key {key_id} not found") from exc
            raise Retryable("The API key store did not answer; retry the request") from exc
        item = answer["Attributes"]
        return ApiKeyRecord(
            key_id=item["key_id"]["S"],
            account_id=item["account_id"]["S"],
            key_hash=item["key_hash"]["S"],
            created_at=item["created_at"]["S"],
            revoked_at=item["revoked_at"]["S"],
        )
