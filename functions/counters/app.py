"""The tasks table's stream (DynamoDB Streams, NEW_AND_OLD_IMAGES) -> the counters of tasks by
status per account, group and source. A batch is applied in order and idempotently: a failed batch
raises and Lambda delivers it again from its first record, whose already counted chunks are found
by their markers and skipped (taskapi.counting.apply). Only counts are logged, never an image."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from taskapi.counting.apply import ApplyReport, Change, DynamoCounterWriter
from taskapi.observability import logger, metrics, tracer
from taskapi.wiring import get_counter_writer


def changes_of(event: dict[str, Any]) -> list[Change]:
    """The batch's records in stream order, as counting reads them."""
    return [Change.from_record(record.raw_event) for record in DynamoDBStreamEvent(event).records]


def apply_batch(event: dict[str, Any], writer: DynamoCounterWriter | None = None) -> ApplyReport:
    changes = changes_of(event)
    report = (writer or get_counter_writer()).apply(changes)
    logger.info("stream batch counted", extra=report.as_dict())
    metrics.add_metric(name="CounterRecords", unit="Count", value=report.records)
    if report.skipped:
        metrics.add_metric(name="CounterRecordsRedelivered", unit="Count", value=report.skipped)
    return report


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return apply_batch(event).as_dict()
