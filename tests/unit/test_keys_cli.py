"""`taskapi keys ...` and `taskapi accounts enrol` on the in-memory store and usage plans: what
they print (a key once, on the last line; never a secret in a listing) and their exit codes."""

from __future__ import annotations

import re

import pytest

from taskapi import cli
from taskapi.auth.api_keys import InMemoryApiKeyStore
from taskapi.auth.gateway import InMemoryUsagePlans
from taskapi.errors import Retryable


@pytest.fixture
def store() -> InMemoryApiKeyStore:
    return InMemoryApiKeyStore()


@pytest.fixture
def gateway() -> InMemoryUsagePlans:
    return InMemoryUsagePlans()


@pytest.fixture(autouse=True)
def _fakes(monkeypatch, store, gateway):
    monkeypatch.setattr(cli, "_key_store", lambda: store)
    monkeypatch.setattr(cli, "_usage_plans", lambda: gateway)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys, account: str = "acme", *extra: str) -> str:
    code, out, err = run(capsys, "keys", "create", "--account", account, *extra)
    assert code == cli.EXIT_OK, err
    return out.strip().splitlines()[-1]


def test_create_prints_the_key_once_on_the_last_line_and_enrols_the_account(capsys, store, gateway):
    code, out, _ = run(capsys, "keys", "create", "--account", "acme", "--plan", "standard")
    assert code == cli.EXIT_OK
    *notes, key = out.strip().splitlines()
    assert out.count(key) == 1
    record = store.get(key.split(".")[2])
    assert record.plan == "standard"
    assert gateway.value_of(record.gateway_key_id) == key
    assert notes == [
        "Enrolled account acme on plan standard for bearer-token metering.",
        f"Created key {record.display_prefix} for account acme on plan standard; store it now, it is not shown again:",
    ]


def test_create_with_role_operator_makes_an_operator_key_that_authenticates_as_one(capsys, store):
    from taskapi.auth.identity import authenticate_api_key

    key = create(capsys, "ops", "--role", "operator")
    assert store.get(key.split(".")[2]).role == "operator"
    assert authenticate_api_key(key, store).is_operator
    tenant = create(capsys, "acme")
    assert store.get(tenant.split(".")[2]).role == "tenant"
    assert not authenticate_api_key(tenant, store).is_operator
    code, _, err = run(capsys, "keys", "create", "--account", "ops", "--role", "admin")
    assert code != cli.EXIT_OK
    assert "invalid choice: 'admin'" in err


def test_rotation_keeps_the_role(capsys, store):
    key = create(capsys, "ops", "--role", "operator")
    code, out, _ = run(capsys, "keys", "rotate", key)
    assert code == cli.EXIT_OK
    assert store.get(out.strip().splitlines()[-1].split(".")[2]).role == "operator"


def test_token_with_role_operator_carries_the_roles_claim(capsys):
    from taskapi.auth.identity import authenticate
    from taskapi.settings import get_settings

    def principal(*extra: str):
        code, out, err = run(capsys, "token", "--sub", "op-1", "--account", "ops", *extra)
        assert code == cli.EXIT_OK, err
        bearer = f"Bearer {out.strip().splitlines()[-1]}"
        return authenticate(
            authorization=bearer, api_key=None, account_id="ops", settings=get_settings(), key_store=store
        )

    store = InMemoryApiKeyStore()
    assert principal("--role", "operator").role == "operator"
    assert principal().role == "tenant"


def test_create_defaults_to_the_settings_plan(capsys, store, monkeypatch):
    monkeypatch.setenv("TASKAPI_DEFAULT_PLAN", "enterprise")
    key = create(capsys)
    assert store.get(key.split(".")[2]).plan == "enterprise"


def test_create_says_when_the_accounts_bearer_metering_stays_on_another_plan(capsys):
    create(capsys, "acme", "--plan", "free")
    code, out, _ = run(capsys, "keys", "create", "--account", "acme", "--plan", "standard")
    assert code == cli.EXIT_OK
    assert "Bearer-token requests of account acme stay metered on plan free" in out


def test_an_unknown_plan_is_a_usage_error_naming_the_plans(capsys, gateway):
    code, _, err = run(capsys, "keys", "create", "--account", "acme", "--plan", "gold")
    assert code == cli.EXIT_USAGE
    assert "invalid choice: 'gold'" in err
    assert "'free', 'standard', 'enterprise'" in err
    assert gateway.keys == {}


def test_a_bad_account_is_a_usage_error(capsys, gateway):
    code, _, err = run(capsys, "keys", "create", "--account", "a.b")
    assert code == cli.EXIT_USAGE
    assert "account id 'a.b' must match" in err


def test_a_missing_usage_plan_fails_clearly(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_usage_plans", lambda: InMemoryUsagePlans(plans=("free",)))
    code, out, err = run(capsys, "keys", "create", "--account", "acme", "--plan", "enterprise")
    assert code == cli.EXIT_FAILED
    assert "cannot create the key: usage plan enterprise does not exist" in err
    assert "tk." not in out + err


def test_list_shows_prefix_plan_created_and_state_but_never_a_secret(capsys, store):
    active = create(capsys, "acme", "--plan", "standard")
    revoked = create(capsys, "acme")
    rotated = create(capsys, "acme")
    assert run(capsys, "keys", "revoke", revoked)[0] == cli.EXIT_OK
    code, out, _ = run(capsys, "keys", "rotate", rotated, "--grace-seconds", "3600")
    assert code == cli.EXIT_OK
    replacement = out.strip().splitlines()[-1]
    create(capsys, "other")

    code, out, err = run(capsys, "keys", "list", "--account", "acme")
    assert code == cli.EXIT_OK, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["KEY", "PLAN", "ROLE", "CREATED", "STATE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:5]}
    prefix = {key: key.rsplit(".", 1)[0] for key in (active, revoked, rotated, replacement)}
    assert set(rows) == set(prefix.values())
    assert rows[prefix[active]][:2] == ["standard", "tenant"]
    assert rows[prefix[active]][3:] == ["active"]
    assert rows[prefix[revoked]][3] == "revoked"
    assert rows[prefix[rotated]][3] == "expires"
    assert rows[prefix[replacement]][3:] == ["active"]
    assert lines[5] == "Bearer-token requests of account acme are metered on plan standard."
    for key in (active, revoked, rotated, replacement):
        assert key.rsplit(".", 1)[1] not in out
    for record in store.list_account("acme"):
        assert record.key_hash not in out
    assert store.get_account("acme").metering_key not in out
    assert "tk.other." not in out


def test_list_of_an_account_without_keys(capsys):
    code, out, _ = run(capsys, "keys", "list", "--account", "nobody")
    assert code == cli.EXIT_OK
    assert out.splitlines() == [
        "No API keys for account nobody.",
        "Account nobody is not enrolled for bearer tokens (`taskapi accounts enrol` enrols it).",
    ]


def test_revoke_reports_and_deletes_the_gateway_key(capsys, store, gateway):
    key = create(capsys)
    record = store.get(key.split(".")[2])
    code, out, _ = run(capsys, "keys", "revoke", record.display_prefix)
    assert code == cli.EXIT_OK
    assert re.fullmatch(
        rf"Revoked key {re.escape(record.display_prefix)} \(account acme, plan free\) at \S+Z; "
        r"its API Gateway key is deleted\.\n",
        out,
    )
    assert record.gateway_key_id not in gateway.keys
    assert key not in out


def test_revoke_of_an_unknown_key_fails(capsys):
    code, _, err = run(capsys, "keys", "revoke", "tk.acme.0123456789abcdef")
    assert code == cli.EXIT_FAILED
    assert "API key 0123456789abcdef not found" in err


def test_rotate_prints_the_new_key_once_on_the_last_line(capsys, store, gateway):
    old = create(capsys)
    code, out, _ = run(capsys, "keys", "rotate", old)
    assert code == cli.EXIT_OK
    lines = out.strip().splitlines()
    new = lines[-1]
    assert new != old
    assert out.count(new) == 1
    assert old not in out
    assert lines[0].startswith(f"Revoked key {old.rsplit('.', 1)[0]} at ")
    new_record = store.get(new.split(".")[2])
    assert gateway.value_of(new_record.gateway_key_id) == new


def test_rotate_with_grace_then_purge(capsys, store, gateway):
    old = create(capsys)
    old_record = store.get(old.split(".")[2])
    code, out, _ = run(capsys, "keys", "rotate", old, "--grace-seconds", "0")
    assert code == cli.EXIT_OK
    assert old_record.gateway_key_id not in gateway.keys
    newer = out.strip().splitlines()[-1]
    code, out, _ = run(capsys, "keys", "rotate", newer, "--grace-seconds", "120")
    assert code == cli.EXIT_OK
    assert "keeps working until" in out
    assert "taskapi keys purge --account acme" in out
    code, out, _ = run(capsys, "keys", "purge", "--account", "acme")
    assert out == "No revoked keys of account acme have API Gateway keys left.\n"


@pytest.mark.parametrize("grace", ["-1", "soon", str(31 * 86_400)])
def test_rotate_refuses_a_bad_grace_period(capsys, grace):
    key = create(capsys)
    code, _, err = run(capsys, "keys", "rotate", key, "--grace-seconds", grace)
    assert code == cli.EXIT_USAGE
    assert "--grace-seconds" in err


def test_enrol_creates_then_moves(capsys, store, gateway):
    code, out, _ = run(capsys, "accounts", "enrol", "--account", "acme", "--plan", "standard")
    assert code == cli.EXIT_OK
    assert out == (
        "Bearer-token requests of account acme are metered on plan standard "
        "(usage plan taskapi-local-standard; newly enrolled).\n"
    )
    code, out, _ = run(capsys, "accounts", "enrol", "--account", "acme", "--plan", "enterprise")
    assert "(usage plan taskapi-local-enterprise; moved from plan standard)" in out
    code, out, _ = run(capsys, "accounts", "enrol", "--account", "acme", "--plan", "enterprise")
    assert "unchanged" in out
    enrolment = store.get_account("acme")
    assert gateway.plan_of(enrolment.gateway_key_id) == "enterprise"
    assert enrolment.metering_key not in out


def test_enrol_needs_a_plan(capsys):
    code, _, err = run(capsys, "accounts", "enrol", "--account", "acme")
    assert code == cli.EXIT_USAGE
    assert "--plan" in err


def test_a_store_failure_after_the_gateway_key_is_reported_and_undone(capsys, store, gateway, monkeypatch):
    run(capsys, "accounts", "enrol", "--account", "acme", "--plan", "free")

    def refuse(record):
        raise Retryable("The API key store did not answer; retry the request")

    monkeypatch.setattr(store, "put", refuse)
    code, out, err = run(capsys, "keys", "create", "--account", "acme")
    assert code == cli.EXIT_FAILED
    assert err.startswith("taskapi: error: cannot create the key")
    assert "tk.acme." not in out
    assert len(gateway.keys) == 1  # only the metering key
