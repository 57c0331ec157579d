"""Tenant isolation, part E: RS256 bearer tokens through the API Gateway REQUEST authorizer, as
configured in AWS (TASKAPI_JWT_JWKS_URL, issuer, audience), against a locally generated RSA key
served as JWKS on loopback. Good tokens for granted, enrolled accounts are allowed and reach the
API function with their account's context, costing one JWKS fetch for the whole run; every bad
token is refused (401) or denied (403) before the API function runs, and nothing anywhere
changes. Logs are captured at DEBUG and hold no token, signature or whole event."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from taskapi.auth.tokens import jwks_cache
from taskapi.models.domain import utc_now
from taskapi.settings import get_settings
from tests import factories
from tests.support.isolation import (
    ACCOUNT_A,
    ACCOUNT_B,
    UNAUTHORIZED_BODY,
    Gateway,
    Logs,
    Reply,
    World,
    account_part,
    build_world,
    captured_logs,
    differences,
    load_handlers,
    snapshot,
)
from tests.support.jwks import JwksServer, cognito_claims, make_rsa_token, public_pem, rsa_jwk

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_IsolationTest"
AUDIENCE = "taskapi-isolation-client"
KID = "isolation-kid-1"


@pytest.fixture(scope="module")
def jwks(key) -> Iterator[JwksServer]:
    with JwksServer([rsa_jwk(key, KID)]) as server:
        yield server


@pytest.fixture(scope="module")
def handlers() -> tuple[ModuleType, ModuleType]:
    return load_handlers()


def claims(**overrides: Any) -> dict[str, Any]:
    """Cognito ID-token-like claims for A; an override of None drops the claim."""
    return cognito_claims(**{"sub": "user-a", "accounts": [ACCOUNT_A], **overrides}, issuer=ISSUER, audience=AUDIENCE)


@dataclass
class Env:
    world: World
    gateway: Gateway
    jwks: JwksServer
    key: Any
    other_key: Any
    logs: Logs
    fetches_before: int

    def token(self, kid: str | None = KID, signer: Any = None, alg: str = "RS256", **overrides: Any) -> str:
        return make_rsa_token(self.key if signer is None else signer, kid, claims(**overrides), alg=alg)

    @property
    def fetches(self) -> int:
        return self.jwks.requests - self.fetches_before


@pytest.fixture
def env(monkeypatch, jwks, key, other_key, handlers, capsys, caplog) -> Iterator[Env]:
    monkeypatch.setenv("TASKAPI_ENVIRONMENT", "aws")
    monkeypatch.setenv("TASKAPI_JWT_JWKS_URL", jwks.url)
    monkeypatch.setenv("TASKAPI_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("TASKAPI_JWT_AUDIENCE", AUDIENCE)
    get_settings.cache_clear()
    assert get_settings().bearer_algorithm == "RS256"
    jwks_cache.cache_clear()
    jwks.set_keys([rsa_jwk(key, KID)])

    def mint(subject: str, accounts: list[str], roles: list[str] | None) -> str:
        return make_rsa_token(key, KID, claims(sub=subject, accounts=accounts, **({"roles": roles} if roles else {})))

    world = build_world(mint=mint)
    gateway = Gateway(*handlers)
    gateway.bind(world)
    with captured_logs(capsys, caplog) as logs:
        yield Env(world, gateway, jwks, key, other_key, logs, jwks.requests)
        logs.assert_clean(world.secrets)
    jwks_cache.cache_clear()


# ------------------------------------------------------------------ endpoints
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    query: dict[str, str] | None = None
    body: Any = None


ENDPOINTS: dict[str, Endpoint] = {
    "get-one": Endpoint("GET", "/api/tasks/b-pending"),
    "list": Endpoint("GET", "/api/tasks", query={"task_source_group_id": "grp-b"}),
    "count": Endpoint("GET", "/api/tasks/count/total"),
    "bulk-create": Endpoint("POST", "/api/tasks/bulk", body=factories.bulk(factories.quiz("forged-1"))),
    "bulk-cancel": Endpoint("POST", "/api/tasks/bulk-cancel", body={"task_ids": ["b-pending", "shared-1"]}),
    "bulk-regenerate": Endpoint("POST", "/api/tasks/bulk-regenerate", body={"task_ids": ["b-completed"]}),
    "queue-status": Endpoint("GET", "/api/tasks/queue/status"),
    "upload-get": Endpoint("GET", "/api/uploads/{upload_b}"),
}


def call(env: Env, name: str, headers: dict[str, str]) -> Reply:
    endpoint = ENDPOINTS[name]
    path = endpoint.path.replace("{upload_b}", env.world.upload_b)
    return env.gateway(endpoint.method, path, headers=headers, query=endpoint.query, body=endpoint.body)


# ------------------------------------------------------------------ good tokens
def test_good_rs256_tokens_are_allowed_for_their_account_with_one_jwks_fetch_for_the_whole_run(env):
    assert env.fetches == 0  # nothing is fetched before the first token
    runs = 0
    for n in range(6):
        for account in (ACCOUNT_A, ACCOUNT_B):
            token = env.world.remember_token(env.token(sub=f"user-{n}", accounts=[account, "acct_c"]))
            headers = env.world.bearer(token, account)
            listed = env.gateway("GET", "/api/tasks", headers=headers, query={"limit": "100"})
            assert listed.status == 200, listed.body
            assert {t["account_id"] for t in listed.body["tasks"]} == {account}
            decision = env.gateway.last_policy
            assert decision["context"]["account_id"] == account
            assert decision["context"]["auth_method"] == "jwt"
            assert decision["principalId"] == f"user-{n}"
            assert decision["usageIdentifierKey"] == env.world.enrolments[account].metering_key
            created = env.gateway("POST", "/api/tasks", headers=headers, body=factories.quiz(f"rs256-{n}-{account}"))
            assert (created.status, created.body["account_id"], created.body["user_id"]) == (
                200,
                account,
                f"user-{n}",
            )
            runs += 2
    assert runs == 24
    assert env.fetches == 1
    env.logs.assert_clean(env.world.secrets)


def test_a_good_rs256_token_still_sees_only_its_own_account(env):
    """Part A over RS256: B's ids through the authorizer and the API are 'not found'."""
    headers = env.world.bearer_a
    reply = env.gateway("GET", "/api/tasks/b-pending", headers=headers)
    assert (reply.status, reply.body) == (404, {"detail": "Task b-pending not found"})
    before = snapshot(env.world.fakes)
    reply = env.gateway("POST", "/api/tasks/bulk-cancel", headers=headers, body={"task_ids": ["b-pending"]})
    assert (reply.status, reply.body["not_found_ids"]) == (200, ["b-pending"])
    assert snapshot(env.world.fakes) == before
    assert env.fetches == 1
    env.logs.assert_clean(env.world.secrets)


# ------------------------------------------------------------------ bad tokens
def _tampered(env: Env) -> str:
    header, _, signature = env.token().split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims(accounts=[ACCOUNT_B])).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _now() -> int:
    return int(time.time())


BAD_TOKENS: dict[str, Callable[[Env], str]] = {
    "expired": lambda e: e.token(accounts=[ACCOUNT_B], exp=_now() - 3600),
    "not-yet-valid": lambda e: e.token(accounts=[ACCOUNT_B], nbf=_now() + 3600),
    "wrong-aud": lambda e: e.token(accounts=[ACCOUNT_B], aud="someone-else"),
    "wrong-iss": lambda e: e.token(accounts=[ACCOUNT_B], iss="https://cognito-idp.us-east-1.amazonaws.com/x_Evil"),
    "alg-none": lambda e: make_rsa_token(None, KID, claims(accounts=[ACCOUNT_B]), alg="none"),
    "hs256-keyed-with-the-public-pem": lambda e: make_rsa_token(
        public_pem(e.key), KID, claims(accounts=[ACCOUNT_B]), alg="HS256"
    ),
    "hs256-keyed-with-the-public-pem-no-kid": lambda e: make_rsa_token(
        public_pem(e.key), None, claims(accounts=[ACCOUNT_B]), alg="HS256"
    ),
    "hs256-with-the-local-dev-secret": lambda e: make_rsa_token(
        "dev-secret-change-me", None, claims(accounts=[ACCOUNT_B]), alg="HS256"
    ),
    "no-accounts-claim": lambda e: e.token(accounts=None),
    "accounts-a-string": lambda e: e.token(accounts=ACCOUNT_B),
    "no-sub": lambda e: e.token(accounts=[ACCOUNT_B], sub=None),
    "signed-by-another-key-same-kid": lambda e: e.token(signer=e.other_key, accounts=[ACCOUNT_B]),
    "unknown-kid": lambda e: e.token(kid="made-up-kid", signer=e.other_key, accounts=[ACCOUNT_B]),
    "no-kid": lambda e: e.token(kid=None, accounts=[ACCOUNT_B]),
    "rs384": lambda e: e.token(alg="RS384", accounts=[ACCOUNT_B]),
    "ps256": lambda e: e.token(alg="PS256", accounts=[ACCOUNT_B]),
    "tampered-payload": _tampered,
    "signature-stripped": lambda e: e.token(accounts=[ACCOUNT_B]).rsplit(".", 1)[0] + ".",
}
"""Each names account B, and would act for B if it verified."""
NEVER_FETCH = {"alg-none", "hs256-keyed-with-the-public-pem", "hs256-keyed-with-the-public-pem-no-kid"}
NEVER_FETCH |= {"hs256-with-the-local-dev-secret", "no-kid", "rs384", "ps256"}
"""Tokens whose header alone refuses them: they never cause a JWKS request."""


def assert_refused(env: Env, reply: Reply, status: int, before: dict[str, Any], headers: dict[str, str]) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert not reply.reached_api
    if status == 401:
        assert reply.body == UNAUTHORIZED_BODY
    else:
        assert env.gateway.last_policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    for name, value in headers.items():
        if name != "X-Account-ID":
            assert value.split(" ")[-1] not in reply.text  # no credential echoed back
    after = snapshot(env.world.fakes)
    assert after == before, f"changed: {differences(before, after)}"
    env.logs.assert_clean(env.world.secrets)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("bad", list(BAD_TOKENS))
def test_bad_rs256_tokens_are_401_and_change_nothing(env, bad, endpoint):
    headers = env.world.bearer(BAD_TOKENS[bad](env), ACCOUNT_B)
    before = snapshot(env.world.fakes)
    reply = call(env, endpoint, headers)
    assert_refused(env, reply, 401, before, headers)
    assert env.fetches == (0 if bad in NEVER_FETCH else 1)


DENIED: dict[str, Callable[[Env], dict[str, str]]] = {
    "good-token-for-a-naming-b": lambda e: e.world.bearer(e.world.token_a, ACCOUNT_B),
    "good-token-for-a-and-c-naming-b": lambda e: e.world.bearer(e.token(accounts=[ACCOUNT_A, "acct_c"]), ACCOUNT_B),
    "good-token-for-an-unenrolled-account": lambda e: e.world.bearer(e.token(accounts=["acct_c"]), "acct_c"),
    "api-key-of-a-naming-b": lambda e: {**e.world.key_a, "X-Account-ID": ACCOUNT_B},
}
"""Verified credentials that do not grant the account asked for (or are unmetered): 403."""


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("case", list(DENIED))
def test_verified_credentials_not_granting_the_account_are_denied_and_change_nothing(env, case, endpoint):
    headers = DENIED[case](env)
    before = snapshot(env.world.fakes)
    reply = call(env, endpoint, headers)
    assert_refused(env, reply, 403, before, headers)
    assert env.fetches <= 1


def _revoked_key_of_b(env: Env) -> dict[str, str]:
    headers = env.world.fakes.api_key(ACCOUNT_B)
    key = env.world.remember_key(headers["X-API-Key"])
    env.world.fakes.keys.revoke(key.split(".")[2], at=utc_now() - timedelta(seconds=1))
    return headers


BAD_KEYS: dict[str, Callable[[Env], dict[str, str]]] = {
    "revoked-key-of-b": _revoked_key_of_b,
    "b-prefix-wrong-secret": lambda e: {
        "X-API-Key": e.world.remember_key(e.world.key_b["X-API-Key"].rsplit(".", 1)[0] + "." + "s" * 43)
    },
    "no-credentials": lambda e: {},
}
"""API keys and missing credentials in the RS256 deployment: 401 too."""


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("case", list(BAD_KEYS))
def test_bad_api_keys_in_the_rs256_deployment_are_401(env, case, endpoint):
    headers = BAD_KEYS[case](env)
    before = snapshot(env.world.fakes)
    reply = call(env, endpoint, headers)
    assert_refused(env, reply, 401, before, headers)
    assert env.fetches == 0


# ------------------------------------------------------------------ one cache for a whole run
def test_bad_tokens_between_good_ones_cost_no_more_than_the_bounded_refetch(env):
    """One warm authorizer container: good tokens for A, each bad token in between. The JWKS is
    fetched once for the good tokens, plus the one refetch an unknown kid may cause."""
    before = account_part(snapshot(env.world.fakes), ACCOUNT_B)
    good = env.world.bearer_a
    for name, make in BAD_TOKENS.items():
        assert call(env, "list", good).status == 200, name
        headers = env.world.bearer(make(env), ACCOUNT_B)
        assert call(env, "list", headers).status == 401, name
    assert call(env, "count", good).status == 200
    assert env.fetches == 2  # the first good token's fetch, and one refetch for "unknown-kid"
    assert account_part(snapshot(env.world.fakes), ACCOUNT_B) == before
    env.logs.assert_clean(env.world.secrets)
