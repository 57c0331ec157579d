"""The key lifecycle (taskapi.services.keys) on the in-memory store and usage plans: every key
has an API Gateway twin with the same value on its plan, and no step leaves half of a key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from taskapi.auth.api_keys import (
    LEGACY_PLAN,
    AccountEnrolment,
    ApiKeyRecord,
    InMemoryApiKeyStore,
    generate_key,
    hash_key,
    parse_key,
)
from taskapi.auth.gateway import InMemoryUsagePlans
from taskapi.auth.identity import authenticate_api_key
from taskapi.errors import Conflict, InvalidRequest, NotFound, Retryable, Unauthenticated
from taskapi.models.domain import isoformat
from taskapi.services import keys as service
from tests.fakes import Clock

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store() -> InMemoryApiKeyStore:
    return InMemoryApiKeyStore()


@pytest.fixture
def gateway() -> InMemoryUsagePlans:
    return InMemoryUsagePlans()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


class FailingPuts(InMemoryApiKeyStore):
    def put(self, record: ApiKeyRecord) -> None:
        raise Retryable("The API key store did not answer; retry the request")


# ------------------------------------------------------------------ the record
def test_is_revoked_is_the_one_rule_a_future_revoked_at_is_a_grace_period():
    _, record = generate_key("acme")
    assert not record.is_revoked(START)
    assert record.state(START) == "active"
    later = replace(record, revoked_at=isoformat(START.replace(hour=13)))
    assert not later.is_revoked(START)
    assert later.state(START) == "expiring"
    assert later.is_revoked(START.replace(hour=13))  # at revoked_at exactly: revoked
    assert later.state(START.replace(hour=14)) == "revoked"
    assert replace(record, revoked_at=isoformat(START)).is_revoked()  # default: now


def test_a_record_without_a_plan_is_on_the_free_plan():
    record = ApiKeyRecord(key_id="0" * 16, account_id="acme", key_hash="h", created_at=isoformat(START))
    assert (record.plan, record.gateway_key_id) == (LEGACY_PLAN, None) == ("free", None)


# ------------------------------------------------------------------ create
def test_create_registers_the_same_value_on_the_plan_then_stores_only_the_hash(store, gateway, clock):
    key, record = service.create_key(store, gateway, "acme", "standard", clock=clock)
    assert parse_key(key) is not None
    assert record.plan == "standard"
    assert record.created_at == isoformat(START)
    assert record.gateway_key_id is not None
    assert gateway.value_of(record.gateway_key_id) == key
    assert gateway.plan_of(record.gateway_key_id) == "standard"
    assert gateway.keys[record.gateway_key_id].name == record.display_prefix
    stored = store.get(record.key_id)
    assert stored == record
    assert stored.key_hash == hash_key(key)
    assert key not in repr(stored)
    principal = authenticate_api_key(key, store)
    assert principal.account_id == "acme"


def test_a_failing_record_write_removes_the_gateway_key(gateway):
    store = FailingPuts()
    with pytest.raises(Retryable):
        service.create_key(store, gateway, "acme", "free")
    metering = store.get_account("acme")
    assert metering is not None  # the enrolment came first and is whole
    assert set(gateway.keys) == {metering.gateway_key_id}
    assert gateway.attached["free"] == {metering.gateway_key_id}


def test_a_failing_gateway_makes_nothing(store):
    gateway = InMemoryUsagePlans(plans=("free",))  # no standard usage plan at this endpoint
    with pytest.raises(NotFound, match="usage plan standard does not exist"):
        service.create_key(store, gateway, "acme", "standard")
    assert store.list_account("acme") == []
    assert store.get_account("acme") is None
    assert gateway.keys == {}


def test_an_unknown_plan_names_the_plans(store, gateway):
    with pytest.raises(InvalidRequest, match="unknown plan 'gold': the plans are free, standard, enterprise"):
        service.create_key(store, gateway, "acme", "gold")
    assert gateway.keys == {}


def test_a_bad_account_id_is_refused(store, gateway):
    with pytest.raises(InvalidRequest, match="account id"):
        service.create_key(store, gateway, "a.b", "free")
    assert gateway.keys == {}


# ------------------------------------------------------------------ enrolment
def test_the_first_key_enrols_the_account_on_its_plan_with_a_metering_key(store, gateway, clock):
    key, _ = service.create_key(store, gateway, "acme", "standard", clock=clock)
    enrolment = store.get_account("acme")
    assert isinstance(enrolment, AccountEnrolment)
    assert enrolment.plan == "standard"
    assert enrolment.created_at == enrolment.updated_at == isoformat(START)
    assert enrolment.metering_key != key
    assert gateway.value_of(enrolment.gateway_key_id) == enrolment.metering_key
    assert gateway.plan_of(enrolment.gateway_key_id) == "standard"
    assert parse_key(enrolment.metering_key) is None  # not a credential
    with pytest.raises(Unauthenticated):
        authenticate_api_key(enrolment.metering_key, store)


def test_a_key_on_another_plan_leaves_the_enrolment_where_it_is(store, gateway):
    service.create_key(store, gateway, "acme", "free")
    enrolment = store.get_account("acme")
    _, record = service.create_key(store, gateway, "acme", "enterprise")
    assert store.get_account("acme") == enrolment
    assert gateway.plan_of(record.gateway_key_id) == "enterprise"
    assert gateway.plan_of(enrolment.gateway_key_id) == "free"


def test_enrol_creates_moves_and_is_idempotent(store, gateway, clock):
    created = service.enrol_account(store, gateway, "acme", "free", clock=clock)
    assert service.enrol_account(store, gateway, "acme", "free", clock=clock) == created
    clock.advance(minutes=5)
    moved = service.enrol_account(store, gateway, "acme", "enterprise", clock=clock)
    assert (moved.plan, moved.metering_key, moved.gateway_key_id) == (
        "enterprise",
        created.metering_key,
        created.gateway_key_id,
    )
    assert moved.created_at == isoformat(START)
    assert moved.updated_at == isoformat(clock.now)
    assert store.get_account("acme") == moved
    assert gateway.plan_of(moved.gateway_key_id) == "enterprise"
    assert len(gateway.keys) == 1


def test_enrolment_items_are_never_listed_as_keys(store, gateway):
    service.enrol_account(store, gateway, "acme", "free")
    assert service.list_keys(store, "acme") == []


def test_a_move_whose_record_write_fails_puts_the_gateway_key_back(store, gateway):
    enrolment = service.enrol_account(store, gateway, "acme", "free")

    def refuse(*_args, **_kwargs):
        raise Retryable("The API key store did not answer; retry the request")

    store.put_account = refuse  # type: ignore[method-assign]
    with pytest.raises(Retryable):
        service.enrol_account(store, gateway, "acme", "standard")
    assert gateway.plan_of(enrolment.gateway_key_id) == "free"
    assert store.get_account("acme") == enrolment


def test_a_lost_enrolment_race_deletes_the_losers_metering_key(store, gateway):
    winner = AccountEnrolment("acme", "standard", "meter.acme." + "w" * 43, "gk-winner", "t0", "t0")
    real_get = store.get_account
    calls = []

    def stale_then_real(account_id):
        calls.append(account_id)
        if len(calls) == 1:  # our first read sees no enrolment; then another writer stores one
            store._accounts["acme"] = winner
            return None
        return real_get(account_id)

    store.get_account = stale_then_real  # type: ignore[method-assign]
    assert service.enrol_account(store, gateway, "acme", "standard") == winner
    assert gateway.keys == {}  # our metering key was registered, then withdrawn


# ------------------------------------------------------------------ list
def test_list_answers_the_accounts_keys_oldest_first(store, gateway, clock):
    _, first = service.create_key(store, gateway, "acme", "free", clock=clock)
    clock.advance(seconds=1)
    _, second = service.create_key(store, gateway, "acme", "standard", clock=clock)
    service.create_key(store, gateway, "other", "free", clock=clock)
    assert [r.key_id for r in service.list_keys(store, "acme")] == [first.key_id, second.key_id]


# ------------------------------------------------------------------ revoke
def test_revoke_keeps_the_record_and_deletes_the_gateway_key(store, gateway, clock):
    key, record = service.create_key(store, gateway, "acme", "free", clock=clock)
    clock.advance(minutes=1)
    revoked = service.revoke_key(store, gateway, record.display_prefix, clock=clock)
    assert revoked.revoked_at == isoformat(clock.now)
    assert revoked.gateway_key_id is None
    assert record.gateway_key_id not in gateway.keys
    assert store.get(record.key_id) == revoked
    with pytest.raises(Unauthenticated, match="API key has been revoked"):
        authenticate_api_key(key, store)


def test_revoking_twice_keeps_the_first_moment(store, gateway, clock):
    _, record = service.create_key(store, gateway, "acme", "free", clock=clock)
    first = service.revoke_key(store, gateway, record.key_id, clock=clock)
    clock.advance(hours=1)
    assert service.revoke_key(store, gateway, record.key_id, clock=clock).revoked_at == first.revoked_at


def test_revoking_an_unknown_key_is_not_found(store, gateway):
    with pytest.raises(NotFound):
        service.revoke_key(store, gateway, "0123456789abcdef")
    with pytest.raises(NotFound, match="names no API key"):
        service.revoke_key(store, gateway, "account#acme")


# ------------------------------------------------------------------ rotate
def test_rotate_without_grace_revokes_the_old_key_at_once(store, gateway, clock):
    old_key, old = service.create_key(store, gateway, "acme", "standard", clock=clock)
    rotation = service.rotate_key(store, gateway, old_key, clock=clock)
    assert rotation.record.account_id == "acme"
    assert rotation.record.plan == "standard"
    assert rotation.record.key_id != old.key_id
    assert gateway.value_of(rotation.record.gateway_key_id) == rotation.key
    assert gateway.plan_of(rotation.record.gateway_key_id) == "standard"
    assert rotation.old.revoked_at == isoformat(START)
    assert rotation.old.gateway_key_id is None
    assert old.gateway_key_id not in gateway.keys
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticate_api_key(old_key, store)
    assert authenticate_api_key(rotation.key, store).plan == "standard"


def test_rotate_with_grace_keeps_the_old_key_working_until_the_grace_ends(store, gateway, clock, monkeypatch):
    old_key, old = service.create_key(store, gateway, "acme", "free", clock=clock)
    rotation = service.rotate_key(store, gateway, old.key_id, grace_seconds=600, clock=clock)
    assert rotation.old.revoked_at == isoformat(clock.now.replace(minute=10))
    assert rotation.old.gateway_key_id == old.gateway_key_id
    assert gateway.value_of(old.gateway_key_id) == old_key  # still metered during the grace

    # identity applies record.is_revoked at the current time: make that our clock's
    monkeypatch.setattr("taskapi.auth.identity.utc_now", clock, raising=False)
    monkeypatch.setattr("taskapi.auth.api_keys.utc_now", clock)
    stored = store.get(old.key_id)
    clock.advance(seconds=599)
    assert not stored.is_revoked(clock.now)
    assert authenticate_api_key(old_key, store).account_id == "acme"
    assert service.purge_expired(store, gateway, "acme", clock=clock) == []  # grace not over
    clock.advance(seconds=1)
    assert stored.is_revoked(clock.now)
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticate_api_key(old_key, store)

    assert service.awaiting_purge(service.list_keys(store, "acme"), clock.now) == [stored]
    (purged,) = service.purge_expired(store, gateway, "acme", clock=clock)
    assert purged.key_id == old.key_id
    assert purged.gateway_key_id is None
    assert old.gateway_key_id not in gateway.keys
    assert gateway.value_of(rotation.record.gateway_key_id) == rotation.key
    assert service.purge_expired(store, gateway, "acme", clock=clock) == []


def test_revoking_a_key_in_its_grace_period_ends_it_now(store, gateway, clock):
    _, old = service.create_key(store, gateway, "acme", "free", clock=clock)
    service.rotate_key(store, gateway, old.key_id, grace_seconds=3600, clock=clock)
    clock.advance(minutes=1)
    revoked = service.revoke_key(store, gateway, old.key_id, clock=clock)
    assert revoked.revoked_at == isoformat(clock.now)
    assert revoked.is_revoked(clock.now)
    assert old.gateway_key_id not in gateway.keys


def test_a_revoked_key_cannot_be_rotated(store, gateway, clock):
    _, old = service.create_key(store, gateway, "acme", "free", clock=clock)
    service.revoke_key(store, gateway, old.key_id, clock=clock)
    with pytest.raises(Conflict, match="revoked already"):
        service.rotate_key(store, gateway, old.key_id, clock=clock)


def test_a_grace_period_out_of_bounds_is_refused(store, gateway):
    _, old = service.create_key(store, gateway, "acme", "free")
    for grace in (-1, service.MAX_GRACE_SECONDS + 1):
        with pytest.raises(InvalidRequest, match="grace period"):
            service.rotate_key(store, gateway, old.key_id, grace_seconds=grace)


def test_a_rotation_whose_old_key_cannot_be_revoked_withdraws_the_new_key(store, gateway, clock):
    _, old = service.create_key(store, gateway, "acme", "free", clock=clock)
    real_revoke = store.revoke

    def revoke(key_id, at=None):
        if key_id == old.key_id:
            raise Retryable("The API key store did not answer; retry the request")
        return real_revoke(key_id, at)

    store.revoke = revoke  # type: ignore[method-assign]
    with pytest.raises(Retryable):
        service.rotate_key(store, gateway, old.key_id, clock=clock)
    (withdrawn,) = [r for r in store.list_account("acme") if r.key_id != old.key_id]
    assert withdrawn.is_revoked(clock.now)
    assert withdrawn.gateway_key_id is None
    assert store.get(old.key_id).revoked_at is None
    assert gateway.plan_of(old.gateway_key_id) == "free"
