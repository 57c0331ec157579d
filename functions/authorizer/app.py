"""API Gateway REQUEST authorizer: bearer JWT or X-API-Key -> an Allow policy carrying the
principal (context) and the usage plan key to meter (usageIdentifierKey), or a denial.

Missing or bad credentials raise "Unauthorized" (API Gateway answers 401); credentials that do
not grant the account asked for get a Deny policy (403, its reason in context.detail). Any
other failure raises too (API Gateway answers 500): the authorizer never allows by accident.
The rules are taskapi.auth.identity's, the same the app applies when it runs without API Gateway."""

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from taskapi.auth.identity import Grant, authorize, to_context
from taskapi.errors import Forbidden, Unauthenticated
from taskapi.observability import logger, metrics, tracer
from taskapi.settings import get_settings
from taskapi.wiring import get_key_store

# Headers the decision depends on; with the authorizer cache on, they are its identity sources.
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-account-id")
ANONYMOUS = "anonymous"


def _credential_headers(event: APIGatewayAuthorizerRequestEvent) -> dict[str, str | None]:
    """One value per credential header, matched case-insensitively. A header sent twice with
    different values is ambiguous and refused rather than guessed at."""
    values: dict[str, list[str]] = {name: [] for name in CREDENTIAL_HEADERS}
    for name, many in (event.get("multiValueHeaders") or {}).items():
        if name.lower() in values:
            values[name.lower()].extend(v for v in many or [] if v is not None)
    for name, one in (event.headers or {}).items():
        if name.lower() in values and one is not None and one not in values[name.lower()]:
            values[name.lower()].append(one)
    chosen: dict[str, str | None] = {}
    for name, found in values.items():
        if len(set(found)) > 1:
            raise Unauthenticated(f"The {name} header was sent more than once")
        chosen[name] = found[0] if found else None
    return chosen


def _deny(event: APIGatewayAuthorizerRequestEvent, detail: str) -> dict[str, Any]:
    # The gateway response template places context.detail inside a JSON string: escape it here.
    safe = json.dumps(detail)[1:-1]
    policy = APIGatewayAuthorizerResponse.from_route_arn(event.method_arn, ANONYMOUS, context={"detail": safe})
    policy.deny_all_routes()
    return policy.asdict()


def _allow(event: APIGatewayAuthorizerRequestEvent, grant: Grant) -> dict[str, Any]:
    # Every route is allowed: with caching on, one decision serves every method and path.
    policy = APIGatewayAuthorizerResponse.from_route_arn(
        event.method_arn,
        grant.principal.user_id,
        context=to_context(grant.principal),
        usage_identifier_key=grant.usage_identifier_key,
    )
    policy.allow_all_routes()
    return policy.asdict()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: Any) -> dict[str, Any]:
    policy = _decide(event, context)
    if policy is None:
        raise Exception("Unauthorized")  # API Gateway's only way to answer 401
    return policy


# Traced apart from the handler: a 401 is an answer, not an error, and must not be traced or
# logged as one (the tracer logs every exception that leaves what it decorates).
@tracer.capture_lambda_handler(capture_response=False)
def _decide(event: APIGatewayAuthorizerRequestEvent, context: Any) -> dict[str, Any] | None:
    """The policy for the request, or None when its credentials are missing or invalid."""
    try:
        headers = _credential_headers(event)
        grant = authorize(
            authorization=headers["authorization"],
            api_key=headers["x-api-key"],
            account_id=headers["x-account-id"],
            settings=get_settings(),
            key_store=get_key_store(),
        )
    except Unauthenticated as exc:
        logger.info("request not authenticated", extra={"reason": str(exc.detail), "path": event.path})
        metrics.add_metric(name="AuthorizerUnauthenticated", unit="Count", value=1)
        return None
    except Forbidden as exc:
        logger.info("request forbidden", extra={"reason": str(exc.detail), "path": event.path})
        metrics.add_metric(name="AuthorizerForbidden", unit="Count", value=1)
        return _deny(event, str(exc.detail))
    logger.append_keys(account_id=grant.principal.account_id, auth_method=grant.principal.auth_method)
    logger.info("request authorized")
    return _allow(event, grant)
