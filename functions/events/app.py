"""The tasks table's stream and the counters table's stream -> events (taskapi.webhooks.events):
stored, fanned out to the account's webhook endpoints, put on the EventBridge bus
(taskapi.webhooks.publish). Records are told apart by the table their eventSourceARN names. A
failure raises, so Lambda delivers the batch again; event ids depend only on the changes, so what
the earlier delivery stored and sent is found and not sent twice. Only counts are logged, never an
image or a payload."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from taskapi.observability import logger, metrics, tracer
from taskapi.results import ResultStore
from taskapi.settings import Settings, get_settings
from taskapi.webhooks.events import events_of_records
from taskapi.webhooks.publish import EventPublisher, PublishReport
from taskapi.webhooks.wiring import get_event_publisher
from taskapi.wiring import get_results


def publish_batch(
    event: dict[str, Any],
    publisher: EventPublisher | None = None,
    results: ResultStore | None = None,
    settings: Settings | None = None,
) -> PublishReport:
    settings = settings or get_settings()
    records = [record.raw_event for record in DynamoDBStreamEvent(event).records]
    events = events_of_records(
        records,
        tasks_table=settings.tasks_table,
        counters_table=settings.counters_table,
        results=results or get_results(),
    )
    report = (publisher or get_event_publisher()).publish(events)
    logger.info("stream batch published", extra={"records": len(records), **report.as_dict()})
    metrics.add_metric(name="EventsStored", unit="Count", value=report.stored)
    metrics.add_metric(name="WebhookDeliveriesScheduled", unit="Count", value=report.deliveries)
    return report


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return publish_batch(event).as_dict()
