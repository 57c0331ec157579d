"""Bearer JWTs: verification (algorithm pinned; signature, exp, nbf, iss, aud) and local issuing.

RS256 keys come from the configured JWKS URL (Cognito's `.well-known/jwks.json` or any issuer
publishing RSA signing keys), cached per URL by JwksCache with bounded refetching.

PyJWT (and urllib.request) are imported on first use, so API key callers never pay for them on a
cold start."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from taskapi.auth.principal import OPERATOR, TENANT, Role
from taskapi.errors import Unauthenticated
from taskapi.settings import Settings

log = logging.getLogger(__name__)

INVALID_BEARER = "Invalid bearer token"

JWKS_LIFESPAN_SECONDS = 3600.0
"""Fetched keys are trusted this long; after it the next token fetches the set again."""
JWKS_MIN_REFETCH_SECONDS = 30.0
"""At most one refetch for unknown kids, and no retry after a failed fetch, within this interval."""
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_MAX_BYTES = 256 * 1024
"""A JWKS document larger than this is refused (Cognito's holds two keys, about 1 kB)."""
MIN_RSA_KEY_BITS = 2048
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class JwksUnavailable(Exception):
    """A JWKS fetch failed or held no usable key. The message names the reason, never a token."""


class JwksCache:
    """RS256 public keys by kid from one JWKS URL.

    The set is fetched when first needed and again once `lifespan` seconds old. A kid that is not
    in a fresh set triggers a refetch (that is how a rotated key is picked up), but such a refetch,
    or any failed fetch, starts a cooldown of `min_refetch_interval` seconds in which nothing is
    fetched: tokens with made-up kids, or a JWKS endpoint that is down, cost at most one request
    per interval. A failed fetch keeps the keys already held (until their lifespan ends). The
    attributes may be changed after construction (tests do)."""

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = JWKS_LIFESPAN_SECONDS,
        min_refetch_interval: float = JWKS_MIN_REFETCH_SECONDS,
        timeout: float = JWKS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.lifespan = lifespan
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self.clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._cooldown_from: float | None = None
        """When the last refetch for an unknown kid, or the last failed fetch, happened."""
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any | None:
        """The public key for kid, or None (unknown kid, or no usable key set right now)."""
        with self._lock:
            now = self.clock()
            refetch = self._fresh(now)  # the set is fresh, so the kid is unknown: a refetch
            if refetch and kid in self._keys:
                return self._keys[kid]
            if self._cooldown_from is None or now - self._cooldown_from >= self.min_refetch_interval:
                try:
                    keys = self._fetch()
                except JwksUnavailable as exc:
                    self._cooldown_from = now
                    log.warning("JWKS fetch from %s failed (%s); keeping the keys already held, if any", self.url, exc)
                else:
                    if refetch:
                        self._cooldown_from = now
                    self._keys, self._fetched_at = keys, now
                    log.info("JWKS fetched from %s: %d RS256 signing key(s)", self.url, len(keys))
            return self._keys.get(kid) if self._fresh(now) else None

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self.lifespan

    def _fetch(self) -> dict[str, Any]:
        import http.client
        import json
        import urllib.request
        from urllib.parse import urlsplit

        if urlsplit(self.url).scheme not in ("https", "http"):
            raise JwksUnavailable("the JWKS URL must be http(s)")

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url, headers={"Accept": "application/json", "User-Agent": "taskapi-jwks"}
        )
        try:
            with urllib.request.build_opener(NoRedirects()).open(request, timeout=self.timeout) as response:
                status = response.status
                body = response.read(JWKS_MAX_BYTES + 1)
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError, HTTPError and timeouts are OSError
            raise JwksUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise JwksUnavailable(f"HTTP status {status}")
        if len(body) > JWKS_MAX_BYTES:
            raise JwksUnavailable(f"response larger than {JWKS_MAX_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise JwksUnavailable("response is not JSON") from exc
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksUnavailable("response has no 'keys' list")
        keys: dict[str, Any] = {}
        for entry in entries:
            usable = _rs256_signing_key(entry)
            if usable is not None:
                keys.setdefault(*usable)
        if not keys:
            raise JwksUnavailable(f"no usable RS256 signing key among {len(entries)} key(s)")
        return keys


def _rs256_signing_key(jwk: object) -> tuple[str, Any] | None:
    """(kid, RSA public key) for a JWK fit to verify RS256 signatures, else None.

    Only kty RSA with a kid; "alg", "use" and "key_ops" must allow RS256 signature verification
    when present; at least MIN_RSA_KEY_BITS. Private members of a JWK are never read."""
    import jwt

    if not isinstance(jwk, dict):
        return None
    kid, n, e = jwk.get("kid"), jwk.get("n"), jwk.get("e")
    if not (isinstance(kid, str) and kid and isinstance(n, str) and isinstance(e, str)):
        return None
    if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256" or jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    try:
        key = jwt.PyJWK({"kty": "RSA", "n": n, "e": e}, algorithm="RS256").key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if getattr(key, "key_size", 0) < MIN_RSA_KEY_BITS:
        return None
    return kid, key


@lru_cache(maxsize=4)
def jwks_cache(url: str) -> JwksCache:
    """The one key cache of a JWKS URL (per process: a warm Lambda container reuses it)."""
    return JwksCache(url)


def _rs256_key(token: str, jwks_url: str) -> Any:
    """The public key a token's header names, or Unauthenticated. Only RS256 headers with a kid
    get as far as the key cache, so other algorithms never cause a fetch."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthenticated(INVALID_BEARER) from exc
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str) or not kid:
        raise Unauthenticated(INVALID_BEARER)
    key = jwks_cache(jwks_url).key(kid)
    if key is None:
        raise Unauthenticated(INVALID_BEARER)
    return key


def decode_bearer(token: str, settings: Settings) -> dict[str, Any]:
    """The verified claims of a bearer token, or Unauthenticated."""
    import jwt

    algorithm = settings.bearer_algorithm
    if algorithm is None:
        raise Unauthenticated("Bearer tokens are not configured for this deployment; use an API key")
    if algorithm == "RS256":
        key: Any = _rs256_key(token, settings.jwt_jwks_url)
    else:
        key = settings.jwt_secret.get_secret_value()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={
                "verify_signature": True,
                "verify_exp": True,
                "verify_nbf": True,
                "verify_iss": True,
                "verify_aud": True,
                "require": REQUIRED_CLAIMS,
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("Bearer token has expired") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthenticated(INVALID_BEARER) from exc
    accounts = claims.get("accounts")
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise Unauthenticated("Bearer token carries no 'accounts' list")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("Bearer token carries no subject")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("Bearer token's 'roles' claim must be a list of strings")
    return claims


def role_of(claims: dict[str, Any]) -> Role:
    """operator when the verified token's `roles` list holds "operator"; tenant otherwise."""
    return OPERATOR if OPERATOR in claims.get("roles", []) else TENANT


def issue_local_token(
    settings: Settings,
    *,
    subject: str,
    accounts: list[str],
    ttl_seconds: int = 86_400,
    roles: list[str] | None = None,
) -> str:
    """An HS256 token for the local stack and tests (the CLI's `taskapi token`)."""
    import jwt

    if settings.bearer_algorithm != "HS256":
        raise RuntimeError("local tokens need HS256 (no TASKAPI_JWT_JWKS_URL, a secret fit for the environment)")
    now = int(time.time())
    claims = {
        "sub": subject,
        "accounts": accounts,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
    }
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
