"""DynamoApiKeyStore on moto with ApiKeysTable from template.yaml: plans, gateway keys, future
revocations, listing by account (by_account index, then BatchGetItem) and account enrolments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from taskapi.auth.api_keys import AccountEnrolment, generate_key, hash_key
from taskapi.errors import Conflict, NotFound
from taskapi.models.domain import isoformat

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def enrolment(account_id: str = "acme", plan: str = "free") -> AccountEnrolment:
    stamp = isoformat(NOW)
    return AccountEnrolment(account_id, plan, f"meter.{account_id}." + "m" * 43, "gk123", stamp, stamp)


def test_new_attributes_round_trip(key_store):
    _, record = generate_key("acme", "enterprise")
    record = replace(record, gateway_key_id="abc123")
    key_store.put(record)
    assert key_store.get(record.key_id) == record


def test_an_item_written_before_plans_reads_as_a_free_key_without_gateway_key(key_store, dynamodb, aws_env):
    key, _ = generate_key("acme")
    key_id = key.split(".")[2]
    dynamodb.put_item(
        TableName=aws_env["ApiKeysTable"],
        Item={
            "key_id": {"S": key_id},
            "account_id": {"S": "acme"},
            "key_hash": {"S": hash_key(key)},
            "created_at": {"S": "2025-01-01T00:00:00.000000Z"},
        },
    )
    record = key_store.get(key_id)
    assert (record.plan, record.gateway_key_id, record.revoked_at) == ("free", None, None)
    assert key_store.list_account("acme") == [record]
    revoked = key_store.revoke(key_id, at=NOW)
    assert revoked.revoked_at == isoformat(NOW)
    assert revoked.plan == "free"


def test_revoke_sets_a_moment_and_an_earlier_one_stands(key_store):
    _, record = generate_key("acme")
    key_store.put(record)
    later = key_store.revoke(record.key_id, at=NOW + timedelta(hours=1))
    assert later.revoked_at == isoformat(NOW + timedelta(hours=1))
    assert not later.is_revoked(NOW)
    sooner = key_store.revoke(record.key_id, at=NOW)
    assert sooner.revoked_at == isoformat(NOW)
    assert key_store.revoke(record.key_id, at=NOW + timedelta(days=1)).revoked_at == isoformat(NOW)
    assert key_store.get(record.key_id).is_revoked(NOW)


def test_revoke_and_clear_of_unknown_keys_are_not_found(key_store):
    key_store.put_account(enrolment())
    for key_id in ("0123456789abcdef", "account#acme"):
        with pytest.raises(NotFound):
            key_store.revoke(key_id)
        with pytest.raises(NotFound):
            key_store.clear_gateway_key(key_id)
    assert key_store.get_account("acme") == enrolment()


def test_clear_gateway_key(key_store):
    _, record = generate_key("acme")
    key_store.put(replace(record, gateway_key_id="gw1"))
    assert key_store.clear_gateway_key(record.key_id).gateway_key_id is None
    assert key_store.get(record.key_id).gateway_key_id is None


def test_list_reads_only_the_accounts_keys_and_never_its_enrolment(key_store):
    mine = []
    for _ in range(105):  # more than one BatchGetItem
        _, record = generate_key("acme")
        key_store.put(record)
        mine.append(record)
    _, other = generate_key("acme-eu")
    key_store.put(other)
    key_store.put_account(enrolment("acme"))
    listed = key_store.list_account("acme")
    assert sorted(r.key_id for r in listed) == sorted(r.key_id for r in mine)
    assert [r.created_at for r in listed] == sorted(r.created_at for r in listed)
    assert key_store.list_account("nobody") == []


def test_enrolments_live_beside_the_keys_but_are_never_keys(key_store):
    assert key_store.get_account("acme") is None
    first = enrolment()
    key_store.put_account(first)
    assert key_store.get_account("acme") == first
    assert key_store.get("account#acme") is None
    with pytest.raises(Conflict):
        key_store.put_account(first)  # a new enrolment over an existing one
    moved = replace(first, plan="standard", updated_at=isoformat(NOW + timedelta(minutes=1)))
    with pytest.raises(Conflict):
        key_store.put_account(moved, expected_plan="enterprise")
    key_store.put_account(moved, expected_plan="free")
    assert key_store.get_account("acme") == moved
