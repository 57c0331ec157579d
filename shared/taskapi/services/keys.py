"""The lifecycle of API keys and account enrolments, on both sides: our table (hash, plan,
revocation) and API Gateway (a key with the same value on the plan's usage plan, which is what
API Gateway meters once the authorizer names it). Each step leaves nothing half-made.

- create_key: enrols the account first if it has no enrolment (on the key's plan); an account
  enrolled on another plan stays there: its bearer-token traffic is metered apart from its keys,
  and only enrol_account moves it.
- revoke_key: revoked_at = now (the record stays, so the key answers "API key has been revoked"),
  then its API Gateway key is deleted.
- rotate_key: a new key on the same account, plan and role; the old one is revoked `grace_seconds`
  from now. With no grace its API Gateway key goes at once; with a grace period it stays until
  purge_expired (or revoke_key) runs after the grace has ended. Until then API Gateway keeps it,
  but the authorizer refuses the key (ApiKeyRecord.is_revoked), so it only occupies a slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from taskapi.auth.api_keys import (
    AccountEnrolment,
    ApiKeyRecord,
    ApiKeyStore,
    check_account_id,
    generate_key,
    generate_metering_key,
    key_id_from_reference,
)
from taskapi.auth.gateway import UsagePlanGateway, check_plan
from taskapi.auth.principal import ROLES, TENANT, Role
from taskapi.errors import Conflict, InvalidRequest, NotFound
from taskapi.models.domain import isoformat, utc_now

Clock = Callable[[], datetime]
MAX_GRACE_SECONDS = 30 * 86_400
_ENROLMENT_ATTEMPTS = 3


@dataclass(frozen=True)
class Rotation:
    key: str
    """The new key: shown once, never stored."""
    record: ApiKeyRecord
    old: ApiKeyRecord
    """The old key as stored after the rotation (revoked_at = the end of its grace period)."""


def _account(account_id: str) -> str:
    try:
        check_account_id(account_id)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return account_id


def _undo(exc: BaseException, what: str, action: Callable[[], object]) -> None:
    """Run a compensating action; if it fails too, say so on the original exception."""
    try:
        action()
    except Exception as undo_failure:
        exc.add_note(f"{what} failed as well ({undo_failure}); it needs removing by hand")


def _issue(
    store: ApiKeyStore, gateway: UsagePlanGateway, account_id: str, plan: str, now: datetime, role: Role = TENANT
) -> tuple[str, ApiKeyRecord]:
    """API Gateway key first (same value, on the plan), then our hashed record."""
    key, record = generate_key(account_id, plan, role)
    record = replace(record, created_at=isoformat(now))
    gateway_key_id = gateway.register_key(record.display_prefix, key, plan)
    record = replace(record, gateway_key_id=gateway_key_id)
    try:
        store.put(record)
    except Exception as exc:
        _undo(exc, f"deleting API Gateway key {gateway_key_id}", lambda: gateway.delete_key(gateway_key_id))
        raise
    return key, record


def create_key(
    store: ApiKeyStore,
    gateway: UsagePlanGateway,
    account_id: str,
    plan: str,
    *,
    role: Role = TENANT,
    clock: Clock = utc_now,
) -> tuple[str, ApiKeyRecord]:
    """A new key on `plan` with `role`; answers the key (shown once) and its record. Enrols the
    account on the same plan if it has no enrolment yet (an existing enrolment is left as it is)."""
    check_plan(plan)
    _account(account_id)
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}: the roles are {', '.join(ROLES)}")
    if store.get_account(account_id) is None:
        enrol_account(store, gateway, account_id, plan, clock=clock)
    return _issue(store, gateway, account_id, plan, clock(), role)


class _LostRace(Exception):
    """Another writer changed the enrolment between our read and our write."""


def enrol_account(
    store: ApiKeyStore, gateway: UsagePlanGateway, account_id: str, plan: str, *, clock: Clock = utc_now
) -> AccountEnrolment:
    """Create the account's enrolment on `plan` (a new metering key on its usage plan), or move
    an existing one there (same metering key, other usage plan). Idempotent."""
    check_plan(plan)
    _account(account_id)
    for _ in range(_ENROLMENT_ATTEMPTS):
        current = store.get_account(account_id)
        try:
            if current is None:
                return _new_enrolment(store, gateway, account_id, plan, clock())
            if current.gateway_key_id is None:
                return _new_enrolment(store, gateway, account_id, plan, clock(), replacing=current)
            if current.plan == plan:
                return current
            return _move_enrolment(store, gateway, current, plan, clock())
        except _LostRace:
            continue
    raise Conflict(f"account {account_id}'s enrolment kept changing while it was being written; retry")


def _new_enrolment(
    store: ApiKeyStore,
    gateway: UsagePlanGateway,
    account_id: str,
    plan: str,
    now: datetime,
    replacing: AccountEnrolment | None = None,
) -> AccountEnrolment:
    metering_key = replacing.metering_key if replacing else generate_metering_key(account_id)
    gateway_key_id = gateway.register_key(f"meter.{account_id}", metering_key, plan)
    enrolment = AccountEnrolment(
        account_id=account_id,
        plan=plan,
        metering_key=metering_key,
        gateway_key_id=gateway_key_id,
        created_at=replacing.created_at if replacing else isoformat(now),
        updated_at=isoformat(now),
    )
    try:
        store.put_account(enrolment, expected_plan=replacing.plan if replacing else None)
    except Exception as exc:
        _undo(exc, f"deleting API Gateway key {gateway_key_id}", lambda: gateway.delete_key(gateway_key_id))
        if isinstance(exc, Conflict):
            raise _LostRace from exc
        raise
    return enrolment


def _move_enrolment(
    store: ApiKeyStore, gateway: UsagePlanGateway, current: AccountEnrolment, plan: str, now: datetime
) -> AccountEnrolment:
    assert current.gateway_key_id is not None
    gateway_key_id = current.gateway_key_id
    gateway.move_key(gateway_key_id, current.plan, plan)
    moved = replace(current, plan=plan, updated_at=isoformat(now))
    try:
        store.put_account(moved, expected_plan=current.plan)
    except Conflict as exc:
        # Someone else wrote the enrolment: the next attempt re-reads it and moves the key again.
        raise _LostRace from exc
    except Exception as exc:
        _undo(
            exc,
            f"moving API Gateway key {gateway_key_id} back to plan {current.plan}",
            lambda: gateway.move_key(gateway_key_id, plan, current.plan),
        )
        raise
    return moved


def list_keys(store: ApiKeyStore, account_id: str) -> list[ApiKeyRecord]:
    """Every key of the account, revoked ones too, oldest first (records hold no secret)."""
    return store.list_account(_account(account_id))


def _retire_gateway_key(store: ApiKeyStore, gateway: UsagePlanGateway, record: ApiKeyRecord) -> ApiKeyRecord:
    if record.gateway_key_id is None:
        return record
    gateway.delete_key(record.gateway_key_id)
    return store.clear_gateway_key(record.key_id)


def revoke_key(store: ApiKeyStore, gateway: UsagePlanGateway, key_ref: str, *, clock: Clock = utc_now) -> ApiKeyRecord:
    """Revoke now (an earlier revocation stands) and delete the key's API Gateway key. The record
    is revoked first, so a failure on API Gateway leaves a refused key; running it again finishes."""
    record = store.revoke(key_id_from_reference(key_ref), at=clock())
    return _retire_gateway_key(store, gateway, record)


def rotate_key(
    store: ApiKeyStore,
    gateway: UsagePlanGateway,
    key_ref: str,
    grace_seconds: int = 0,
    *,
    clock: Clock = utc_now,
) -> Rotation:
    """A new key for the old key's account and plan; the old key stops working grace_seconds from
    now. If the old key cannot be scheduled for revocation, the new key is withdrawn again."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidRequest(f"the grace period must be between 0 and {MAX_GRACE_SECONDS} seconds")
    key_id = key_id_from_reference(key_ref)
    old = store.get(key_id)
    if old is None:
        raise NotFound(f"API key {key_id} not found")
    now = clock()
    if old.is_revoked(now):
        raise Conflict(f"API key {old.display_prefix} is revoked already; create a new key instead")
    key, record = _issue(store, gateway, old.account_id, old.plan, now, old.role)
    try:
        old = store.revoke(old.key_id, at=now + timedelta(seconds=grace_seconds))
    except Exception as exc:
        _undo(
            exc,
            f"withdrawing the new key {record.display_prefix}",
            lambda: revoke_key(store, gateway, record.key_id, clock=clock),
        )
        raise
    if old.is_revoked(now):
        old = _retire_gateway_key(store, gateway, old)
    return Rotation(key=key, record=record, old=old)


def awaiting_purge(records: list[ApiKeyRecord], now: datetime | None = None) -> list[ApiKeyRecord]:
    """Revoked keys whose API Gateway key is still there (purge_expired removes them)."""
    return [record for record in records if record.gateway_key_id is not None and record.is_revoked(now)]


def purge_expired(
    store: ApiKeyStore, gateway: UsagePlanGateway, account_id: str, *, clock: Clock = utc_now
) -> list[ApiKeyRecord]:
    """Delete the API Gateway keys of the account's keys whose revocation has taken effect (a
    rotation's grace period has ended); answers those records as they are now."""
    expired = awaiting_purge(list_keys(store, account_id), clock())
    return [_retire_gateway_key(store, gateway, record) for record in expired]
