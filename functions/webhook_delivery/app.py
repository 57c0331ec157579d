"""SQS (WebhookDeliveryQueue) -> one webhook attempt per record (taskapi.webhooks.delivery).
Records that raise (a queue that refused the next message, DynamoDB unavailable, a poison message)
are reported as batch item failures: only they are delivered again, then dead-lettered."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.observability import logger, metrics, tracer
from taskapi.webhooks.delivery import Deliverer
from taskapi.webhooks.models import DeliveryMessage
from taskapi.webhooks.wiring import get_deliverer

batch = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord, deliverer: Deliverer | None = None) -> str:
    message = DeliveryMessage.parse(record.body)  # a poison message raises: it fails alone, then dead-letters
    logger.append_keys(
        account_id=message.account_id,
        endpoint_id=message.endpoint_id,
        event_id=message.event_id,
        attempt=message.attempt,
    )
    outcome = (deliverer or get_deliverer()).deliver(message)
    logger.info("webhook message handled", extra={"outcome": outcome.value})
    return outcome.value


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=batch, context=context)
