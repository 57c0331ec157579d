"""The Lambda authorizer: API Gateway REQUEST events in, IAM policies (or 401) out."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest

from taskapi.auth.api_keys import InMemoryApiKeyStore, generate_key
from taskapi.auth.tokens import issue_local_token
from taskapi.settings import get_settings
from tests import factories
from tests.support.accounts import enrol

HANDLER = Path(__file__).resolve().parents[3] / "functions" / "authorizer" / "app.py"


@pytest.fixture
def authorizer(monkeypatch):
    spec = importlib.util.spec_from_file_location("authorizer_under_test", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store = InMemoryApiKeyStore()
    monkeypatch.setattr(module, "get_key_store", lambda: store)
    module.store = store
    return module


def new_key(store, account_id: str, plan: str = "standard") -> str:
    key, record = generate_key(account_id, plan)
    store.put(record)
    return key


def token_for(*accounts: str, sub: str = "user-1") -> str:
    return issue_local_token(get_settings(), subject=sub, accounts=list(accounts))


def call(module, headers=None, **kwargs):
    event = factories.authorizer_event(headers=headers or {}, **kwargs)
    return module.handler(event, factories.LambdaContext(function_name="taskapi-AuthorizerFunction"))


def effect_of(answer) -> str:
    (statement,) = answer["policyDocument"]["Statement"]
    return statement["Effect"]


def test_an_api_key_is_allowed_with_its_account_and_metered_by_itself(authorizer):
    key = new_key(authorizer.store, "acct_a")
    answer = call(authorizer, {"X-API-Key": key})
    assert effect_of(answer) == "Allow"
    assert answer["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"
    ]
    assert answer["context"]["account_id"] == "acct_a"
    assert answer["context"]["user_id"] == "api_key_user_acct_a"
    assert answer["context"]["auth_method"] == "api_key"
    assert answer["context"]["role"] == "tenant"
    assert answer["usageIdentifierKey"] == key


def test_an_operator_key_and_an_operator_token_pass_the_operator_role_in_the_context(authorizer):
    key, record = generate_key("ops", "enterprise", "operator")
    authorizer.store.put(record)
    enrol(authorizer.store, "ops", "enterprise")
    token = issue_local_token(get_settings(), subject="op-1", accounts=["ops"], roles=["operator"])
    by_key = call(authorizer, {"X-API-Key": key})
    by_token = call(authorizer, {"Authorization": f"Bearer {token}", "X-Account-ID": "ops"})
    assert by_key["context"]["role"] == by_token["context"]["role"] == "operator"
    # A token whose roles hold anything else is a tenant's.
    other = issue_local_token(get_settings(), subject="u", accounts=["ops"], roles=["admin", "Operator"])
    assert call(authorizer, {"Authorization": f"Bearer {other}", "X-Account-ID": "ops"})["context"]["role"] == "tenant"


def test_a_roles_claim_that_is_not_a_list_of_strings_is_refused(authorizer):
    import jwt

    settings = get_settings()
    claims = jwt.decode(
        token_for("acct_b"),
        settings.jwt_secret.get_secret_value(),
        algorithms=["HS256"],
        audience=settings.jwt_audience,
    )
    forged = jwt.encode({**claims, "roles": "operator"}, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    enrol(authorizer.store, "acct_b", "enterprise")
    with pytest.raises(Exception, match="Unauthorized"):
        call(authorizer, {"Authorization": f"Bearer {forged}", "X-Account-ID": "acct_b"})


def test_header_names_are_matched_case_insensitively(authorizer):
    key = new_key(authorizer.store, "acct_a")
    assert effect_of(call(authorizer, {"x-api-key": key})) == "Allow"


def test_a_bearer_token_is_allowed_for_a_granted_enrolled_account_and_metered_by_its_enrolment(authorizer):
    enrolment = enrol(authorizer.store, "acct_b", "enterprise")
    answer = call(authorizer, {"Authorization": f"Bearer {token_for('acct_b')}", "X-Account-ID": "acct_b"})
    assert effect_of(answer) == "Allow"
    assert answer["context"] == {
        "account_id": "acct_b",
        "user_id": "user-1",
        "auth_method": "jwt",
        "role": "tenant",
        "plan": "enterprise",
    }
    assert answer["usageIdentifierKey"] == enrolment.metering_key
    assert answer["principalId"] == "user-1"


def test_a_bearer_token_for_an_account_without_a_plan_is_denied(authorizer):
    answer = call(authorizer, {"Authorization": f"Bearer {token_for('acct_b')}", "X-Account-ID": "acct_b"})
    assert effect_of(answer) == "Deny"
    assert "not enrolled on a usage plan" in answer["context"]["detail"]
    assert "usageIdentifierKey" not in answer


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Account-ID": "acct_a"},
        {"Authorization": "Basic dXNlcjpwYXNz", "X-Account-ID": "acct_a"},
        {"Authorization": "Bearer not-a-jwt", "X-Account-ID": "acct_a"},
        {"X-API-Key": "tk.acct_a.0123456789abcdef.wrong-secret-wrong-secret-wrong"},
        {"X-API-Key": "garbage"},
    ],
    ids=["nothing", "account-only", "basic-auth", "bad-jwt", "wrong-secret", "garbage-key"],
)
def test_missing_or_bad_credentials_are_401(authorizer, headers):
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        call(authorizer, headers)


def test_credentials_that_do_not_grant_the_account_are_denied_with_a_reason(authorizer):
    enrol(authorizer.store, "acct_a", "free")
    answer = call(authorizer, {"Authorization": f"Bearer {token_for('acct_a')}", "X-Account-ID": "acct_b"})
    assert effect_of(answer) == "Deny"
    assert answer["context"]["detail"] == "Token does not grant access to account acct_b"

    key = new_key(authorizer.store, "acct_a")
    answer = call(authorizer, {"X-API-Key": key, "X-Account-ID": "acct_b"})
    assert effect_of(answer) == "Deny"
    assert "only for its own account" in answer["context"]["detail"]


def test_the_denial_reason_is_safe_inside_the_gateway_responses_json(authorizer):
    enrol(authorizer.store, "acct_a", "free")
    answer = call(authorizer, {"Authorization": f"Bearer {token_for('acct_a')}", "X-Account-ID": 'x"}, "y'})
    template = '{"detail": "$context.authorizer.detail"}'
    body = json.loads(template.replace("$context.authorizer.detail", answer["context"]["detail"]))
    assert body["detail"].startswith("Token does not grant access")


def test_an_api_key_sent_twice_with_different_values_is_refused(authorizer):
    key_a = new_key(authorizer.store, "acct_a")
    key_b = new_key(authorizer.store, "acct_b")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        call(authorizer, {"X-API-Key": key_a}, multi_value_headers={"X-API-Key": [key_a, key_b]})


def test_a_revoked_key_is_401(authorizer):
    key = new_key(authorizer.store, "acct_a")
    authorizer.store.revoke(key.split(".")[2])
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        call(authorizer, {"X-API-Key": key})


def test_a_failing_key_store_fails_closed(authorizer, monkeypatch):
    from taskapi.errors import Retryable

    class Down:
        def get(self, key_id):
            raise Retryable("The API key store did not answer; retry the request")

    monkeypatch.setattr(authorizer, "get_key_store", lambda: Down())
    with pytest.raises(Retryable):
        call(authorizer, {"X-API-Key": "tk.acct_a.0123456789abcdef." + "s" * 43})


def test_no_key_token_or_event_is_logged(authorizer, capsys, caplog):
    from taskapi.observability import logger

    level = logger.log_level
    logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    key = new_key(authorizer.store, "acct_a")
    enrol(authorizer.store, "acct_a", "free")
    token = token_for("acct_a")
    call(authorizer, {"X-API-Key": key})
    call(authorizer, {"Authorization": f"Bearer {token}", "X-Account-ID": "acct_a"})
    call(authorizer, {"Authorization": f"Bearer {token}", "X-Account-ID": "acct_b"})
    with pytest.raises(Exception, match="Unauthorized"):
        call(authorizer, {"X-API-Key": key + "x"})
    logger.setLevel(level)
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    # the decisions are logged ...
    assert "request authorized" in logged
    assert "request forbidden" in logged
    assert "request not authenticated" in logged
    secret = key.split(".")[3]
    for needle in (key, secret, token, token.split(".")[2], "methodArn", "multiValueHeaders"):
        assert needle not in logged  # ... but never a credential or the whole event
