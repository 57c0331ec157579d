"""The one verification module: turns request credentials into a Principal. The FastAPI
dependency (uvicorn locally, tests) and the API Gateway Lambda authorizer both call it, and the
authorizer's context is read back into a Principal here too, so the rules exist once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, get_args

from taskapi.auth.api_keys import ApiKeyStore, key_matches, parse_key
from taskapi.auth.principal import OPERATOR, TENANT, AuthMethod, Principal
from taskapi.auth.tokens import decode_bearer, role_of
from taskapi.errors import Forbidden, Unauthenticated
from taskapi.models.domain import utc_now
from taskapi.settings import PLANS, Settings

INVALID_KEY = "Invalid API key"
NOT_AUTHENTICATED = "Not authenticated: send X-API-Key, or Authorization: Bearer and X-Account-ID"
KEY_FOR_OTHER_ACCOUNT = "This API key acts only for its own account; X-Account-ID names another"


def authenticate_api_key(key: str, store: ApiKeyStore, account_id: str | None = None) -> Principal:
    parsed = parse_key(key)
    if parsed is None:
        raise Unauthenticated(INVALID_KEY)
    record = store.get(parsed.key_id)
    if record is None or not key_matches(key, record, parsed):
        raise Unauthenticated(INVALID_KEY)
    if record.is_revoked(utc_now()):
        raise Unauthenticated("API key has been revoked")
    if account_id and account_id != record.account_id:
        raise Forbidden(KEY_FOR_OTHER_ACCOUNT)
    return Principal(
        account_id=record.account_id,
        user_id=f"api_key_user_{record.account_id}",
        auth_method="api_key",
        plan=record.plan,
        role=record.role,
    )


def authenticate(
    *,
    authorization: str | None,
    api_key: str | None,
    account_id: str | None,
    settings: Settings,
    key_store: ApiKeyStore,
) -> Principal:
    """X-API-Key wins when present: its account is its own, and an X-Account-ID naming another
    account is refused (403) rather than ignored. Otherwise a bearer token plus X-Account-ID,
    which the token's `accounts` must contain."""
    if api_key and api_key.strip():
        return authenticate_api_key(api_key.strip(), key_store, account_id.strip() if account_id else None)
    if not authorization or not authorization.strip():
        raise Unauthenticated(NOT_AUTHENTICATED)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    claims = decode_bearer(token.strip(), settings)
    account_id = account_id.strip() if account_id else None
    if not account_id:
        raise Unauthenticated("X-Account-ID header is required with a bearer token")
    if account_id not in claims["accounts"]:
        raise Forbidden(f"Token does not grant access to account {account_id}")
    return Principal(account_id=account_id, user_id=claims["sub"], auth_method="jwt", role=role_of(claims))


@dataclass(frozen=True)
class Grant:
    """What the API Gateway authorizer answers for an allowed request."""

    principal: Principal
    usage_identifier_key: str
    """The API Gateway API key that meters the call on its usage plan (API key source AUTHORIZER):
    the caller's own API key, or for bearer tokens the account's metering key."""


def authorize(
    *,
    authorization: str | None,
    api_key: str | None,
    account_id: str | None,
    settings: Settings,
    key_store: ApiKeyStore,
) -> Grant:
    """authenticate(), plus the usage plan key API Gateway meters the call against. A bearer
    caller's account must be enrolled on a plan (`taskapi accounts enrol`): unmetered calls
    would escape every usage plan."""
    principal = authenticate(
        authorization=authorization, api_key=api_key, account_id=account_id, settings=settings, key_store=key_store
    )
    if principal.auth_method == "api_key":
        return Grant(principal=principal, usage_identifier_key=(api_key or "").strip())
    enrolment = key_store.get_account(principal.account_id)
    if enrolment is None:
        raise Forbidden(f"Account {principal.account_id} is not enrolled on a usage plan; ask an operator to enrol it")
    return Grant(principal=replace(principal, plan=enrolment.plan), usage_identifier_key=enrolment.metering_key)


def plan_of(principal: Principal, key_store: ApiKeyStore, settings: Settings) -> str:
    """The caller's usage plan: the key's, else the account's enrolment, else the default."""
    if principal.plan:
        return principal.plan
    enrolment = key_store.get_account(principal.account_id)
    return enrolment.plan if enrolment is not None else settings.default_plan


# ---------------------------------------------------------------- the authorizer's context
# API Gateway passes these (strings only) to the API function as requestContext.authorizer.


def to_context(principal: Principal) -> dict[str, str]:
    context = {
        "account_id": principal.account_id,
        "user_id": principal.user_id,
        "auth_method": principal.auth_method,
        "role": principal.role,
    }
    if principal.plan:
        context["plan"] = principal.plan
    return context


def from_context(context: Mapping[str, Any] | None) -> Principal | None:
    """The principal an authorizer put in the request context, or None if there is none (a
    request that did not pass an authorizer: the caller must then verify credentials itself)."""
    if not context:
        return None
    account_id, user_id, method = context.get("account_id"), context.get("user_id"), context.get("auth_method")
    if not (isinstance(account_id, str) and account_id and isinstance(user_id, str) and user_id):
        return None
    if method not in get_args(AuthMethod):
        return None
    plan = context.get("plan")
    auth_method: AuthMethod = "api_key" if method == "api_key" else "jwt"
    return Principal(
        account_id=account_id,
        user_id=user_id,
        auth_method=auth_method,
        plan=plan if isinstance(plan, str) and plan in PLANS else None,
        # Only an explicit "operator" grants it: a context without a role is a tenant's.
        role=OPERATOR if context.get("role") == OPERATOR else TENANT,
    )
