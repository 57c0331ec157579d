"""Credentials to principal: API keys (hash-proven, revocable) and bearer JWTs (pinned HS256 locally)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from taskapi.auth.api_keys import InMemoryApiKeyStore, generate_key, hash_key, key_id_from_reference, parse_key
from taskapi.auth.identity import authenticate
from taskapi.auth.tokens import issue_local_token
from taskapi.errors import Forbidden, NotFound, Unauthenticated
from taskapi.settings import DEV_JWT_SECRET, Settings

SETTINGS = Settings()


@pytest.fixture
def store() -> InMemoryApiKeyStore:
    return InMemoryApiKeyStore()


def by_key(key: str, store, account_header: str | None = None):
    return authenticate(authorization=None, api_key=key, account_id=account_header, settings=SETTINGS, key_store=store)


def by_token(token: str, account: str | None, store, settings: Settings = SETTINGS):
    return authenticate(
        authorization=f"Bearer {token}", api_key=None, account_id=account, settings=settings, key_store=store
    )


def claims(**overrides):
    now = int(time.time())
    base = {"sub": "user_9", "accounts": ["acct_a", "acct_b"], "iss": "taskapi-local", "aud": "taskapi"}
    base.update({"iat": now, "nbf": now, "exp": now + 600})
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, secret=DEV_JWT_SECRET, algorithm="HS256"):
    return jwt.encode(payload, secret, algorithm=algorithm)


# ------------------------------------------------------------------ API keys
def test_api_key_names_its_account_and_refuses_an_x_account_id_naming_another(store):
    key, record = generate_key("acct_a")
    store.put(record)
    for header in (None, "", "acct_a"):
        principal = by_key(key, store, account_header=header)
        assert (principal.account_id, principal.user_id, principal.auth_method) == (
            "acct_a",
            "api_key_user_acct_a",
            "api_key",
        )
    with pytest.raises(Forbidden, match="only for its own account"):
        by_key(key, store, account_header="acct_b")


def test_only_the_hash_is_stored_and_the_secret_has_256_bits(store):
    key, record = generate_key("acct_a")
    assert key not in repr(record)
    assert record.key_hash == hash_key(key)
    secret = key.rsplit(".", 1)[1]
    assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) == 32


def test_a_valid_prefix_with_a_wrong_secret_fails(store):
    key, record = generate_key("acct_a")
    store.put(record)
    forged = key.rsplit(".", 1)[0] + "." + "A" * 43
    with pytest.raises(Unauthenticated, match="Invalid API key"):
        by_key(forged, store)


def test_a_key_claiming_another_account_fails(store):
    key, record = generate_key("acct_a")
    store.put(record)
    _, _, key_id, secret = key.split(".")
    with pytest.raises(Unauthenticated):
        by_key(f"tk.acct_b.{key_id}.{secret}", store)


@pytest.mark.parametrize("key", ["", "nonsense", "tk.acct.short.x", "tk.a.b.c.d", "tk.bad account.0123456789abcdef.x"])
def test_malformed_keys_fail(store, key):
    with pytest.raises(Unauthenticated):
        authenticate(authorization=None, api_key=key or "x", account_id=None, settings=SETTINGS, key_store=store)


def test_revoked_keys_fail(store):
    key, record = generate_key("acct_a")
    store.put(record)
    store.revoke(key_id_from_reference(record.display_prefix))
    with pytest.raises(Unauthenticated, match="revoked"):
        by_key(key, store)


def test_key_references_accept_an_id_a_prefix_or_the_whole_key():
    key, record = generate_key("acct_a")
    assert key_id_from_reference(record.key_id) == record.key_id
    assert key_id_from_reference(record.display_prefix) == record.key_id
    assert key_id_from_reference(key) == record.key_id
    with pytest.raises(NotFound):
        key_id_from_reference("not-a-key")
    assert parse_key(key).account_id == "acct_a"


# ------------------------------------------------------------------ bearer tokens
def test_a_token_grants_the_accounts_it_lists(store):
    token = issue_local_token(SETTINGS, subject="user_9", accounts=["acct_a", "acct_b"])
    principal = by_token(token, "acct_b", store)
    assert (principal.account_id, principal.user_id, principal.auth_method) == ("acct_b", "user_9", "jwt")


def test_an_account_the_token_does_not_list_is_forbidden(store):
    with pytest.raises(Forbidden):
        by_token(sign(claims()), "acct_c", store)


def test_a_bearer_token_needs_x_account_id(store):
    with pytest.raises(Unauthenticated, match="X-Account-ID"):
        by_token(sign(claims()), None, store)


@pytest.mark.parametrize(
    ("payload", "secret"),
    [
        (claims(exp=int(time.time()) - 3600), DEV_JWT_SECRET),
        (claims(nbf=int(time.time()) + 3600), DEV_JWT_SECRET),
        (claims(aud="someone-else"), DEV_JWT_SECRET),
        (claims(iss="evil"), DEV_JWT_SECRET),
        (claims(exp=None), DEV_JWT_SECRET),
        (claims(sub=None), DEV_JWT_SECRET),
        (claims(accounts="acct_a"), DEV_JWT_SECRET),
        (claims(), "another-secret-that-is-long-enough-123"),
    ],
    ids=["expired", "not-yet-valid", "wrong-aud", "wrong-iss", "no-exp", "no-sub", "accounts-not-list", "bad-sig"],
)
def test_tokens_that_do_not_verify_fail(store, payload, secret):
    with pytest.raises(Unauthenticated):
        by_token(sign(payload, secret), "acct_a", store)


def test_alg_none_is_refused(store):
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        by_token(f"{header}.{body}.", "acct_a", store)


def test_other_schemes_are_refused(store):
    with pytest.raises(Unauthenticated):
        authenticate(
            authorization="Basic dXNlcjpwYXNz", api_key=None, account_id="a", settings=SETTINGS, key_store=store
        )
    with pytest.raises(Unauthenticated, match="Not authenticated"):
        authenticate(authorization=None, api_key=None, account_id="a", settings=SETTINGS, key_store=store)


def test_in_aws_the_documented_local_secret_never_verifies(store):
    aws = Settings(environment="aws")
    assert aws.bearer_algorithm is None
    with pytest.raises(Unauthenticated, match="not configured"):
        by_token(sign(claims()), "acct_a", store, settings=aws)
    assert Settings(environment="aws", jwt_jwks_url="https://idp/jwks.json").bearer_algorithm == "RS256"
