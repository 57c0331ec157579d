"""API Gateway (REST, proxy integration) -> FastAPI, through Mangum."""

from typing import Any, cast

from mangum import Mangum
from mangum.types import ASGI

from taskapi.http.app import create_app, mounted_at
from taskapi.observability import logger, metrics, tracer
from taskapi.settings import get_settings

app = create_app()
_mangum = Mangum(cast(ASGI, mounted_at(app, get_settings().root_path)), lifespan="off")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _mangum(event, context)
