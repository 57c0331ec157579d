"""Bearer JWTs: verification (algorithm pinned; signature, exp, nbf, iss, aud) and local issuing.

PyJWT is imported on first use, so API key callers never pay for it on a cold start."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from taskapi.errors import Unauthenticated
from taskapi.settings import Settings


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> Any:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def decode_bearer(token: str, settings: Settings) -> dict[str, Any]:
    """The verified claims of a bearer token, or Unauthenticated."""
    import jwt

    algorithm = settings.bearer_algorithm
    if algorithm is None:
        raise Unauthenticated("Bearer tokens are not configured for this deployment; use an API key")
    try:
        if algorithm == "RS256":
            key: Any = _jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
        else:
            key = settings.jwt_secret.get_secret_value()
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("Bearer token has expired") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthenticated("Invalid bearer token") from exc
    accounts = claims.get("accounts")
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise Unauthenticated("Bearer token carries no 'accounts' list")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("Bearer token carries no subject")
    return claims


def issue_local_token(settings: Settings, *, subject: str, accounts: list[str], ttl_seconds: int = 86_400) -> str:
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
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
