"""API keys: "tk.<account_id>.<key_id>.<secret>". The account id and key id are readable, but
only the SHA-256 of the whole key, stored at creation, proves a key. The secret has 256 random bits.

Each key belongs to a usage plan (`plan`) and has a twin API Gateway API key with the same value
(`gateway_key_id`), which API Gateway meters once the authorizer names it. A key is revoked once
`revoked_at` has passed (`ApiKeyRecord.is_revoked`): a rotation sets it in the future, so the
old key keeps working for a grace period.

The same table holds one enrolment per account that uses bearer tokens (`AccountEnrolment`,
key_id "account#<account_id>"): the plan its bearer-token requests are metered on and the
metering key API Gateway meters them by. Enrolments are never credentials."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from taskapi.auth.principal import ROLES, TENANT, Role
from taskapi.aws_errors import AWS_ERRORS, DEFAULT_CONFLICT, AwsError, error_code, translate
from taskapi.errors import Conflict, NotFound, Retryable, TaskApiError
from taskapi.models.domain import isoformat, utc_now
from taskapi.models.limits import ACCOUNT_ID_PATTERN

KEY_PREFIX = "tk"
METERING_PREFIX = "meter"
ENROLMENT_PREFIX = "account#"
"""key_id of an account's enrolment item: "account#<account_id>" (a key id is 16 hex digits)."""
LEGACY_PLAN = "free"
"""The plan of a key stored before keys had plans."""
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)
_BATCH_GET_LIMIT = 100
_BATCH_GET_ATTEMPTS = 5
_UNAVAILABLE = "The API key store did not answer; retry the request"

KeyState = Literal["active", "expiring", "revoked"]


def parse_time(value: str) -> datetime:
    """The inverse of taskapi.models.domain.isoformat."""
    return datetime.fromisoformat(value)


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    account_id: str
    key_hash: str
    created_at: str
    revoked_at: str | None = None
    """When the key stops working: now for a revoke, later for a rotation's grace period."""
    plan: str = LEGACY_PLAN
    gateway_key_id: str | None = None
    """Its API Gateway API key (same value, attached to the plan's usage plan); None once deleted."""
    role: Role = TENANT
    """What the key may do: tenant (its account's tasks) or operator (also every tenant's queues)."""

    @property
    def display_prefix(self) -> str:
        """The non-secret beginning of the key: enough to name it in logs and CLIs."""
        return f"{KEY_PREFIX}.{self.account_id}.{self.key_id}"

    def is_revoked(self, now: datetime | None = None) -> bool:
        """The one revocation rule: revoked once revoked_at is at or before `now` (default: the
        current time). A revoked_at in the future is a rotation's grace period: still valid."""
        return self.revoked_at is not None and parse_time(self.revoked_at) <= (now or utc_now())

    def state(self, now: datetime | None = None) -> KeyState:
        if self.revoked_at is None:
            return "active"
        return "revoked" if self.is_revoked(now) else "expiring"


@dataclass(frozen=True)
class AccountEnrolment:
    """An account's bearer-token metering: the authorizer answers `metering_key` as the
    usageIdentifierKey of the account's bearer-token requests, which meters them on `plan`.
    The metering key is only an API Gateway usage identifier, never a credential to the API."""

    account_id: str
    plan: str
    metering_key: str
    gateway_key_id: str | None
    created_at: str
    updated_at: str

    @property
    def item_key(self) -> str:
        return enrolment_key(self.account_id)


@dataclass(frozen=True)
class ParsedKey:
    account_id: str
    key_id: str


def enrolment_key(account_id: str) -> str:
    return f"{ENROLMENT_PREFIX}{account_id}"


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


def check_account_id(account_id: str) -> None:
    if not _ACCOUNT.match(account_id):
        raise ValueError(f"account id {account_id!r} must match {ACCOUNT_ID_PATTERN}")


def generate_key(account_id: str, plan: str = LEGACY_PLAN, role: Role = TENANT) -> tuple[str, ApiKeyRecord]:
    check_account_id(account_id)
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}.{account_id}.{key_id}.{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(
        key_id=key_id,
        account_id=account_id,
        key_hash=hash_key(key),
        created_at=isoformat(utc_now()),
        plan=plan,
        role=role,
    )
    return key, record


def generate_metering_key(account_id: str) -> str:
    """A random API Gateway key value for an account's bearer-token traffic. It does not parse
    as an API key ("meter." rather than "tk."), so presenting it to the API proves nothing."""
    check_account_id(account_id)
    return f"{METERING_PREFIX}.{account_id}.{secrets.token_urlsafe(32)}"


def key_matches(key: str, record: ApiKeyRecord, parsed: ParsedKey) -> bool:
    return record.account_id == parsed.account_id and hmac.compare_digest(hash_key(key), record.key_hash)


def _store_error(exc: AwsError, conflict: str = DEFAULT_CONFLICT) -> TaskApiError:
    return translate(exc, service="DynamoDB", unavailable=_UNAVAILABLE, conflict=conflict)


class ApiKeyStore(Protocol):
    def put(self, record: ApiKeyRecord) -> None: ...

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def revoke(self, key_id: str, at: datetime | None = None) -> ApiKeyRecord:
        """Set revoked_at to `at` (default now) unless it is set to an earlier moment already;
        answers the record as stored. NotFound for an unknown key."""
        ...

    def clear_gateway_key(self, key_id: str) -> ApiKeyRecord:
        """Forget the record's gateway_key_id (its API Gateway key has been deleted)."""
        ...

    def list_account(self, account_id: str) -> list[ApiKeyRecord]:
        """Every key of the account (revoked ones too), oldest first; never enrolments."""
        ...

    def get_account(self, account_id: str) -> AccountEnrolment | None: ...

    def put_account(self, enrolment: AccountEnrolment, expected_plan: str | None = None) -> None:
        """Write an enrolment: a new one (expected_plan None; Conflict if the account has one) or
        a change of one whose stored plan is `expected_plan` (Conflict otherwise)."""
        ...


def _earlier(current: str | None, candidate: str) -> str:
    if current is not None and parse_time(current) <= parse_time(candidate):
        return current
    return candidate


def _by_creation(records: list[ApiKeyRecord]) -> list[ApiKeyRecord]:
    return sorted(records, key=lambda record: (record.created_at, record.key_id))


class InMemoryApiKeyStore:
    def __init__(self) -> None:
        self._records: dict[str, ApiKeyRecord] = {}
        self._accounts: dict[str, AccountEnrolment] = {}
        self._lock = threading.Lock()

    def put(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self._records[record.key_id] = record

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._records.get(key_id)

    def _update(self, key_id: str, **changes: Any) -> ApiKeyRecord:
        record = self._records.get(key_id)
        if record is None:
            raise NotFound(f"API key {key_id} not found")
        record = replace(record, **changes)
        self._records[key_id] = record
        return record

    def revoke(self, key_id: str, at: datetime | None = None) -> ApiKeyRecord:
        with self._lock:
            record = self._records.get(key_id)
            if record is None:
                raise NotFound(f"API key {key_id} not found")
            return self._update(key_id, revoked_at=_earlier(record.revoked_at, isoformat(at or utc_now())))

    def clear_gateway_key(self, key_id: str) -> ApiKeyRecord:
        with self._lock:
            return self._update(key_id, gateway_key_id=None)

    def list_account(self, account_id: str) -> list[ApiKeyRecord]:
        with self._lock:
            return _by_creation([r for r in self._records.values() if r.account_id == account_id])

    def get_account(self, account_id: str) -> AccountEnrolment | None:
        return self._accounts.get(account_id)

    def put_account(self, enrolment: AccountEnrolment, expected_plan: str | None = None) -> None:
        with self._lock:
            current = self._accounts.get(enrolment.account_id)
            stored_plan = current.plan if current else None
            if stored_plan != expected_plan:
                raise Conflict(
                    f"account {enrolment.account_id}'s enrolment changed meanwhile "
                    f"(plan {stored_plan or 'none'}, expected {expected_plan or 'none'}); retry"
                )
            self._accounts[enrolment.account_id] = enrolment


def _record_item(record: ApiKeyRecord) -> dict[str, Any]:
    item = {
        "key_id": {"S": record.key_id},
        "account_id": {"S": record.account_id},
        "key_hash": {"S": record.key_hash},
        "created_at": {"S": record.created_at},
        "plan": {"S": record.plan},
        "role": {"S": record.role},
    }
    if record.revoked_at is not None:
        item["revoked_at"] = {"S": record.revoked_at}
    if record.gateway_key_id is not None:
        item["gateway_key_id"] = {"S": record.gateway_key_id}
    return item


def _record_from(item: dict[str, Any]) -> ApiKeyRecord:
    """Items written before plans existed have no plan (free) and no gateway key; before roles,
    no role (tenant). An unknown role is read as tenant: never more than the record says."""
    role = item.get("role", {}).get("S")
    return ApiKeyRecord(
        key_id=item["key_id"]["S"],
        account_id=item["account_id"]["S"],
        key_hash=item["key_hash"]["S"],
        created_at=item["created_at"]["S"],
        revoked_at=item.get("revoked_at", {}).get("S"),
        plan=item.get("plan", {}).get("S", LEGACY_PLAN),
        gateway_key_id=item.get("gateway_key_id", {}).get("S"),
        role="operator" if role == "operator" else TENANT,
    )


def _enrolment_item(enrolment: AccountEnrolment) -> dict[str, Any]:
    item = {
        "key_id": {"S": enrolment.item_key},
        "account_id": {"S": enrolment.account_id},
        "plan": {"S": enrolment.plan},
        "metering_key": {"S": enrolment.metering_key},
        "created_at": {"S": enrolment.created_at},
        "updated_at": {"S": enrolment.updated_at},
    }
    if enrolment.gateway_key_id is not None:
        item["gateway_key_id"] = {"S": enrolment.gateway_key_id}
    return item


def _enrolment_from(item: dict[str, Any]) -> AccountEnrolment:
    return AccountEnrolment(
        account_id=item["account_id"]["S"],
        plan=item["plan"]["S"],
        metering_key=item["metering_key"]["S"],
        gateway_key_id=item.get("gateway_key_id", {}).get("S"),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
    )


class DynamoApiKeyStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, record: ApiKeyRecord) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_record_item(record),
                ConditionExpression="attribute_not_exists(key_id)",
            )
        except AWS_ERRORS as exc:
            raise _store_error(exc, conflict=f"API key {record.key_id} already exists") from exc

    def _get_item(self, key: str) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] | None = self._client.get_item(TableName=self._table, Key={"key_id": {"S": key}}).get(
                "Item"
            )
        except AWS_ERRORS as exc:
            raise _store_error(exc) from exc
        return item

    def get(self, key_id: str) -> ApiKeyRecord | None:
        if key_id.startswith(ENROLMENT_PREFIX):
            return None
        item = self._get_item(key_id)
        return _record_from(item) if item is not None and "key_hash" in item else None

    def _update_key(
        self, key_id: str, expression: str, condition: str, values: dict[str, Any] | None = None
    ) -> ApiKeyRecord | None:
        """Update a key record; None when the condition failed (no such key, or `condition`)."""
        extra = {"ExpressionAttributeValues": values} if values else {}
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                **extra,
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise _store_error(exc) from exc
        return _record_from(answer["Attributes"])

    def revoke(self, key_id: str, at: datetime | None = None) -> ApiKeyRecord:
        # ISO 8601 UTC text sorts in time order, so the condition keeps an earlier revoked_at.
        record = self._update_key(
            key_id,
            "SET revoked_at = :at",
            "attribute_exists(key_hash) AND (attribute_not_exists(revoked_at) OR revoked_at > :at)",
            {":at": {"S": isoformat(at or utc_now())}},
        )
        if record is None:  # unknown, or revoked at an earlier moment already
            record = self.get(key_id)
        if record is None:
            raise NotFound(f"API key {key_id} not found")
        return record

    def clear_gateway_key(self, key_id: str) -> ApiKeyRecord:
        record = self._update_key(key_id, "REMOVE gateway_key_id", "attribute_exists(key_hash)")
        if record is None:
            raise NotFound(f"API key {key_id} not found")
        return record

    def list_account(self, account_id: str) -> list[ApiKeyRecord]:
        """The by_account index (keys only), then the records by BatchGetItem."""
        key_ids: list[str] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_account",
            "KeyConditionExpression": "account_id = :account",
            "ExpressionAttributeValues": {":account": {"S": account_id}},
        }
        try:
            while True:
                page = self._client.query(**query)
                key_ids += [
                    item["key_id"]["S"]
                    for item in page.get("Items", [])
                    if not item["key_id"]["S"].startswith(ENROLMENT_PREFIX)
                ]
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except AWS_ERRORS as exc:
            raise _store_error(exc) from exc
        records: list[ApiKeyRecord] = []
        for start in range(0, len(key_ids), _BATCH_GET_LIMIT):
            records += self._batch_get(key_ids[start : start + _BATCH_GET_LIMIT])
        return _by_creation([record for record in records if record.account_id == account_id])

    def _batch_get(self, key_ids: list[str]) -> list[ApiKeyRecord]:
        request: dict[str, Any] = {self._table: {"Keys": [{"key_id": {"S": key_id}} for key_id in key_ids]}}
        records: list[ApiKeyRecord] = []
        for attempt in range(_BATCH_GET_ATTEMPTS):
            try:
                answer = self._client.batch_get_item(RequestItems=request)
            except AWS_ERRORS as exc:
                raise _store_error(exc) from exc
            records += [_record_from(item) for item in answer.get("Responses", {}).get(self._table, [])]
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return records
            time.sleep(0.05 * 2**attempt)
        raise Retryable(_UNAVAILABLE)

    def get_account(self, account_id: str) -> AccountEnrolment | None:
        item = self._get_item(enrolment_key(account_id))
        return _enrolment_from(item) if item is not None else None

    def put_account(self, enrolment: AccountEnrolment, expected_plan: str | None = None) -> None:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(key_id)"}
            if expected_plan is None
            else {
                "ConditionExpression": "#plan = :expected",
                "ExpressionAttributeNames": {"#plan": "plan"},
                "ExpressionAttributeValues": {":expected": {"S": expected_plan}},
            }
        )
        try:
            self._client.put_item(TableName=self._table, Item=_enrolment_item(enrolment), **condition)
        except AWS_ERRORS as exc:
            raise _store_error(
                exc,
                conflict=f"account {enrolment.account_id}'s enrolment changed meanwhile "
                f"(expected plan {expected_plan or 'none'}); retry",
            ) from exc
