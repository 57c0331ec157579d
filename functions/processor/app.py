"""SQS (one queue per priority) -> the processor: each record is one task message. Records that
raise are reported as batch item failures, so only they are delivered again."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.observability import logger, metrics, tracer
from taskapi.queueing.messages import TaskMessage
from taskapi.services.processing import Processor
from taskapi.wiring import get_processor

batch = BatchProcessor(event_type=EventType.SQS)
TASK_KEYS = ("account_id", "task_id", "attempt")


def sent_at(record: SQSRecord) -> datetime | None:
    """When SQS took the message: one that comes before its task's insert is sent again for a
    while after that, not forever."""
    millis = record.attributes.get("SentTimestamp")
    return None if not millis else datetime.fromtimestamp(int(millis) / 1000, UTC)


def handle_record(record: SQSRecord, processor: Processor | None = None) -> str:
    # Every line of this record's run carries its ids; none of the previous record's stays on.
    logger.remove_keys(TASK_KEYS)
    logger.append_keys(message_id=record.message_id)
    message = TaskMessage.parse(record.body)  # a poison message raises: it fails alone, then dead-letters
    logger.append_keys(account_id=message.account_id, task_id=message.task_id, attempt=message.attempt)
    outcome = (processor or get_processor()).process(message, sent_at=sent_at(record))
    logger.info("message processed", extra={"outcome": outcome.value})
    return outcome.value


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=batch, context=context)
