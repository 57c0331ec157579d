"""Issue 15: dollars per million tasks, per service, at published us-east-1 on-demand prices
(tests/perf/cost_model.py), from what one task of each type uses (tests/perf/task_lifecycle.py).

Per task, the model counts:
  DynamoDB     the write and read units of the task's life (create -> COMPLETED); the create
               request's ceiling check as in a bulk create of 100 (its reads / 100); the counters'
               updates by the stream consumer, amortized over the lives of a bulk of 100
  SQS          SendMessageBatch of the bulk create / 100, plus the event source mapping's
               ReceiveMessage and DeleteMessageBatch, one each per BatchSize messages
  Lambda       invocations: the API and the authorizer once per bulk create of 100 (the
               authorizer's cache TTL is 0), the processor once per BatchSize messages, the stream
               consumer once per stream batch of the bulk's lives / 100; duration: Processor.process
               wall time x the processor's MemorySize, plus the bulk create's wall time / 100 x the
               API's MemorySize, plus the consumer's apply time / 100 x its MemorySize (the
               authorizer's duration is not measured). Reading the stream is free for Lambda.
  S3           the PutObject calls of the result files, and one GET (the client downloads the
               primary file once through its presigned URL)
  API Gateway  one REST request per bulk create of 100
Handler times are this machine's wall time with moto in place of AWS: an upper bound.
"""

from __future__ import annotations

import math

import pytest

from taskapi.models.domain import TaskType
from tests.perf.cost_model import (
    CHECKED_ON,
    PRICES,
    REGION,
    SERVICES,
    Deployment,
    TaskUsage,
    deployment,
    dollars_per_million,
    price_lines,
)
from tests.perf.support import Figure, Recorder
from tests.perf.task_lifecycle import BULK, TYPES, Measured, measure

DOWNLOADS_PER_TASK = 1
"""S3 GETs per task: the primary result file, downloaded once."""


def usage_of(measured: Measured, task_type: TaskType, config: Deployment) -> TaskUsage:
    lifecycle = measured.lifecycles[task_type]
    counters = measured.counters
    batch = config.processor_batch_size
    gib = 1024
    api_seconds = measured.bulk_seconds / BULK
    return TaskUsage(
        write_units=lifecycle.life.write_units() + counters.write_units_per_task(),
        read_units=lifecycle.life.read_units()
        - lifecycle.create.read_units()
        + measured.bulk.read_units() / BULK
        + counters.read_units_per_task(),
        sqs_requests=sum(measured.bulk_sqs.values()) / BULK
        + sum(n for op, n in lifecycle.sqs.items() if op != "SendMessageBatch")
        + 2 / batch,
        lambda_requests=(1 + (1 if config.authorizer_cache_ttl_seconds == 0 else 0)) / BULK
        + 1 / batch
        + counters.batches / counters.tasks,
        lambda_gb_seconds=lifecycle.process_seconds * config.memory_mb["ProcessorFunction"] / gib
        + api_seconds * config.memory_mb["ApiFunction"] / gib
        + counters.seconds / counters.tasks * config.memory_mb["CountersFunction"] / gib,
        s3_puts=sum(n for op, n in lifecycle.s3.items() if op in ("PutObject", "CopyObject", "ListObjectsV2")),
        s3_gets=DOWNLOADS_PER_TASK,
        api_requests=1 / BULK,
    )


@pytest.fixture(scope="module")
def measured() -> Measured:
    return measure()


def test_every_price_has_its_date_and_source() -> None:
    for name, price in PRICES.items():
        assert price.usd > 0, name
        assert price.dated[:4].isdigit(), name
        assert price.source.startswith("https://aws.amazon.com/"), name


def test_the_model_multiplies_usage_by_price() -> None:
    usage = TaskUsage(
        write_units=28,
        read_units=4,
        sqs_requests=1,
        lambda_requests=1,
        lambda_gb_seconds=1,
        s3_puts=1000,
        s3_gets=1000,
        api_requests=1,
    )
    cost = dollars_per_million(usage, architecture="arm64")
    assert cost["DynamoDB"] == pytest.approx(28 * 0.625 + 4 * 0.125)
    assert cost["SQS"] == pytest.approx(0.40)
    assert cost["Lambda"] == pytest.approx(0.20 + 13.3334)
    assert cost["S3"] == pytest.approx(5_000 + 400)
    assert cost["API Gateway"] == pytest.approx(3.50)
    assert cost["total"] == pytest.approx(sum(cost[s] for s in SERVICES))


def test_the_deployment_figures_come_from_template_yaml() -> None:
    config = deployment()
    assert config.memory_mb["ProcessorFunction"] > 0
    assert config.memory_mb["ApiFunction"] > 0
    assert config.processor_batch_size >= 1
    assert f"lambda_gb_second_{config.architecture}" in PRICES


def test_dollars_per_million_tasks(measured: Measured, bench: Recorder) -> None:
    config = deployment()
    print()
    print(f"[bench] prices ({REGION}, on-demand; checked {CHECKED_ON}):")
    for line in price_lines():
        print(f"[bench]   {line}")
    print(
        f"[bench] template.yaml: {config.architecture}, processor {config.memory_mb['ProcessorFunction']} MB,"
        f" API {config.memory_mb['ApiFunction']} MB, authorizer {config.memory_mb['AuthorizerFunction']} MB"
        f" (cache TTL {config.authorizer_cache_ttl_seconds} s), counters {config.memory_mb['CountersFunction']} MB,"
        f" processor BatchSize {config.processor_batch_size}"
    )
    counters = measured.counters
    print(
        f"[bench] counters (stream consumer) per task: {counters.write_units_per_task():g} WRU,"
        f" {counters.read_units_per_task():g} RRU, {counters.batches / counters.tasks:g} invocations,"
        f" {counters.seconds / counters.tasks * 1000:.3f} ms (amortized over a bulk of {counters.tasks}; in the"
        " DynamoDB and Lambda columns)"
    )
    print("[bench] usage per task (tasks created by bulk of 100):")
    print(
        f"[bench]   {'type':<16}{'WRU':>7}{'RRU':>8}{'SQS req':>9}{'λ req':>8}{'λ GB-s':>10}{'process s':>11}"
        f"{'S3 PUT':>8}{'S3 GET':>8}{'APIGW req':>10}"
    )
    usages = {task_type: usage_of(measured, task_type, config) for task_type in TYPES}
    for task_type, usage in usages.items():
        seconds = measured.lifecycles[task_type].process_seconds
        print(
            f"[bench]   {task_type.value:<16}{usage.write_units:>7g}{usage.read_units:>8.3g}{usage.sqs_requests:>9.3g}"
            f"{usage.lambda_requests:>8.3g}{usage.lambda_gb_seconds:>10.4f}{seconds:>11.3f}{usage.s3_puts:>8g}"
            f"{usage.s3_gets:>8g}{usage.api_requests:>10.3g}"
        )
    print(
        f"[bench]   handler times: this machine's wall time, moto in place of AWS (an upper bound); the bulk create"
        f" of {BULK} took {measured.bulk_seconds:.2f} s in all"
    )
    costs = {t: dollars_per_million(usage, architecture=config.architecture) for t, usage in usages.items()}
    print(f"[bench] dollars per million tasks ({REGION}, on-demand):")
    print(f"[bench]   {'type':<16}" + "".join(f"{service:>13}" for service in (*SERVICES, "total")))
    for task_type, cost in costs.items():
        print(f"[bench]   {task_type.value:<16}" + "".join(f"{cost[s]:>13.2f}" for s in (*SERVICES, "total")))
    for task_type, cost in costs.items():
        for service in (*SERVICES, "total"):
            slug = service.lower().replace(" ", "_")
            bench.record(
                Figure(
                    f"cost.{task_type.value}.{slug}_usd_per_million_tasks",
                    round(cost[service], 4),
                    "USD",
                    note=f"{REGION} on-demand prices checked {CHECKED_ON}" if service == "total" else "",
                )
            )
        assert math.isfinite(cost["total"])
        assert cost["DynamoDB"] > 0
