"""API Gateway (REST, proxy integration) -> FastAPI, through Mangum."""

from mangum import Mangum

from taskapi.http.app import create_app
from taskapi.observability import logger

app = create_app()
_mangum = Mangum(app, lifespan="off")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
def handler(event: dict, context: object) -> dict:
    return _mangum(event, context)
