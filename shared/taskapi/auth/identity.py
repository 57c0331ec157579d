"""The one verification module: turns request credentials into a Principal. The FastAPI
dependency calls it today; the API Gateway authorizer will call the same function."""

from __future__ import annotations

from taskapi.auth.api_keys import ApiKeyStore, key_matches, parse_key
from taskapi.auth.principal import Principal
from taskapi.auth.tokens import decode_bearer
from taskapi.errors import Forbidden, Unauthenticated
from taskapi.settings import Settings

INVALID_KEY = "Invalid API key"


def authenticate_api_key(key: str, store: ApiKeyStore) -> Principal:
    parsed = parse_key(key)
    if parsed is None:
        raise Unauthenticated(INVALID_KEY)
    record = store.get(parsed.key_id)
    if record is None or not key_matches(key, record, parsed):
        raise Unauthenticated(INVALID_KEY)
    if record.revoked_at is not None:
        raise Unauthenticated("API key has been revoked")
    return Principal(account_id=record.account_id, user_id=f"api_key_user_{record.account_id}", auth_method="api_key")


def authenticate(
    *,
    authorization: str | None,
    api_key: str | None,
    account_id: str | None,
    settings: Settings,
    key_store: ApiKeyStore,
) -> Principal:
    """X-API-Key wins when present (its account is its own; X-Account-ID is ignored).
    Otherwise a bearer token plus X-Account-ID, which the token's `accounts` must contain."""
    if api_key:
        return authenticate_api_key(api_key.strip(), key_store)
    if not authorization:
        raise Unauthenticated("Not authenticated: send X-API-Key, or Authorization: Bearer and X-Account-ID")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    claims = decode_bearer(token.strip(), settings)
    if not account_id:
        raise Unauthenticated("X-Account-ID header is required with a bearer token")
    if account_id not in claims["accounts"]:
        raise Forbidden(f"Token does not grant access to account {account_id}")
    return Principal(account_id=account_id, user_id=claims["sub"], auth_method="jwt")
