"""The `taskapi` CLI as an operator runs it, against the local stack's AWS endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_keys_create_prints_a_working_key_on_its_last_line_and_revoke_disables_it(
    client: httpx.Client, run_cli: Callable[..., Any]
) -> None:
    created = run_cli("keys", "create", "--account", "cli_acct")
    assert created.returncode == 0, created.stderr
    *preamble, key = created.stdout.strip().splitlines()
    prefix = ".".join(key.split(".")[:3])
    assert key.startswith("tk.cli_acct.")
    assert any(prefix in line for line in preamble), "the preamble names the key by its prefix"
    headers = {"X-API-Key": key}
    assert client.get("/api/tasks", headers=headers).status_code == 200

    revoked = run_cli("keys", "revoke", prefix)

    assert revoked.returncode == 0, revoked.stderr
    assert prefix in revoked.stdout
    response = client.get("/api/tasks", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "API key has been revoked"}
    # Revoking twice is harmless, and the whole key works as a reference too.
    assert run_cli("keys", "revoke", key).returncode == 0


def test_two_keys_of_one_account_are_revoked_independently(
    client: httpx.Client, create_api_key: Callable[[str], str], run_cli: Callable[..., Any]
) -> None:
    first, second = create_api_key("cli_twin"), create_api_key("cli_twin")
    key_id = first.split(".")[2]

    assert run_cli("keys", "revoke", key_id).returncode == 0

    assert client.get("/api/tasks", headers={"X-API-Key": first}).status_code == 401
    assert client.get("/api/tasks", headers={"X-API-Key": second}).status_code == 200


@pytest.mark.parametrize(
    ("reference", "message"),
    [("tk.demo.00000000deadbeef", "not found"), ("not-a-key", "names no API key")],
    ids=["unknown-id", "malformed"],
)
def test_revoking_an_unknown_key_fails_with_a_message(
    run_cli: Callable[..., Any], reference: str, message: str
) -> None:
    result = run_cli("keys", "revoke", reference)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_keys_create_rejects_an_account_id_a_key_cannot_carry(run_cli: Callable[..., Any]) -> None:
    result = run_cli("keys", "create", "--account", "has.dots")

    assert result.returncode == 2
    assert "account id" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_grants_exactly_the_accounts_it_names(client: httpx.Client, run_cli: Callable[..., Any]) -> None:
    result = run_cli("token", "--sub", "ops-user", "--account", "tok_a", "--account", "tok_b", "--ttl", "600")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]

    def status(account: str) -> int:
        headers = {"Authorization": f"Bearer {token}", "X-Account-ID": account}
        return client.get("/api/tasks", headers=headers).status_code

    assert (status("tok_a"), status("tok_b"), status("tok_c")) == (200, 200, 403)
    created = client.post(
        "/api/tasks/bulk",
        headers={"Authorization": f"Bearer {token}", "X-Account-ID": "tok_b"},
        json={"tasks": [{"task_type": "documentation", "request_data": {"story_prompt": "Runbook"}}]},
    )
    assert created.json()[0]["user_id"] == "ops-user"


@pytest.mark.parametrize(
    "args",
    [
        ("token", "--sub", "u"),
        ("token", "--sub", "u", "--account", "a", "--ttl", "0"),
        ("keys",),
        ("keys", "create"),
        (),
    ],
    ids=["token-without-account", "ttl-0", "keys-without-action", "create-without-account", "nothing"],
)
def test_usage_errors_exit_2_without_a_traceback(run_cli: Callable[..., Any], args: tuple[str, ...]) -> None:
    result = run_cli(*args)

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_endpoint_fails_with_a_message(run_cli: Callable[..., Any]) -> None:
    result = run_cli("keys", "create", "--account", "nowhere", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})

    assert result.returncode == 1
    assert "cannot create the key" in result.stderr
    assert "Traceback" not in result.stderr
