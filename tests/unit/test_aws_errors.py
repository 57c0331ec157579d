"""One translation of AWS errors (taskapi.aws_errors): a failed condition is a conflict (409),
throttling, 5xx and timeouts are retryable (503 with Retry-After), and everything a retry cannot
change (AccessDenied, a missing resource, validation) is a configuration error: 500 with a generic
detail, its cause logged, never "retry".

The adapters run on real boto3 clients with dummy credentials and no network: ClientErrors come
from botocore's Stubber, timeouts from a before-send hook (where botocore's HTTP layer raises them)."""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.stub import Stubber
from fastapi.testclient import TestClient

import taskapi
from taskapi import aws_errors
from taskapi.auth.api_keys import DynamoApiKeyStore, generate_key
from taskapi.auth.gateway import ApiGatewayUsagePlans, UsagePlansUnavailable
from taskapi.engines.base import Artifact, ArtifactFile
from taskapi.errors import Conflict, NotFound, Retryable, ServiceMisconfigured
from taskapi.http import deps
from taskapi.http.app import create_app
from taskapi.models.domain import Task, TaskEvent
from taskapi.queueing.control import LambdaProcessingControl, LocalProcessingControl
from taskapi.queueing.queues import SqsTaskQueue
from taskapi.results import S3ResultStore
from taskapi.settings import Settings
from taskapi.store.base import TaskFilters
from taskapi.store.dynamodb import DynamoTaskRepository
from taskapi.uploads.dynamodb import DynamoUploadStore
from taskapi.uploads.files import S3UploadFiles
from tests.fakes import Fakes
from tests.support.isolation import captured_logs

ACCOUNT = "acct_a"
AWS_MESSAGE = "User: arn:aws:sts::123456789012:assumed-role/api/fn is not authorized to perform this"


@functools.cache
def _session() -> boto3.session.Session:
    """One session for the module: its loader reads each service model once."""
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def client(service: str) -> Any:
    """A real client that never reaches the network: dummy credentials, one attempt (no retry sleeps)."""
    return _session().client(
        service,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def client_error(code: str, status: int = 400, operation: str = "GetItem", **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": AWS_MESSAGE},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-1"},
        **extra,
    }
    return ClientError(response, operation)


def times_out(aws: Any, error: Exception | None = None) -> Any:
    """Every call of the client fails in botocore's HTTP layer (a read timeout by default)."""

    def fail(**_: Any) -> None:
        raise error or ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")

    aws.meta.events.register("before-send", fail)
    return aws


def logged(logs: Any) -> list[dict[str, Any]]:
    """The JSON records the taskapi logger (Powertools, on stdout) wrote."""
    records = []
    for line in logs.text().splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


@pytest.fixture
def logs(capsys, caplog) -> Iterator[Any]:
    with captured_logs(capsys, caplog) as captured:
        yield captured


def make_task(task_id: str = "t1") -> Task:
    stamp = "2026-01-01T00:00:00.000000Z"
    return Task(
        account_id=ACCOUNT,
        task_id=task_id,
        user_id="u",
        task_type="quiz",
        created_at=stamp,
        updated_at=stamp,
        request_data={"story_prompt": "p", "difficulty": "easy", "ratio": 0.5},
        events=[TaskEvent(timestamp=stamp, message="Task pending")],
    )


# ------------------------------------------------------------------ the translator, by code
@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (client_error("ConditionalCheckFailedException"), "conflict"),
        (client_error("ThrottlingException"), "retryable"),
        (client_error("ProvisionedThroughputExceededException"), "retryable"),
        (client_error("RequestLimitExceeded"), "retryable"),
        (client_error("TooManyRequestsException", 429), "retryable"),
        (client_error("SlowDown", 503), "retryable"),
        (client_error("RequestThrottled"), "retryable"),
        (client_error("InternalServerError", 500), "retryable"),
        (client_error("InternalFailure", 500), "retryable"),
        (client_error("ServiceUnavailable", 503), "retryable"),
        (client_error("SomethingNew", 502), "retryable"),
        (client_error("503", 503), "retryable"),
        (client_error("TransactionInProgressException"), "retryable"),
        (client_error("TransactionConflictException"), "retryable"),
        (client_error("AccessDenied", 403), "misconfigured"),
        (client_error("AccessDeniedException"), "misconfigured"),
        (client_error("UnrecognizedClientException"), "misconfigured"),
        (client_error("ResourceNotFoundException"), "misconfigured"),
        (client_error("ValidationException"), "misconfigured"),
        (client_error("AWS.SimpleQueueService.NonExistentQueue"), "misconfigured"),
        (client_error("SomethingNew"), "misconfigured"),
        (
            client_error("TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}]),
            "conflict",
        ),
        (
            client_error(
                "TransactionCanceledException",
                CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
            ),
            "retryable",
        ),
        (
            client_error("TransactionCanceledException", CancellationReasons=[{"Code": "ValidationError"}]),
            "misconfigured",
        ),
        (ReadTimeoutError(endpoint_url="https://x"), "retryable"),
        (ConnectTimeoutError(endpoint_url="https://x"), "retryable"),
        (EndpointConnectionError(endpoint_url="https://x"), "retryable"),
        (ConnectionClosedError(endpoint_url="https://x"), "retryable"),
        (ResponseStreamingError(error="reset"), "retryable"),
        (IncompleteReadError(actual_bytes=1, expected_bytes=2), "retryable"),
        (NoCredentialsError(), "misconfigured"),
        (ParamValidationError(report="Invalid type for parameter Key"), "misconfigured"),
    ],
    ids=lambda value: value if isinstance(value, str) else aws_errors.error_code(value) or type(value).__name__,
)
def test_each_aws_error_translates_to_one_domain_error(error, verdict):
    expected = {"conflict": Conflict, "retryable": Retryable, "misconfigured": ServiceMisconfigured}[verdict]

    assert aws_errors.classify(error) == verdict
    translated = aws_errors.translate(error, service="DynamoDB")

    assert type(translated) is expected
    if verdict == "retryable":
        assert "retry" in str(translated.detail)
    if verdict == "misconfigured":
        assert translated.detail == aws_errors.MISCONFIGURED
        assert "retry" not in translated.detail.lower()


def test_a_configuration_error_is_logged_with_code_and_operation_but_not_aws_message(logs):
    aws_errors.translate(client_error("AccessDeniedException", operation="BatchGetItem"), service="DynamoDB")

    records = logged(logs)
    (record,) = [r for r in records if r.get("aws_error_code") == "AccessDeniedException"]
    assert record["level"] == "ERROR"
    assert record["aws_service"] == "DynamoDB"
    assert record["aws_operation"] == "BatchGetItem"
    assert record["aws_http_status"] == 400
    assert record["aws_request_id"] == "req-1"
    assert AWS_MESSAGE not in json.dumps(records)


def test_retryable_and_conflict_errors_are_not_logged_as_configuration_errors(logs):
    aws_errors.translate(client_error("ThrottlingException"), service="DynamoDB")
    aws_errors.translate(client_error("ConditionalCheckFailedException"), service="DynamoDB")
    aws_errors.translate(ReadTimeoutError(endpoint_url="https://x"), service="DynamoDB")

    assert not [r for r in logged(logs) if "aws_error_code" in r]


# ------------------------------------------------------------------ the case, over HTTP
@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def api_on(fakes: Fakes, repository: DynamoTaskRepository) -> TestClient:
    app = fakes.install(create_app())
    app.dependency_overrides[deps.get_repository] = lambda: repository
    return TestClient(app, raise_server_exceptions=False)


def test_bulk_cancel_whose_read_timed_out_answers_503_with_retry_after(fakes):
    api = api_on(fakes, DynamoTaskRepository(times_out(client("dynamodb")), "tasks"))

    answer = api.post("/api/tasks/bulk-cancel", headers=fakes.api_key(ACCOUNT), json={"task_ids": ["t1", "t2"]})

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "retry" in answer.json()["detail"]


def test_reading_a_task_whose_get_item_timed_out_answers_503_with_retry_after(fakes):
    api = api_on(fakes, DynamoTaskRepository(times_out(client("dynamodb")), "tasks"))

    answer = api.get("/api/tasks/t1", headers=fakes.api_key(ACCOUNT))

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"


def test_bulk_cancel_refused_by_iam_answers_500_without_retry_and_logs_the_cause(fakes, logs):
    dynamodb = client("dynamodb")
    api = api_on(fakes, DynamoTaskRepository(dynamodb, "tasks"))
    headers = fakes.api_key(ACCOUNT)

    with Stubber(dynamodb) as stub:
        stub.add_client_error("batch_get_item", "AccessDeniedException", AWS_MESSAGE, 400)
        answer = api.post("/api/tasks/bulk-cancel", headers=headers, json={"task_ids": ["t1"]})
        stub.assert_no_pending_responses()

    assert answer.status_code == 500
    assert answer.json() == {"detail": aws_errors.MISCONFIGURED}
    assert "retry-after" not in answer.headers
    assert "AccessDenied" not in answer.text
    assert "arn:aws" not in answer.text
    records = logged(logs)
    (record,) = [r for r in records if r.get("aws_error_code") == "AccessDeniedException"]
    assert record["aws_operation"] == "BatchGetItem"
    assert AWS_MESSAGE not in json.dumps(records)


def test_a_missing_table_answers_500_not_503(fakes):
    dynamodb = client("dynamodb")
    api = api_on(fakes, DynamoTaskRepository(dynamodb, "tasks"))
    headers = fakes.api_key(ACCOUNT)

    with Stubber(dynamodb) as stub:
        stub.add_client_error("get_item", "ResourceNotFoundException", "Requested resource not found", 400)
        answer = api.get("/api/tasks/t1", headers=headers)

    assert answer.status_code == 500
    assert answer.json() == {"detail": aws_errors.MISCONFIGURED}


def test_a_failed_condition_on_save_is_a_conflict():
    dynamodb = client("dynamodb")
    repository = DynamoTaskRepository(dynamodb, "tasks")

    with Stubber(dynamodb) as stub:
        stub.add_client_error("put_item", "ConditionalCheckFailedException", "The conditional request failed", 400)
        with pytest.raises(Conflict) as raised:
            repository.save(make_task(), expected_version=1)

    assert isinstance(raised.value.__cause__, ClientError)


# ------------------------------------------------------------------ every adapter, the same way
def _upload_files(aws: Any) -> None:
    S3UploadFiles(aws, "uploads", 60).open("uploads/acct_a/u1")


def _result_put(aws: Any) -> None:
    artifact = Artifact(files=(ArtifactFile("a.json", "application/json", b"{}"),), primary="a.json")
    S3ResultStore(aws, "results", 60).put("results/acct_a/t1/attempt-1/", artifact)


def _param(name: str, service: str, operation: str, call: Callable[[Any], Any]) -> Any:
    return pytest.param(service, operation, call, id=name)


ADAPTER_CALLS = [
    _param("tasks.get", "dynamodb", "get_item", lambda aws: DynamoTaskRepository(aws, "tasks").get(ACCOUNT, "t1")),
    _param(
        "tasks.get_many",
        "dynamodb",
        "batch_get_item",
        lambda aws: DynamoTaskRepository(aws, "tasks").get_many(ACCOUNT, ["t1"]),
    ),
    _param(
        "tasks.count", "dynamodb", "query", lambda aws: DynamoTaskRepository(aws, "tasks").count(ACCOUNT, TaskFilters())
    ),
    _param(
        "tasks.insert_new",
        "dynamodb",
        "transact_write_items",
        lambda aws: DynamoTaskRepository(aws, "tasks").insert_new([make_task()]),
    ),
    _param(
        "tasks.record_progress",
        "dynamodb",
        "update_item",
        lambda aws: DynamoTaskRepository(aws, "tasks").record_progress(
            ACCOUNT, "t1", attempt=1, progress=5.0, message="m", now="2026-01-01T00:00:00Z"
        ),
    ),
    _param("keys.get", "dynamodb", "get_item", lambda aws: DynamoApiKeyStore(aws, "keys").get("0123456789abcdef")),
    _param(
        "keys.put", "dynamodb", "put_item", lambda aws: DynamoApiKeyStore(aws, "keys").put(generate_key(ACCOUNT)[1])
    ),
    _param("keys.list_account", "dynamodb", "query", lambda aws: DynamoApiKeyStore(aws, "keys").list_account(ACCOUNT)),
    _param(
        "keys.clear_gateway_key",
        "dynamodb",
        "update_item",
        lambda aws: DynamoApiKeyStore(aws, "keys").clear_gateway_key("0123456789abcdef"),
    ),
    _param("uploads.get", "dynamodb", "get_item", lambda aws: DynamoUploadStore(aws, "uploads").get(ACCOUNT, "u1")),
    _param(
        "uploads.fail",
        "dynamodb",
        "update_item",
        lambda aws: DynamoUploadStore(aws, "uploads").fail(ACCOUNT, "u1", error="e", now="2026-01-01T00:00:00Z"),
    ),
    _param("upload_files.open", "s3", "get_object", _upload_files),
    _param("results.put", "s3", "put_object", _result_put),
    _param(
        "queue.depths",
        "sqs",
        "get_queue_attributes",
        lambda aws: SqsTaskQueue(aws, {"normal": "https://sqs/q"}, {}).depths(),
    ),
    _param(
        "control.mappings",
        "lambda",
        "list_event_source_mappings",
        lambda aws: LambdaProcessingControl(aws, "processor").mappings(),
    ),
    _param(
        "local_control.mappings",
        "ssm",
        "get_parameters_by_path",
        lambda aws: LocalProcessingControl(aws, "/taskapi").mappings(),
    ),
    _param(
        "usage_plans.plan_id",
        "apigateway",
        "get_usage_plans",
        lambda aws: ApiGatewayUsagePlans(aws, Settings()).plan_id("free"),
    ),
]


@pytest.mark.parametrize(("service", "operation", "call"), ADAPTER_CALLS)
@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, Retryable),
        ("InternalServerError", 500, Retryable),
        ("AccessDeniedException", 400, ServiceMisconfigured),
        ("ValidationException", 400, ServiceMisconfigured),
    ],
)
def test_every_adapter_translates_client_errors_the_same_way(service, operation, call, code, status, expected):
    aws = client(service)

    with Stubber(aws) as stub:
        stub.add_client_error(operation, code, AWS_MESSAGE, status)
        with pytest.raises(expected) as raised:
            call(aws)

    cause = raised.value.__cause__
    assert isinstance(cause, ClientError)
    assert aws_errors.error_code(cause) == code  # the stubbed call, not an unexpected one
    if expected is ServiceMisconfigured:
        assert raised.value.detail == aws_errors.MISCONFIGURED


@pytest.mark.parametrize(("service", "operation", "call"), ADAPTER_CALLS)
def test_every_adapter_answers_a_timeout_as_retryable(service, operation, call):
    with pytest.raises(Retryable) as raised:
        call(times_out(client(service)))

    assert isinstance(raised.value.__cause__, ReadTimeoutError)


def test_the_gateway_keeps_its_own_codes_and_its_retryable_kind():
    apigateway = client("apigateway")
    plans = ApiGatewayUsagePlans(apigateway, Settings())

    with Stubber(apigateway) as stub:
        stub.add_client_error("get_usage_plans", "TooManyRequestsException", "slow down", 429)
        with pytest.raises(UsagePlansUnavailable):
            plans.plan_id("free")
        stub.add_client_error("get_usage_plans", "NotFoundException", "gone", 404)
        with pytest.raises(NotFound):
            plans.plan_id("free")


def test_a_missing_object_stays_not_found():
    s3 = client("s3")

    with Stubber(s3) as stub:
        stub.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
        with pytest.raises(NotFound):
            S3UploadFiles(s3, "uploads", 60).open("uploads/acct_a/u1")


def test_a_failed_condition_on_an_update_still_means_no():
    dynamodb = client("dynamodb")

    with Stubber(dynamodb) as stub:
        stub.add_client_error("update_item", "ConditionalCheckFailedException", "The conditional request failed")
        assert (
            DynamoTaskRepository(dynamodb, "tasks").record_progress(
                ACCOUNT, "t1", attempt=1, progress=5.0, message="m", now="2026-01-01T00:00:00Z"
            )
            is False
        )


def test_a_refused_sqs_batch_is_reported_per_entry_and_a_configuration_error_logged(logs):
    from taskapi.models.domain import Priority
    from taskapi.queueing.messages import TaskMessage

    sqs = client("sqs")
    queue = SqsTaskQueue(sqs, {"normal": "https://sqs/q"}, {})

    with Stubber(sqs) as stub:
        stub.add_client_error("send_message_batch", "AccessDenied", AWS_MESSAGE, 403)
        refused = queue.send([(Priority.NORMAL, TaskMessage.of(make_task()))])

    assert list(refused) == [0]
    assert refused[0].startswith("SQS refused the batch:")
    assert [r["aws_operation"] for r in logged(logs) if r.get("aws_error_code") == "AccessDenied"] == [
        "SendMessageBatch"
    ]


# ------------------------------------------------------------------ nothing above the adapters sees botocore
SHARED = Path(taskapi.__file__).resolve().parent.parent
FUNCTIONS = SHARED.parent / "functions"
MAY_IMPORT_BOTOCORE_EXCEPTIONS = {
    "taskapi/aws_errors.py",  # the one translation
    "taskapi/cli.py",  # the operators' CLI reports an AWS failure's own cause (a missing table by name)
}


def _imports_botocore_exceptions(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("botocore.exceptions"):
                return True
            if node.module == "botocore" and any(alias.name == "exceptions" for alias in node.names):
                return True
        if isinstance(node, ast.Import) and any(a.name.startswith("botocore.exceptions") for a in node.names):
            return True
    return False


def test_only_the_translator_imports_botocore_exceptions():
    modules = [*sorted((SHARED / "taskapi").rglob("*.py")), *sorted(FUNCTIONS.glob("*/*.py"))]
    offenders = [
        str(path.relative_to(SHARED if path.is_relative_to(SHARED) else FUNCTIONS.parent))
        for path in modules
        if _imports_botocore_exceptions(path)
    ]
    assert modules
    assert sorted(set(offenders) - MAY_IMPORT_BOTOCORE_EXCEPTIONS) == []


def test_no_service_route_or_handler_names_a_botocore_error():
    above = [
        *(SHARED / "taskapi" / "services").rglob("*.py"),
        *(SHARED / "taskapi" / "http").rglob("*.py"),
        *FUNCTIONS.glob("*/*.py"),
    ]
    assert above
    for path in above:
        text = path.read_text()
        assert "botocore" not in text, path
        assert "ClientError" not in text, path
        assert "BotoCoreError" not in text, path
