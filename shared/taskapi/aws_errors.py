"""The one translation of AWS errors (botocore's ClientError and BotoCoreError) into domain errors.
Every adapter catches `AWS_ERRORS`, handles the codes that mean something in its own domain (a
missing API Gateway key is NotFound, a failed condition on an update means "no"), and raises
`translate(...)` for everything else. Nothing above the adapters sees botocore.

  a failed condition                                  -> Conflict (409)
  throttling, 5xx, a transaction in progress,
  timeouts and dropped connections                    -> Retryable (503 with Retry-After)
  AccessDenied, ResourceNotFound, validation and
  every other error a retry cannot change             -> ServiceMisconfigured (500), logged here

A configuration error is logged once, here, with what an operator needs to find it (service,
operation, error code, HTTP status, request id) and never with the AWS message or the request:
those can carry request data."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from taskapi.errors import Conflict, Retryable, ServiceMisconfigured, TaskApiError
from taskapi.observability import logger

AWS_ERRORS = (ClientError, BotoCoreError)
"""What an adapter catches around a boto3 call."""

AwsError: TypeAlias = ClientError | BotoCoreError

Verdict: TypeAlias = Literal["conflict", "retryable", "misconfigured"]

CONFLICT_CODES = frozenset({"ConditionalCheckFailedException"})

RETRYABLE_CODES = frozenset(
    {
        # throttling (botocore's standard retry mode treats the same codes as throttles)
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "EC2ThrottledException",
        "KmsThrottled",
        "TooManyUpdates",
        # the service failed or timed out on its side
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        # the item or resource is in the middle of another change
        "TransactionInProgressException",
        "TransactionConflictException",
        "ResourceInUseException",
        "ResourceConflictException",
    }
)

_RETRYABLE_REASONS = frozenset(
    {"None", "", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
"""TransactionCanceledException reasons a retry can change (DynamoDB's CancellationReasons)."""

_RETRYABLE_TRANSPORT = (BotoConnectionError, HTTPClientError, IncompleteReadError)
"""Connect and read timeouts, refused and dropped connections, a body cut off while streaming."""

DEFAULT_CONFLICT = "The resource changed while this request was being handled"
MISCONFIGURED = "Internal server error: the service is not configured correctly (the cause has been logged)"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    """AWS's message of a ClientError ("" for anything else). Not for logs: it may quote the request."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return ""


def cancellation_reasons(exc: BaseException) -> list[dict[str, Any]]:
    """The per-item reasons of a TransactionCanceledException (empty for anything else)."""
    if isinstance(exc, ClientError):
        return list(exc.response.get("CancellationReasons") or [])
    return []


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def classify(exc: AwsError) -> Verdict:
    """What a retry of the same call could change."""
    if isinstance(exc, BotoCoreError):
        return "retryable" if isinstance(exc, _RETRYABLE_TRANSPORT) else "misconfigured"
    code = error_code(exc)
    if code in CONFLICT_CODES:
        return "conflict"
    if code == "TransactionCanceledException":
        reasons = {str(reason.get("Code", "None")) for reason in cancellation_reasons(exc)}
        if "ConditionalCheckFailed" in reasons:
            return "conflict"
        return "retryable" if reasons <= _RETRYABLE_REASONS else "misconfigured"
    if code in RETRYABLE_CODES or _status(exc) >= 500 or _status(exc) == 429:
        return "retryable"
    return "misconfigured"


def _reason(exc: AwsError) -> str:
    return error_code(exc) or type(exc).__name__


def translate(
    exc: AwsError,
    *,
    service: str,
    unavailable: str | None = None,
    conflict: str = DEFAULT_CONFLICT,
) -> TaskApiError:
    """The domain error for an AWS failure, to `raise ... from exc` (the cause stays attached).

    `service` names the AWS service in messages and logs ("DynamoDB", "S3"); `unavailable` is the
    Retryable detail (by default "<service> is busy (<error code or exception class>); retry the
    request") and `conflict` the Conflict detail. A ServiceMisconfigured has a generic detail only."""
    verdict = classify(exc)
    if verdict == "conflict":
        return Conflict(conflict)
    if verdict == "retryable":
        return Retryable(unavailable or f"{service} is busy ({_reason(exc)}); retry the request")
    _log_misconfigured(exc, service)
    return ServiceMisconfigured(MISCONFIGURED)


def _log_misconfigured(exc: AwsError, service: str) -> None:
    details: dict[str, Any] = {"aws_service": service, "aws_error_code": _reason(exc)}
    if isinstance(exc, ClientError):
        metadata = exc.response.get("ResponseMetadata", {})
        details.update(
            aws_operation=exc.operation_name,
            aws_http_status=metadata.get("HTTPStatusCode"),
            aws_request_id=metadata.get("RequestId"),
        )
    logger.error("AWS refused a call: a configuration error, not retried", extra=details)
