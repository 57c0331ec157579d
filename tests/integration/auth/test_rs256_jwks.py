"""RS256 bearer tokens verified as in AWS: against a Cognito-style JWKS URL, here a locally
generated RSA key served as {"keys": [jwk]} on loopback. The server counts requests, which proves
the key cache's bounds: one fetch for many tokens, one refetch per interval for unknown kids."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from taskapi.auth.api_keys import InMemoryApiKeyStore
from taskapi.auth.identity import authenticate
from taskapi.auth.tokens import (
    JWKS_LIFESPAN_SECONDS,
    JWKS_MAX_BYTES,
    JWKS_MIN_REFETCH_SECONDS,
    JwksCache,
    decode_bearer,
    jwks_cache,
)
from taskapi.errors import Forbidden, Unauthenticated
from taskapi.settings import Settings, get_settings
from tests.support.jwks import JwksServer, cognito_claims, generate_rsa_key, make_rsa_token, public_pem, rsa_jwk

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TaskApiTest"
AUDIENCE = "taskapi-test-client"
LEEWAY = 30
KID = "kid-1"
INVALID = "Invalid bearer token"


class Clock:
    """A monotonic clock the test moves by hand (the cache's `clock`)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def third_key():
    return generate_rsa_key()


@pytest.fixture(autouse=True)
def _fresh_jwks_caches():
    jwks_cache.cache_clear()
    yield
    jwks_cache.cache_clear()


@pytest.fixture
def jwks(key):
    with JwksServer([rsa_jwk(key, KID)]) as server:
        yield server


@pytest.fixture
def settings(jwks, monkeypatch) -> Settings:
    """The AWS configuration: RS256 against the loopback JWKS URL (TASKAPI_* variables)."""
    monkeypatch.setenv("TASKAPI_ENVIRONMENT", "aws")
    monkeypatch.setenv("TASKAPI_JWT_JWKS_URL", jwks.url)
    monkeypatch.setenv("TASKAPI_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("TASKAPI_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("TASKAPI_JWT_LEEWAY_SECONDS", str(LEEWAY))
    get_settings.cache_clear()
    configured = get_settings()
    assert configured.bearer_algorithm == "RS256"
    return configured


@pytest.fixture
def clock(settings) -> Clock:
    """Drives the real cache of the configured URL (default lifespan and refetch interval)."""
    fake = Clock()
    jwks_cache(settings.jwt_jwks_url).clock = fake
    return fake


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="taskapi.auth.tokens")
    return caplog


def claims(**overrides: Any) -> dict[str, Any]:
    """Cognito ID-token-like claims plus the service's `accounts`; an override of None drops a claim."""
    return cognito_claims(
        **{"sub": "user_9", "accounts": ["acct_a", "acct_b"], **overrides}, issuer=ISSUER, audience=AUDIENCE
    )


def token_for(key, kid: str | None = KID, **overrides: Any) -> str:
    return make_rsa_token(key, kid, claims(**overrides))


def random_kid_token(key) -> str:
    return token_for(key, kid=f"made-up-{uuid.uuid4().hex}")


def assert_not_logged(token: str, caplog, capsys) -> None:
    out, err = capsys.readouterr()
    parts = token.split(".")
    signature = parts[2] if len(parts) == 3 else ""
    for text in (caplog.text, out, err, *(repr(record.args) for record in caplog.records)):
        assert token not in text
        if signature:
            assert signature not in text


# ------------------------------------------------------------------ valid tokens and the cache
def test_many_valid_tokens_cost_one_jwks_fetch(settings, jwks, key):
    assert jwks.requests == 0  # nothing is fetched before the first token
    for n in range(25):
        verified = decode_bearer(token_for(key, sub=f"user_{n}"), settings)
        assert verified["sub"] == f"user_{n}"
        assert verified["accounts"] == ["acct_a", "acct_b"]
    assert jwks.requests == 1


def test_an_rs256_token_authenticates_through_the_identity_module(settings, jwks, key):
    store = InMemoryApiKeyStore()
    token = token_for(key)

    def by_token(account: str):
        return authenticate(
            authorization=f"Bearer {token}", api_key=None, account_id=account, settings=settings, key_store=store
        )

    principal = by_token("acct_b")
    assert (principal.account_id, principal.user_id, principal.auth_method) == ("acct_b", "user_9", "jwt")
    with pytest.raises(Forbidden):
        by_token("acct_c")
    assert jwks.requests == 1


def test_an_unknown_kid_refetches_once_then_not_again_within_the_interval(settings, jwks, key, clock):
    decode_bearer(token_for(key), settings)
    assert jwks.requests == 1

    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(random_kid_token(key), settings)
    assert jwks.requests == 2  # the one refetch an unknown kid may cause

    for _ in range(50):
        with pytest.raises(Unauthenticated, match=INVALID):
            decode_bearer(random_kid_token(key), settings)
    clock.advance(JWKS_MIN_REFETCH_SECONDS - 1)
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(random_kid_token(key), settings)
    assert jwks.requests == 2  # a flood of made-up kids is no flood of fetches

    decode_bearer(token_for(key), settings)  # known keys keep working meanwhile
    assert jwks.requests == 2

    clock.advance(2)  # the interval has passed: one more refetch is allowed
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(random_kid_token(key), settings)
    assert jwks.requests == 3


def test_concurrent_unknown_kids_cause_one_refetch(settings, jwks, key, clock):
    decode_bearer(token_for(key), settings)
    tokens = [random_kid_token(key) for _ in range(64)]
    outcomes: list[BaseException | None] = []

    def verify(batch: list[str]) -> None:
        for token in batch:
            try:
                decode_bearer(token, settings)
            except BaseException as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)

    threads = [threading.Thread(target=verify, args=(tokens[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 64
    assert all(isinstance(outcome, Unauthenticated) for outcome in outcomes)
    assert jwks.requests == 2


def test_the_refetch_interval_is_what_bounds_the_fetches(settings, jwks, key):
    """The bound can be overridden (tests do), and without it every unknown kid would fetch."""
    cache = jwks_cache(settings.jwt_jwks_url)
    assert cache.min_refetch_interval == JWKS_MIN_REFETCH_SECONDS > 0
    cache.min_refetch_interval = 0
    decode_bearer(token_for(key), settings)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            decode_bearer(random_kid_token(key), settings)
    assert jwks.requests == 6


def test_a_cache_can_be_built_with_its_own_bounds(jwks, key):
    clock = Clock()
    cache = JwksCache(jwks.url, lifespan=10, min_refetch_interval=5, clock=clock)
    assert cache.key(KID) is not None
    assert jwks.requests == 1
    assert cache.key("unknown") is None  # one refetch, which starts the cooldown
    assert cache.key("unknown") is None
    assert jwks.requests == 2
    clock.advance(5)
    assert cache.key("unknown") is None
    assert jwks.requests == 3
    clock.advance(10)  # past the lifespan: the next lookup of a known kid fetches again
    assert cache.key(KID) is not None
    assert jwks.requests == 4


def test_a_key_rotated_at_the_server_is_picked_up_after_a_refetch(settings, jwks, key, other_key, third_key, clock):
    decode_bearer(token_for(key), settings)
    assert jwks.requests == 1

    # The issuer publishes a second key: its first token's unknown kid refetches and finds it.
    jwks.set_keys([rsa_jwk(key, KID), rsa_jwk(other_key, "kid-2")])
    assert decode_bearer(token_for(other_key, kid="kid-2"), settings)["sub"] == "user_9"
    assert decode_bearer(token_for(key), settings)["sub"] == "user_9"  # both published: both verify
    assert jwks.requests == 2

    # Withdraw kid-1, add kid-3. Within the cooldown of that refetch kid-3 is not looked for...
    jwks.set_keys([rsa_jwk(other_key, "kid-2"), rsa_jwk(third_key, "kid-3")])
    newest = token_for(third_key, kid="kid-3")
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(newest, settings)
    assert jwks.requests == 2
    # ...and after it the next refetch finds kid-3 and drops the withdrawn kid-1.
    clock.advance(JWKS_MIN_REFETCH_SECONDS)
    assert decode_bearer(newest, settings)["sub"] == "user_9"
    assert jwks.requests == 3
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(token_for(key), settings)
    assert decode_bearer(token_for(other_key, kid="kid-2"), settings)["sub"] == "user_9"
    assert jwks.requests == 3


def test_keys_expire_after_their_lifespan(settings, jwks, key, clock):
    decode_bearer(token_for(key), settings)
    clock.advance(JWKS_LIFESPAN_SECONDS - 1)
    decode_bearer(token_for(key), settings)
    assert jwks.requests == 1
    clock.advance(2)
    decode_bearer(token_for(key), settings)
    assert jwks.requests == 2

    # Expired keys are not trusted when the refetch fails.
    jwks.fail_with(500, "down")
    clock.advance(JWKS_LIFESPAN_SECONDS)
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(token_for(key), settings)
    assert jwks.requests == 3


def test_a_failed_refetch_keeps_the_keys_already_held(settings, jwks, key, clock, logs):
    decode_bearer(token_for(key), settings)
    jwks.fail_with(503, "unavailable")
    clock.advance(JWKS_MIN_REFETCH_SECONDS)
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(random_kid_token(key), settings)
    assert jwks.requests == 2
    assert decode_bearer(token_for(key), settings)["sub"] == "user_9"
    assert jwks.requests == 2
    assert any("JWKS fetch" in record.getMessage() and "503" in record.getMessage() for record in logs.records)


# ------------------------------------------------------------------ the JWKS endpoint failing
FAILURES = {
    "http-500": (500, "internal error"),
    "http-404": (404, "not found"),
    "http-302": (302, ""),
    "garbage": (200, "<html>this is not json</html>"),
    "json-but-not-a-jwks": (200, '{"hello": "world"}'),
    "keys-not-a-list": (200, '{"keys": "abc"}'),
    "no-keys": (200, '{"keys": []}'),
    "only-unusable-keys": (200, '{"keys": [{"kty": "oct", "kid": "kid-1", "k": "c2VjcmV0"}, 7, null]}'),
    "oversized": (200, '{"keys": [' + " " * JWKS_MAX_BYTES + "]}"),
}


@pytest.mark.parametrize(("status", "body"), list(FAILURES.values()), ids=list(FAILURES))
def test_a_failing_jwks_endpoint_is_unauthenticated_and_logged_without_the_token(
    settings, jwks, key, clock, logs, capsys, status, body
):
    jwks.fail_with(status, body)
    token = token_for(key)
    with pytest.raises(Unauthenticated, match=INVALID) as raised:
        decode_bearer(token, settings)
    assert token not in str(raised.value)
    assert jwks.requests == 1
    warnings = [r for r in logs.records if r.levelno == logging.WARNING and "JWKS fetch" in r.getMessage()]
    assert len(warnings) == 1
    assert settings.jwt_jwks_url in warnings[0].getMessage()

    # Failures are bounded too: a down endpoint is not asked again on every request.
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(token, settings)
    assert jwks.requests == 1
    assert_not_logged(token, logs, capsys)

    # Once it recovers, the next fetch after the interval verifies.
    jwks.set_keys([rsa_jwk(key, KID)])
    clock.advance(JWKS_MIN_REFETCH_SECONDS)
    assert decode_bearer(token, settings)["sub"] == "user_9"
    assert jwks.requests == 2


def test_an_unreachable_jwks_endpoint_is_unauthenticated(settings, jwks, key, logs, capsys):
    jwks.stop()  # connection refused on the configured URL
    token = token_for(key)
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(token, settings)
    assert any(r.levelno == logging.WARNING and "JWKS fetch" in r.getMessage() for r in logs.records)
    assert_not_logged(token, logs, capsys)


# ------------------------------------------------------------------ tokens that must not verify
def _now() -> int:
    return int(time.time())


def _tampered(key, other_key) -> str:
    header, _, signature = token_for(key).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(accounts=["acct_admin"])).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


REJECTED: dict[str, Callable[[Any, Any], str]] = {
    "expired": lambda k, o: token_for(k, exp=_now() - 3600),
    "expired-beyond-leeway": lambda k, o: token_for(k, exp=_now() - LEEWAY - 10),
    "not-yet-valid": lambda k, o: token_for(k, nbf=_now() + 3600),
    "nbf-beyond-leeway": lambda k, o: token_for(k, nbf=_now() + LEEWAY + 30),
    "wrong-aud": lambda k, o: token_for(k, aud="someone-else"),
    "wrong-iss": lambda k, o: token_for(k, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Evil"),
    "no-exp": lambda k, o: token_for(k, exp=None),
    "no-iss": lambda k, o: token_for(k, iss=None),
    "no-aud": lambda k, o: token_for(k, aud=None),
    "no-sub": lambda k, o: token_for(k, sub=None),
    "empty-sub": lambda k, o: token_for(k, sub=""),
    "no-accounts": lambda k, o: token_for(k, accounts=None),
    "accounts-not-a-list": lambda k, o: token_for(k, accounts="acct_a"),
    "accounts-not-strings": lambda k, o: token_for(k, accounts=[1, 2]),
    "alg-none": lambda k, o: make_rsa_token(None, KID, claims(), alg="none"),
    "alg-None-capitalised": lambda k, o: make_rsa_token(None, KID, claims(), alg="none", headers={"alg": "None"}),
    "hs256-keyed-with-the-public-pem": lambda k, o: make_rsa_token(public_pem(k), KID, claims(), alg="HS256"),
    "hs512-keyed-with-the-public-pem": lambda k, o: make_rsa_token(public_pem(k), KID, claims(), alg="HS512"),
    "rs384": lambda k, o: make_rsa_token(k, KID, claims(), alg="RS384"),
    "rs512": lambda k, o: make_rsa_token(k, KID, claims(), alg="RS512"),
    "ps256": lambda k, o: make_rsa_token(k, KID, claims(), alg="PS256"),
    "no-kid": lambda k, o: token_for(k, kid=None),
    "empty-kid": lambda k, o: token_for(k, kid=""),
    "kid-not-a-string": lambda k, o: make_rsa_token(k, None, claims(), headers={"kid": 1}),
    "signed-by-another-key": lambda k, o: token_for(o),
    "another-key-embedded-as-jwk-header": lambda k, o: make_rsa_token(
        o, KID, claims(), headers={"jwk": rsa_jwk(o, KID)}
    ),
    "another-key-named-by-jku-header": lambda k, o: make_rsa_token(
        o, KID, claims(), headers={"jku": "http://127.0.0.1:9/evil.json"}
    ),
    "tampered-claims": _tampered,
    "signature-stripped": lambda k, o: token_for(k).rsplit(".", 1)[0] + ".",
    "not-a-jwt": lambda k, o: "not-a-jwt",
    "garbage-segments": lambda k, o: "a.b.c",
}


@pytest.mark.parametrize("make", list(REJECTED.values()), ids=list(REJECTED))
def test_tokens_that_do_not_verify_are_unauthenticated(settings, jwks, key, other_key, logs, capsys, make):
    token = make(key, other_key)
    with pytest.raises(Unauthenticated) as raised:
        decode_bearer(token, settings)
    assert token not in str(raised.value)
    assert jwks.requests <= 1
    assert_not_logged(token, logs, capsys)


def test_an_expired_token_says_so(settings, key):
    with pytest.raises(Unauthenticated, match="Bearer token has expired"):
        decode_bearer(token_for(key, exp=_now() - 3600), settings)


@pytest.mark.parametrize(
    "make",
    [
        lambda k: make_rsa_token(None, KID, claims(), alg="none"),
        lambda k: make_rsa_token(public_pem(k), KID, claims(), alg="HS256"),
        lambda k: make_rsa_token(k, KID, claims(), alg="RS384"),
        lambda k: make_rsa_token(k, KID, claims(), alg="PS256"),
        lambda k: token_for(k, kid=None),
    ],
    ids=["alg-none", "hs256", "rs384", "ps256", "no-kid"],
)
def test_headers_other_than_rs256_with_a_kid_never_reach_the_jwks_endpoint(settings, jwks, key, make):
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(make(key), settings)
    assert jwks.requests == 0


@pytest.mark.parametrize(
    "overrides",
    [{"exp": -(LEEWAY - 10)}, {"nbf": LEEWAY - 10}],
    ids=["expired-within-leeway", "nbf-within-leeway"],
)
def test_the_configured_leeway_is_allowed(settings, key, overrides):
    shifted = {name: _now() + offset for name, offset in overrides.items()}
    assert decode_bearer(token_for(key, **shifted), settings)["sub"] == "user_9"


# ------------------------------------------------------------------ keys in the JWKS that must not be used
def _small_key_case(key):
    small = generate_rsa_key(1024)
    return [rsa_jwk(small, KID)], make_rsa_token(small, KID, claims())


def _oct_case(key):
    secret = public_pem(key)
    oct_jwk = {"kty": "oct", "kid": KID, "alg": "HS256", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
    return [oct_jwk], make_rsa_token(secret, KID, claims(), alg="HS256")


UNUSABLE_JWKS: dict[str, Callable[[Any], tuple[list[dict[str, Any]], str]]] = {
    "alg-rs384": lambda k: ([rsa_jwk(k, KID, alg="RS384")], token_for(k)),
    "alg-hs256": lambda k: ([rsa_jwk(k, KID, alg="HS256")], token_for(k)),
    "alg-none": lambda k: ([rsa_jwk(k, KID, alg="none")], token_for(k)),
    "use-enc": lambda k: ([rsa_jwk(k, KID, use="enc")], token_for(k)),
    "kty-ec": lambda k: ([rsa_jwk(k, KID, kty="EC")], token_for(k)),
    "key-ops-encrypt-only": lambda k: ([rsa_jwk(k, KID, key_ops=["encrypt"])], token_for(k)),
    "no-kid-in-jwk": lambda k: ([{m: v for m, v in rsa_jwk(k, KID).items() if m != "kid"}], token_for(k)),
    "no-modulus": lambda k: ([rsa_jwk(k, KID, n=None)], token_for(k)),
    "1024-bit-rsa": _small_key_case,
    "oct-key-holding-the-public-pem": _oct_case,
}


@pytest.mark.parametrize("case", list(UNUSABLE_JWKS.values()), ids=list(UNUSABLE_JWKS))
def test_jwks_keys_unfit_for_rs256_signatures_are_never_used(settings, jwks, key, case):
    published, token = case(key)
    jwks.set_keys(published)
    with pytest.raises(Unauthenticated, match=INVALID):
        decode_bearer(token, settings)


@pytest.mark.parametrize(
    "members",
    [{}, {"alg": None}, {"use": None}, {"alg": None, "use": None}, {"key_ops": ["verify"]}],
    ids=["cognito-style", "no-alg", "no-use", "neither", "key-ops-verify"],
)
def test_rsa_signing_keys_are_used_whatever_optional_members_they_omit(settings, jwks, key, members):
    junk = [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, {"kty": "EC", "kid": "ec"}, "not-a-jwk"]
    jwks.set_keys([*junk, rsa_jwk(key, KID, **members)])
    assert decode_bearer(token_for(key), settings)["sub"] == "user_9"
