"""The whole key lifecycle through `taskapi.cli.main` on moto: ApiKeysTable and the usage plans
as infra/provision.py builds them from template.yaml; API Gateway holds each key's exact value
on its plan, and loses it on revoke."""

from __future__ import annotations

import pytest

from taskapi import cli
from taskapi.auth.identity import authenticate_api_key
from taskapi.errors import Unauthenticated


@pytest.fixture
def apigateway(aws_env):
    from taskapi import aws

    return aws.client("apigateway")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_plan_keys(apigateway, plan: str) -> dict[str, str]:
    (usage_plan,) = [p for p in apigateway.get_usage_plans()["items"] if p["name"] == f"taskapi-local-{plan}"]
    return {k["id"]: k["value"] for k in apigateway.get_usage_plan_keys(usagePlanId=usage_plan["id"])["items"]}


def test_create_list_rotate_revoke_on_moto(capsys, apigateway, key_store):
    code, out, err = run(capsys, "keys", "create", "--account", "acme", "--plan", "standard")
    assert code == cli.EXIT_OK, err
    key = out.strip().splitlines()[-1]
    record = key_store.get(key.split(".")[2])
    assert record.plan == "standard"
    assert apigateway.get_api_key(apiKey=record.gateway_key_id, includeValue=True)["value"] == key
    enrolment = key_store.get_account("acme")
    assert usage_plan_keys(apigateway, "standard") == {
        record.gateway_key_id: key,
        enrolment.gateway_key_id: enrolment.metering_key,
    }
    assert authenticate_api_key(key, key_store).account_id == "acme"

    code, out, _ = run(capsys, "keys", "list", "--account", "acme")
    assert code == cli.EXIT_OK
    assert record.display_prefix in out
    assert key not in out
    assert key.rsplit(".", 1)[1] not in out

    code, out, err = run(capsys, "keys", "rotate", record.display_prefix, "--grace-seconds", "3600")
    assert code == cli.EXIT_OK, err
    new_key = out.strip().splitlines()[-1]
    new_record = key_store.get(new_key.split(".")[2])
    assert new_record.plan == "standard"
    assert usage_plan_keys(apigateway, "standard")[new_record.gateway_key_id] == new_key
    assert usage_plan_keys(apigateway, "standard")[record.gateway_key_id] == key  # the grace period
    assert authenticate_api_key(key, key_store).account_id == "acme"
    code, out, _ = run(capsys, "keys", "list", "--account", "acme")
    assert f"expires {key_store.get(record.key_id).revoked_at}" in out

    code, out, err = run(capsys, "keys", "revoke", key)
    assert code == cli.EXIT_OK, err
    assert key not in out
    assert record.gateway_key_id not in usage_plan_keys(apigateway, "standard")
    with pytest.raises(apigateway.exceptions.NotFoundException):
        apigateway.get_api_key(apiKey=record.gateway_key_id)
    with pytest.raises(Unauthenticated, match="API key has been revoked"):
        authenticate_api_key(key, key_store)

    code, out, err = run(capsys, "keys", "rotate", new_key)
    assert code == cli.EXIT_OK, err
    newest = out.strip().splitlines()[-1]
    assert set(usage_plan_keys(apigateway, "standard").values()) == {newest, enrolment.metering_key}


def test_enrol_moves_the_metering_key_between_usage_plans(capsys, apigateway, key_store):
    code, out, err = run(capsys, "accounts", "enrol", "--account", "acme", "--plan", "free")
    assert code == cli.EXIT_OK, err
    enrolment = key_store.get_account("acme")
    assert usage_plan_keys(apigateway, "free") == {enrolment.gateway_key_id: enrolment.metering_key}
    code, out, err = run(capsys, "accounts", "enrol", "--account", "acme", "--plan", "enterprise")
    assert code == cli.EXIT_OK, err
    assert "moved from plan free" in out
    assert usage_plan_keys(apigateway, "free") == {}
    assert usage_plan_keys(apigateway, "enterprise") == {enrolment.gateway_key_id: enrolment.metering_key}
    assert key_store.get_account("acme").plan == "enterprise"
    assert enrolment.metering_key not in out


def test_an_unknown_plan_fails_with_a_clear_message(capsys, apigateway):
    code, _, err = run(capsys, "keys", "create", "--account", "acme", "--plan", "platinum")
    assert code == cli.EXIT_USAGE
    assert "invalid choice: 'platinum' (choose from 'free', 'standard', 'enterprise')" in err
    assert apigateway.get_api_keys()["items"] == []


def test_usage_plans_missing_at_the_endpoint_fail_without_making_anything(capsys, apigateway, key_store, monkeypatch):
    monkeypatch.setenv("TASKAPI_STACK_NAME", "not-deployed")
    code, out, err = run(capsys, "keys", "create", "--account", "acme")
    assert code == cli.EXIT_FAILED
    assert "tk." not in out
    assert "usage plan not-deployed-free does not exist at this endpoint" in err
    assert apigateway.get_api_keys()["items"] == []
    assert key_store.list_account("acme") == []
    assert key_store.get_account("acme") is None


def test_a_missing_table_is_reported(capsys, apigateway, monkeypatch):
    monkeypatch.setenv("TASKAPI_API_KEYS_TABLE", "no-such-table")
    code, _, err = run(capsys, "keys", "list", "--account", "acme")
    assert code == cli.EXIT_FAILED
    assert "table no-such-table does not exist at this endpoint" in err
