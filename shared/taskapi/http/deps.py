"""FastAPI dependencies: settings, adapters (the cached factories of taskapi.wiring) and the
caller's principal; tests override them with app.dependency_overrides instead of patching."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from taskapi.auth.api_keys import ApiKeyStore
from taskapi.auth.identity import authenticate, from_context, plan_of
from taskapi.auth.principal import Principal
from taskapi.counting.store import CounterStore
from taskapi.errors import Forbidden
from taskapi.generation.choice import ProviderPolicy
from taskapi.queueing.control import ProcessingControl
from taskapi.queueing.queues import TaskQueue
from taskapi.results import ResultStore
from taskapi.services.tasks import Ceiling
from taskapi.settings import Settings, get_settings, max_unfinished_tasks
from taskapi.store.base import TaskRepository
from taskapi.webhooks import wiring as webhook_wiring
from taskapi.webhooks.eventstore import EventStore
from taskapi.webhooks.queue import DeliveryQueue
from taskapi.webhooks.store import WebhookStore
from taskapi.wiring import (
    get_counter_store,
    get_key_store,
    get_processing_control,
    get_queue,
    get_repository,
    get_results,
)

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key; it names its own account.")
_bearer = HTTPBearer(auto_error=False, description="A JWT whose `accounts` claim lists X-Account-ID.")


def get_principal(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    key_store: Annotated[ApiKeyStore, Depends(get_key_store)],
    api_key: Annotated[str | None, Security(_api_key)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    x_account_id: Annotated[
        str | None, Header(description="With a bearer token: the account to act for. Ignored with an API key.")
    ] = None,
) -> Principal:
    # Behind API Gateway the authorizer has verified the credentials: Mangum hands over its event.
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        principal = from_context((event.get("requestContext") or {}).get("authorizer"))
        if principal is not None:
            return principal
    authorization = f"{bearer.scheme} {bearer.credentials}" if bearer else None
    return authenticate(
        authorization=authorization,
        api_key=api_key,
        account_id=x_account_id,
        settings=settings,
        key_store=key_store,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]
OPERATOR_REQUIRED = "Operator role required"


def get_operator(principal: PrincipalDep) -> Principal:
    """The caller, if it holds the operator role: actions on every tenant's processing need it."""
    if not principal.is_operator:
        raise Forbidden(OPERATOR_REQUIRED)
    return principal


OperatorDep = Annotated[Principal, Depends(get_operator)]


CountersDep = Annotated[CounterStore, Depends(get_counter_store)]
"""The task counters (per account, group and source): counts read with GetItem/BatchGetItem."""


def get_ceiling(
    principal: PrincipalDep,
    settings: Annotated[Settings, Depends(get_settings)],
    key_store: Annotated[ApiKeyStore, Depends(get_key_store)],
    counters: CountersDep,
) -> Ceiling:
    plan = plan_of(principal, key_store, settings)
    return Ceiling(max_unfinished_tasks(settings, plan), settings.ceiling_retry_after_seconds, counters=counters)


CeilingDep = Annotated[Ceiling, Depends(get_ceiling)]


def get_providers(settings: Annotated[Settings, Depends(get_settings)]) -> ProviderPolicy:
    return ProviderPolicy.from_settings(settings)


ProvidersDep = Annotated[ProviderPolicy, Depends(get_providers)]
RepositoryDep = Annotated[TaskRepository, Depends(get_repository)]
QueueDep = Annotated[TaskQueue, Depends(get_queue)]
ResultsDep = Annotated[ResultStore, Depends(get_results)]
ControlDep = Annotated[ProcessingControl, Depends(get_processing_control)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# Push (issue 16): the webhook and event stores and the delivery queue, from taskapi.webhooks.wiring.
def get_webhook_store() -> WebhookStore:
    return webhook_wiring.get_webhook_store()


def get_event_store() -> EventStore:
    return webhook_wiring.get_event_store()


def get_delivery_queue() -> DeliveryQueue:
    return webhook_wiring.get_delivery_queue()
