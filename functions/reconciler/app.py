"""EventBridge schedule (every minute) -> the reconciler."""

from typing import Any

from taskapi.observability import logger, metrics, tracer
from taskapi.services.reconcile import reconcile
from taskapi.settings import get_settings
from taskapi.wiring import get_counter_store, get_processor


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    report = reconcile(
        get_processor(),
        pending_after_seconds=settings.reconcile_pending_after_seconds,
        limit=settings.reconcile_batch_limit,
        counters=get_counter_store(),
    )
    return report.as_dict()
