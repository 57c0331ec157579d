"""Tenant isolation, part B: credentials that must not act for account B (or at all) answer the
right status over a representative set of endpoints, through the app verifying credentials
itself (TestClient, HS256 local mode) and through API Gateway's shape (the REQUEST authorizer
event through functions/authorizer; only on Allow a REST proxy event with its context through
functions/api). Each case asserts that nothing anywhere changed (part C) and that no credential
or whole event was logged at DEBUG (part D). RS256-only cases (HS256 keyed with the RSA public
key, the JWKS) are in tests/integration/auth/test_authorizer_rs256.py."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from taskapi.http.app import create_app
from taskapi.models.domain import utc_now
from taskapi.settings import get_settings
from tests import factories
from tests.support.isolation import (
    ACCOUNT_A,
    ACCOUNT_B,
    SHARED_ID,
    UNAUTHORIZED_BODY,
    Gateway,
    Local,
    Logs,
    Reply,
    World,
    account_part,
    build_world,
    captured_logs,
    differences,
    load_handlers,
    local_client,
    snapshot,
)
from tests.support.jwks import generate_rsa_key, make_rsa_token, public_pem


@pytest.fixture(scope="module")
def handlers() -> tuple[ModuleType, ModuleType]:
    return load_handlers()


@pytest.fixture(scope="module")
def local_app() -> Iterator[Any]:
    yield from local_client()


_RSA: list[Any] = []


def _rsa() -> Any:
    """One RSA key for the module, made on first use (not at collection)."""
    if not _RSA:
        _RSA.append(generate_rsa_key())
    return _RSA[0]


# ------------------------------------------------------------------ tokens, made by hand
def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid local token for A; an override of None drops the claim."""
    settings = get_settings()
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-a",
        "accounts": [ACCOUNT_A],
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def hs256(secret: str | bytes | None = None, alg: str = "HS256", **overrides: Any) -> str:
    key = secret if secret is not None else get_settings().jwt_secret.get_secret_value()
    return make_rsa_token(key, None, claims(**overrides), alg=alg)


def _tampered(world: World) -> str:
    """A's valid token with its payload swapped for one granting B (the signature kept)."""
    header, _, signature = world.token_a.split(".")
    payload = make_rsa_token(None, None, claims(accounts=[ACCOUNT_B]), alg="none").split(".")[1]
    return f"{header}.{payload}.{signature}"


def _revoked_key_of_b(world: World) -> dict[str, str]:
    headers = world.fakes.api_key(ACCOUNT_B, "enterprise")
    key = world.remember_key(headers["X-API-Key"])
    world.fakes.keys.revoke(key.split(".")[2], at=utc_now() - timedelta(seconds=1))
    return headers


def _key_parts(world: World, account: str) -> tuple[str, str, str, str]:
    key = (world.key_a if account == ACCOUNT_A else world.key_b)["X-API-Key"]
    prefix, acct, key_id, secret = key.split(".")
    return prefix, acct, key_id, secret


def _key(world: World, text: str) -> dict[str, str]:
    return {"X-API-Key": world.remember_key(text)}


def _random_secret() -> str:
    return secrets.token_urlsafe(32)


Credential = Callable[[World], dict[str, str]]

FORGED: dict[str, Credential] = {
    # valid credentials of A, asking to act for B
    "bearer-for-a-naming-b": lambda w: w.bearer(w.token_a, ACCOUNT_B),
    "bearer-for-a-naming-b-padded": lambda w: w.bearer(w.token_a, f"  {ACCOUNT_B} "),
    "bearer-for-a-and-c-naming-b": lambda w: w.bearer(hs256(accounts=[ACCOUNT_A, "acct_c"]), ACCOUNT_B),
    "api-key-of-a-naming-b": lambda w: {**w.key_a, "X-Account-ID": ACCOUNT_B},
    "api-key-of-a-with-bearer-for-a-naming-b": lambda w: {**w.key_a, **w.bearer(w.token_a, ACCOUNT_B)},
}
"""Authenticated, but not granted account B: 403."""

INVALID: dict[str, Credential] = {
    # bearer tokens that must not verify (each names B and would grant B if it did)
    "expired": lambda w: w.bearer(hs256(accounts=[ACCOUNT_B], exp=int(time.time()) - 3600), ACCOUNT_B),
    "not-yet-valid": lambda w: w.bearer(hs256(accounts=[ACCOUNT_B], nbf=int(time.time()) + 3600), ACCOUNT_B),
    "wrong-aud": lambda w: w.bearer(hs256(accounts=[ACCOUNT_B], aud="someone-else"), ACCOUNT_B),
    "wrong-iss": lambda w: w.bearer(hs256(accounts=[ACCOUNT_B], iss="https://evil.example"), ACCOUNT_B),
    "alg-none": lambda w: w.bearer(make_rsa_token(None, None, claims(accounts=[ACCOUNT_B]), alg="none"), ACCOUNT_B),
    "wrong-hs256-secret": lambda w: w.bearer(hs256("not-the-secret-" * 4, accounts=[ACCOUNT_B]), ACCOUNT_B),
    "hs256-keyed-with-an-rsa-public-pem": lambda w: w.bearer(
        hs256(public_pem(_rsa()), accounts=[ACCOUNT_B]), ACCOUNT_B
    ),
    "hs512-with-the-right-secret": lambda w: w.bearer(hs256(alg="HS512", accounts=[ACCOUNT_B]), ACCOUNT_B),
    "rs256-signed": lambda w: w.bearer(make_rsa_token(_rsa(), "kid-1", claims(accounts=[ACCOUNT_B])), ACCOUNT_B),
    "no-accounts-claim": lambda w: w.bearer(hs256(accounts=None), ACCOUNT_B),
    "accounts-a-string-naming-b": lambda w: w.bearer(hs256(accounts=ACCOUNT_B), ACCOUNT_B),
    "no-sub": lambda w: w.bearer(hs256(accounts=[ACCOUNT_B], sub=None), ACCOUNT_B),
    "no-exp": lambda w: w.bearer(hs256(accounts=[ACCOUNT_B], exp=None), ACCOUNT_B),
    "tampered-payload": lambda w: w.bearer(_tampered(w), ACCOUNT_B),
    "signature-stripped": lambda w: w.bearer(w.token_b.rsplit(".", 1)[0] + ".", ACCOUNT_B),
    # bearer requests missing a part
    "bearer-for-b-without-account-id": lambda w: w.bearer(w.token_b, None),
    "account-id-only": lambda w: {"X-Account-ID": ACCOUNT_B},
    "no-credentials": lambda w: {},
    "basic-auth": lambda w: {"Authorization": "Basic dXNlcjpwYXNz", "X-Account-ID": ACCOUNT_B},
    # API keys that must not verify
    "revoked-key-of-b": _revoked_key_of_b,
    "b-prefix-wrong-secret": lambda w: _key(w, ".".join([*_key_parts(w, ACCOUNT_B)[:3], _random_secret()])),
    "b-key-id-with-a-secret": lambda w: _key(w, ".".join([*_key_parts(w, ACCOUNT_B)[:3], _key_parts(w, ACCOUNT_A)[3]])),
    "a-key-relabelled-for-b": lambda w: _key(w, ".".join(["tk", ACCOUNT_B, *_key_parts(w, ACCOUNT_A)[2:]])),
    "key-id-uppercased": lambda w: _key(
        w, ".".join(["tk", ACCOUNT_B, _uppercased(_key_parts(w, ACCOUNT_B)[2]), _key_parts(w, ACCOUNT_B)[3]])
    ),
    "key-id-of-17-digits": lambda w: _key(
        w, ".".join(["tk", ACCOUNT_B, _key_parts(w, ACCOUNT_B)[2] + "0", _key_parts(w, ACCOUNT_B)[3]])
    ),
    "enrolment-item-as-key-id": lambda w: _key(w, f"tk.{ACCOUNT_B}.account#{ACCOUNT_B}.{_random_secret()}"),
    "short-secret": lambda w: _key(w, ".".join([*_key_parts(w, ACCOUNT_B)[:3], "tooShortSecret"])),  # < 22 chars
    "metering-key-of-b": lambda w: _key(w, w.enrolments[ACCOUNT_B].metering_key),
    "stored-hash-of-b-key": lambda w: _key(w, w.fakes.keys.get(_key_parts(w, ACCOUNT_B)[2]).key_hash),
    "b-key-with-trailing-byte": lambda w: _key(w, w.key_b["X-API-Key"] + "x"),
}
"""Missing or bad credentials: 401."""


def _uppercased(key_id: str) -> str:
    """The key id with its hex letters upper-cased; a key id of digits only (token_hex can draw one,
    about 1 in 1,800) gets its last digit written as an upper-case hex letter, so the variant never
    equals the real id."""
    upper = key_id.upper()
    return upper if upper != key_id else key_id[:-1] + "ABCDEFABCD"[int(key_id[-1])]


REFUSED: dict[str, tuple[Credential, int]] = {
    **{name: (make, 403) for name, make in FORGED.items()},
    **{name: (make, 401) for name, make in INVALID.items()},
}


# ------------------------------------------------------------------ endpoints
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    query: dict[str, str] | None = None
    body: Any = None
    ok: int = 200
    """What A's own valid credentials answer (the control that the request itself is sound)."""


def endpoints(world: World) -> dict[str, Endpoint]:
    """Requests that would read or change B's data if a refused credential got through."""
    return {
        "get-one": Endpoint("GET", "/api/tasks/b-pending", ok=404),
        "list": Endpoint("GET", "/api/tasks", query={"task_source_group_id": "grp-b"}),
        "count": Endpoint("GET", "/api/tasks/count/total", query={"status": "PENDING"}),
        "bulk-create": Endpoint("POST", "/api/tasks/bulk", body=factories.bulk(factories.quiz("forged-1"))),
        "bulk-cancel": Endpoint("POST", "/api/tasks/bulk-cancel", body={"task_ids": ["b-pending", SHARED_ID]}),
        "bulk-regenerate": Endpoint(
            "POST", "/api/tasks/bulk-regenerate", body={"task_ids": ["b-completed", "b-failed"], "force": True}
        ),
        "queue-status": Endpoint("GET", "/api/tasks/queue/status"),
        "queue-restart": Endpoint("POST", "/api/tasks/queue/restart"),
        "upload-create": Endpoint("POST", "/api/uploads", body={"format": "jsonl"}, ok=201),
        "upload-get": Endpoint("GET", f"/api/uploads/{world.upload_b}", ok=404),
    }


ENDPOINTS = ("get-one", "list", "count", "bulk-create", "bulk-cancel", "bulk-regenerate", "queue-status", "upload-get")
"""The representative set every credential case runs against; every route of the app (restart,
process-pending, requeue-pending, create one, create upload too) gets the main cases below."""


@dataclass
class Env:
    world: World
    transport: Local | Gateway
    logs: Logs

    def call(self, endpoint: Endpoint, headers: dict[str, str], **extra: Any) -> Reply:
        return self.transport(
            endpoint.method, endpoint.path, headers=headers, query=endpoint.query, body=endpoint.body, **extra
        )


@pytest.fixture(params=("local", "gateway"))
def env(request, handlers, local_app, capsys, caplog) -> Iterator[Env]:
    world = build_world()
    transport: Local | Gateway = Local(local_app) if request.param == "local" else Gateway(*handlers)
    transport.bind(world)
    with captured_logs(capsys, caplog) as logs:
        yield Env(world, transport, logs)
        logs.assert_clean(world.secrets)


def assert_refused(env: Env, reply: Reply, status: int, headers: dict[str, str]) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert isinstance(reply.body, dict)
    assert reply.body.get("detail")
    if isinstance(env.transport, Gateway):
        assert not reply.reached_api  # the authorizer refused: the API function never ran
        if status == 401:
            assert reply.body == UNAUTHORIZED_BODY
    elif status == 401:
        assert reply.headers.get("www-authenticate") == "Bearer"
    for value in headers.values():
        for part in (value, value.split(" ")[-1], value.split(".")[-1]):
            if len(part) >= 16:
                assert part not in reply.text  # no credential echoed back


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credential", list(REFUSED))
def test_refused_credentials_answer_their_status_and_change_nothing(env, credential, endpoint):
    make, status = REFUSED[credential]
    headers = make(env.world)
    before = snapshot(env.world.fakes)
    reply = env.call(endpoints(env.world)[endpoint], headers)
    assert_refused(env, reply, status, headers)
    after = snapshot(env.world.fakes)
    assert after == before, f"changed: {differences(before, after)}"
    env.logs.assert_clean(env.world.secrets)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("kind", ["api-key-of-a", "bearer-for-a"])
def test_control_a_own_credentials_reach_the_endpoint_and_leave_b_alone(env, kind, endpoint):
    """The same requests with A's valid credentials are sound: they reach the API and answer."""
    headers = env.world.key_a if kind == "api-key-of-a" else env.world.bearer_a
    before = snapshot(env.world.fakes)
    target = endpoints(env.world)[endpoint]
    reply = env.call(target, headers)
    assert reply.status == target.ok, reply.body
    assert reply.reached_api
    assert ACCOUNT_B not in reply.text
    assert account_part(snapshot(env.world.fakes), ACCOUNT_B) == account_part(before, ACCOUNT_B)
    env.logs.assert_clean(env.world.secrets)


# ------------------------------------------------------------------ headers sent twice (API Gateway only)
AMBIGUOUS: dict[str, Callable[[World], dict[str, list[str]]]] = {
    "two-api-keys": lambda w: {"X-API-Key": [w.key_a["X-API-Key"], w.key_b["X-API-Key"]]},
    "two-account-ids": lambda w: {"X-Account-ID": [ACCOUNT_A, ACCOUNT_B]},
    "two-bearer-tokens": lambda w: {"Authorization": [f"Bearer {w.token_a}", f"Bearer {w.token_b}"]},
}


@pytest.fixture
def gateway_env(handlers, capsys, caplog) -> Iterator[Env]:
    world = build_world()
    transport = Gateway(*handlers)
    transport.bind(world)
    with captured_logs(capsys, caplog) as logs:
        yield Env(world, transport, logs)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("ambiguity", list(AMBIGUOUS))
def test_a_credential_header_sent_twice_with_different_values_is_401(gateway_env, ambiguity, endpoint):
    env = gateway_env
    headers = env.world.bearer_a  # single-valued headers: A's own, valid
    before = snapshot(env.world.fakes)
    reply = env.call(endpoints(env.world)[endpoint], headers, multi_value_headers=AMBIGUOUS[ambiguity](env.world))
    assert_refused(env, reply, 401, headers)
    assert snapshot(env.world.fakes) == before
    env.logs.assert_clean(env.world.secrets)


# ------------------------------------------------------------------ every route, discovered
def _routes() -> list[tuple[str, str]]:
    """Every operation of the app's OpenAPI document under /api/, and the reference's /task/ spellings."""
    paths = create_app().openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, item in paths.items()
        if path.startswith(("/api/", "/task/"))
        for method in item
    )


ROUTES = _routes()
EVERY_ROUTE_CREDENTIALS = (
    "no-credentials",
    "bearer-for-a-naming-b",
    "api-key-of-a-naming-b",
    "expired",
    "revoked-key-of-b",
    "b-prefix-wrong-secret",
)


def test_the_route_list_is_what_the_matrix_expects():
    """A new route fails here until it is looked at (and is then covered by the test below)."""
    assert ROUTES == [
        ("DELETE", "/api/webhooks/{webhook_id}"),
        ("GET", "/api/events"),
        ("GET", "/api/tasks"),
        ("GET", "/api/tasks/count/total"),
        ("GET", "/api/tasks/queue/status"),
        ("GET", "/api/tasks/{task_id}"),
        ("GET", "/api/uploads/{upload_id}"),
        ("GET", "/api/webhooks"),
        ("GET", "/api/webhooks/{webhook_id}"),
        ("GET", "/api/webhooks/{webhook_id}/deliveries"),
        ("PATCH", "/api/tasks/{task_id}"),
        ("PATCH", "/api/webhooks/{webhook_id}"),
        ("POST", "/api/task/requeue-pending"),
        ("POST", "/api/tasks"),
        ("POST", "/api/tasks/bulk"),
        ("POST", "/api/tasks/bulk-cancel"),
        ("POST", "/api/tasks/bulk-regenerate"),
        ("POST", "/api/tasks/queue/process-pending"),
        ("POST", "/api/tasks/queue/restart"),
        ("POST", "/api/tasks/requeue-pending"),
        ("POST", "/api/uploads"),
        ("POST", "/api/webhooks"),
        ("POST", "/api/webhooks/{webhook_id}/replay"),
        ("POST", "/api/webhooks/{webhook_id}/rotate-secret"),
        ("POST", "/task/requeue-pending"),
    ]


@pytest.mark.parametrize("credential", EVERY_ROUTE_CREDENTIALS)
@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_refuses_before_reading_the_body(env, method, route, credential):
    """Every /api route, with a body that is not even valid: credentials are checked first."""
    make, status = REFUSED[credential]
    headers = make(env.world)
    path = route.replace("{task_id}", "b-pending").replace("{upload_id}", env.world.upload_b)
    before = snapshot(env.world.fakes)
    reply = env.transport(method, path, headers=headers, body={} if method == "POST" else None)
    assert_refused(env, reply, status, headers)
    assert snapshot(env.world.fakes) == before
    env.logs.assert_clean(env.world.secrets)
