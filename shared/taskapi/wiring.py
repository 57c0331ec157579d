"""Cached factories of the AWS adapters, built from settings on first use (never at import).
Every entry point takes them from here; tests pass fakes instead."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from taskapi import aws
from taskapi.auth.api_keys import ApiKeyStore, DynamoApiKeyStore
from taskapi.auth.gateway import ApiGatewayUsagePlans, UsagePlanGateway
from taskapi.counting.apply import DynamoCounterWriter
from taskapi.counting.store import CounterStore, DynamoCounterStore
from taskapi.queueing.control import LambdaProcessingControl, LocalProcessingControl, ProcessingControl
from taskapi.queueing.queues import SqsTaskQueue, TaskQueue
from taskapi.results import ResultStore, S3ResultStore
from taskapi.settings import dead_letter_queue_urls, get_settings, queue_urls
from taskapi.store.base import TaskRepository
from taskapi.store.dynamodb import DynamoTaskRepository
from taskapi.uploads.dynamodb import DynamoUploadStore
from taskapi.uploads.files import S3UploadFiles, UploadFiles
from taskapi.uploads.store import UploadStore
from taskapi.webhooks import wiring as push_wiring

if TYPE_CHECKING:  # the API never loads the processor, the engines or the ingest parsers (cold start)
    from taskapi.services.processing import Processor
    from taskapi.uploads.ingest import Ingestor


@lru_cache(maxsize=1)
def get_repository() -> TaskRepository:
    return DynamoTaskRepository(aws.client("dynamodb"), get_settings().tasks_table)


@lru_cache(maxsize=1)
def get_key_store() -> ApiKeyStore:
    return DynamoApiKeyStore(aws.client("dynamodb"), get_settings().api_keys_table)


@lru_cache(maxsize=1)
def get_counter_store() -> CounterStore:
    """The counters of tasks by status (per account, group and source), read by the API."""
    return DynamoCounterStore(aws.client("dynamodb"), get_settings().counters_table)


@lru_cache(maxsize=1)
def get_counter_writer() -> DynamoCounterWriter:
    """The stream consumer's side of the counters (functions/counters)."""
    return DynamoCounterWriter(aws.client("dynamodb"), get_settings().counters_table)


@lru_cache(maxsize=1)
def get_usage_plans() -> UsagePlanGateway:
    """API Gateway's usage plans of this stack (operator commands attach keys to them)."""
    return ApiGatewayUsagePlans(aws.client("apigateway"), get_settings())


@lru_cache(maxsize=1)
def get_queue() -> TaskQueue:
    settings = get_settings()
    return SqsTaskQueue(aws.client("sqs"), queue_urls(settings), dead_letter_queue_urls(settings))


@lru_cache(maxsize=1)
def get_results() -> ResultStore:
    settings = get_settings()
    return S3ResultStore(aws.client("s3"), settings.results_bucket, settings.presign_expiry_seconds)


@lru_cache(maxsize=1)
def get_processing_control() -> ProcessingControl:
    settings = get_settings()
    if settings.environment == "aws":
        return LambdaProcessingControl(aws.client("lambda"), settings.processor_function, queue_urls(settings))
    return LocalProcessingControl(
        aws.client("ssm"), settings.local_mappings_parameter_prefix, queue_urls=queue_urls(settings)
    )


@lru_cache(maxsize=1)
def get_processor() -> Processor:
    from taskapi.engines import get_engine
    from taskapi.services.processing import Processor

    return Processor(
        repository=get_repository(),
        queue=get_queue(),
        results=get_results(),
        engine_for=get_engine,
        retry_delay_seconds=get_settings().retry_delay_seconds,
        progress_interval_seconds=get_settings().progress_interval_seconds,
    )


@lru_cache(maxsize=1)
def get_upload_store() -> UploadStore:
    return DynamoUploadStore(aws.client("dynamodb"), get_settings().uploads_table)


@lru_cache(maxsize=1)
def get_upload_files() -> UploadFiles:
    settings = get_settings()
    return S3UploadFiles(aws.client("s3"), settings.uploads_bucket, settings.presign_expiry_seconds)


@lru_cache(maxsize=1)
def get_ingestor() -> Ingestor:
    from taskapi.uploads.ingest import Ingestor
    from taskapi.webhooks.publish import UploadEventPublisher

    return Ingestor(
        uploads=get_upload_store(),
        files=get_upload_files(),
        repository=get_repository(),
        queue=get_queue(),
        key_store=get_key_store(),
        settings=get_settings(),
        counters=get_counter_store(),
        on_final=UploadEventPublisher(push_wiring.get_event_publisher(), get_upload_files()),
    )


def reset() -> None:
    """Forget every cached adapter (tests and the local stack switch endpoints)."""
    for factory in (
        get_repository,
        get_key_store,
        get_counter_store,
        get_counter_writer,
        get_usage_plans,
        get_queue,
        get_results,
        get_processing_control,
        get_processor,
        get_upload_store,
        get_upload_files,
        get_ingestor,
    ):
        factory.cache_clear()
    push_wiring.reset()
