"""The dead-letter queues -> the task of each message ends FAILED with the last error it recorded."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.observability import logger, metrics, tracer
from taskapi.queueing.messages import TaskMessage
from taskapi.services.processing import fail_dead_lettered
from taskapi.store.base import TaskRepository
from taskapi.wiring import get_repository

batch = BatchProcessor(event_type=EventType.SQS)
TASK_KEYS = ("account_id", "task_id", "attempt")


def handle_record(record: SQSRecord, repository: TaskRepository | None = None) -> str:
    receive_count = int(record.attributes.approximate_receive_count or 0)
    logger.remove_keys(TASK_KEYS)  # the previous record's
    logger.append_keys(message_id=record.message_id)
    try:
        message = TaskMessage.parse(record.body)
    except ValueError:
        pass  # not a task message: fail_dead_lettered logs it and acknowledges it
    else:
        logger.append_keys(account_id=message.account_id, task_id=message.task_id, attempt=message.attempt)
    outcome = fail_dead_lettered(repository or get_repository(), record.body, receive_count=receive_count)
    logger.info("dead letter handled", extra={"outcome": outcome.value})
    return outcome.value


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=batch, context=context)
