"""SQS (WebhookDeliveryQueue) -> one webhook attempt per record (taskapi.webhooks.delivery).

A batch's endpoints are served at once, on up to CONCURRENT_ATTEMPTS threads, each endpoint's
records in order: a POST may wait on its receiver for the whole timeout (10 s), so one slow
endpoint does not hold the other endpoints' records back, and no endpoint gets more than one
attempt at a time from an invocation (its leases allow 4 in flight across every invocation). Records that raise (a queue
that refused the next message, DynamoDB unavailable, a poison message) are reported as batch item
failures: only they are delivered again, then dead-lettered. A crash of the process fails the whole
batch, as in Lambda: the records already attempted find their delivery settled and are skipped."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures

from taskapi.observability import logger, metrics, tracer
from taskapi.webhooks.delivery import Deliverer
from taskapi.webhooks.models import DeliveryMessage
from taskapi.webhooks.wiring import get_deliverer

CONCURRENT_ATTEMPTS = 10
"""The SQS event source mapping's BatchSize (template.yaml): ten endpoints of a batch at once."""


def handle_record(record: dict[str, Any], deliverer: Deliverer | None = None) -> str:
    message = DeliveryMessage.parse(str(record.get("body", "")))  # a poison message raises: it fails alone
    ids = {
        "account_id": message.account_id,
        "endpoint_id": message.endpoint_id,
        "event_id": message.event_id,
        "attempt": message.attempt,
        "message_id": str(record.get("messageId", "")),
    }
    outcome = (deliverer or get_deliverer()).deliver(message)
    # Keys per line, not logger.append_keys: the records of a batch are handled on several threads.
    logger.info("webhook message handled", extra={**ids, "outcome": outcome.value})
    return outcome.value


def _endpoint_of(record: dict[str, Any]) -> str:
    try:
        return DeliveryMessage.parse(str(record.get("body", ""))).endpoint_id
    except ValueError:
        return ""  # a poison message: handle_record fails it


def deliver_batch(records: list[dict[str, Any]], deliverer: Deliverer | None = None) -> PartialItemFailureResponse:
    """Every record attempted; the message ids of those that raised, as Lambda's partial batch
    response. Endpoints are served at once, each one's records in order (its leases allow only a
    few in flight: more would only come back busy). A BaseException that is not an Exception (the
    process dying) is not caught."""
    failures: list[PartialItemFailures] = []
    by_endpoint: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_endpoint.setdefault(_endpoint_of(record), []).append(record)

    def attempt_each(group: list[dict[str, Any]]) -> list[PartialItemFailures]:
        failed: list[PartialItemFailures] = []
        for record in group:
            try:
                handle_record(record, deliverer)
            except Exception:
                message_id = str(record.get("messageId", ""))
                logger.exception("webhook message failed; it is delivered again", extra={"message_id": message_id})
                failed.append({"itemIdentifier": message_id})
        return failed

    if not by_endpoint:
        return {"batchItemFailures": []}
    with ThreadPoolExecutor(max_workers=min(CONCURRENT_ATTEMPTS, len(by_endpoint))) as pool:
        for failed in pool.map(attempt_each, by_endpoint.values()):
            failures += failed
    return {"batchItemFailures": failures}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return deliver_batch(list(event.get("Records", [])))
