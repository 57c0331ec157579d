"""The ingest queue (S3 ObjectCreated notifications of the uploads bucket) -> each uploaded file
becomes tasks and a report; its dead-letter queue -> the upload ends FAILED with the last error.
Records that raise are reported as batch item failures, so only they are delivered again."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.observability import logger, metrics, tracer
from taskapi.uploads.events import NotANotification, from_dead_letter_queue, parse_notification
from taskapi.uploads.ingest import Ingestor
from taskapi.wiring import get_ingestor

batch = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord, ingestor: Ingestor | None = None) -> str:
    ingestor = ingestor or get_ingestor()
    dead_lettered = from_dead_letter_queue(record.event_source_arn, record.attributes.dead_letter_queue_source_arn)
    try:
        notifications = parse_notification(record.body)
    except NotANotification as exc:  # not retried: no delivery of it could ever become an upload
        logger.warning(
            "ignored: not an S3 event notification", extra={"message_id": record.message_id, "reason": str(exc)}
        )
        return "ignored"
    outcomes = []
    for created in notifications:
        if dead_lettered:
            result = ingestor.fail_dead_lettered(created.bucket, created.key)
        else:
            result = ingestor.ingest(created.bucket, created.key, created.size)
        logger.info(
            "upload notification handled",
            extra={"message_id": record.message_id, "outcome": result.outcome.value, "dead_lettered": dead_lettered},
        )
        outcomes.append(result.outcome.value)
    return ",".join(outcomes) or "ignored"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=batch, context=context)
