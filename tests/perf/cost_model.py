"""What a task costs in dollars: published us-east-1 on-demand prices (all of them here, each with
its date and source) applied to what one task uses (measured by tests/perf/task_lifecycle.py).

Marginal prices only: the free tiers (1M Lambda and SQS requests a month, ...), volume tiers past
the first, storage, data transfer, CloudWatch (logs, metrics, X-Ray) and the fixed cost of idle
long polling by the event source mappings are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.template import load_template, resources

REGION = "us-east-1"
CHECKED_ON = "2026-12-07"
"""When the prices below were last compared with their sources."""


@dataclass(frozen=True)
class Price:
    usd: float
    """Dollars per one `unit`."""
    unit: str
    dated: str
    """The date the price is known from: its effective date, or the date of the page confirming it."""
    source: str
    """AWS's pricing page."""
    confirmed_by: str = ""
    """Where the figure was read when the AWS page itself did not show it (a dated third-party page)."""


PRICES: dict[str, Price] = {
    "dynamodb_write_request_unit": Price(
        0.625 / 1e6,
        "write request unit (on-demand, Standard table class)",
        dated="2024-11-01",
        source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
        confirmed_by="https://airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21): $0.625 per"
        " million WRU, US East, after the 50% on-demand reduction effective 2024-11-01",
    ),
    "dynamodb_read_request_unit": Price(
        0.125 / 1e6,
        "read request unit (on-demand, Standard table class)",
        dated="2024-11-01",
        source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
        confirmed_by="https://airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21): $0.125 per"
        " million RRU, US East",
    ),
    "sqs_request": Price(
        0.40 / 1e6,
        "standard-queue request (each 64 KB chunk of a payload; first 100 billion a month)",
        dated="2026-03-14",
        source="https://aws.amazon.com/sqs/pricing/",
        confirmed_by="https://cloudburn.io/blog/amazon-sqs-pricing (prices for US East as of March 2026)",
    ),
    "lambda_request": Price(
        0.20 / 1e6,
        "invocation (x86 and Arm)",
        dated="2024",
        source="https://aws.amazon.com/lambda/pricing/",
        confirmed_by="https://cloudchipr.com/blog/aws-lambda-pricing (2024 guide, US East)",
    ),
    "lambda_gb_second_arm64": Price(
        0.0000133334,
        "GB-second of duration on Arm (first 7.5 billion GB-s a month)",
        dated="2024",
        source="https://aws.amazon.com/lambda/pricing/",
        confirmed_by="https://cloudchipr.com/blog/aws-lambda-pricing (2024 guide, US East)",
    ),
    "lambda_gb_second_x86_64": Price(
        0.0000166667,
        "GB-second of duration on x86 (first 6 billion GB-s a month)",
        dated="2024",
        source="https://aws.amazon.com/lambda/pricing/",
        confirmed_by="https://cloudchipr.com/blog/aws-lambda-pricing (2024 guide, US East)",
    ),
    "s3_put_request": Price(
        0.005 / 1000,
        "PUT, COPY, POST or LIST request (S3 Standard)",
        dated="2026-03-13",
        source="https://aws.amazon.com/s3/pricing/",
        confirmed_by="https://cloudburn.io/blog/amazon-s3-pricing (US East as of March 2026);"
        " https://c3x.dev/blog/s3-request-fees-explained",
    ),
    "s3_get_request": Price(
        0.0004 / 1000,
        "GET, SELECT or other request (S3 Standard)",
        dated="2026-03-13",
        source="https://aws.amazon.com/s3/pricing/",
        confirmed_by="https://cloudburn.io/blog/amazon-s3-pricing (US East as of March 2026);"
        " https://c3x.dev/blog/s3-request-fees-explained",
    ),
    "apigateway_rest_request": Price(
        3.50 / 1e6,
        "REST API request (first 333 million a month)",
        dated="2025-05-19",
        source="https://aws.amazon.com/api-gateway/pricing/",
        confirmed_by="https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-"
        "integration/cost-optimization.html (table 4: REST, first 333 million $3.50 per million);"
        " https://awsforengineers.com/blog/aws-api-gateway-pricing-explained (2025-05-19)",
    ),
}

SERVICES = ("DynamoDB", "SQS", "Lambda", "S3", "API Gateway")


@dataclass(frozen=True)
class TaskUsage:
    """What one task uses over its life, per task (fractions where a call serves several tasks)."""

    write_units: float
    read_units: float
    sqs_requests: float
    lambda_requests: float
    lambda_gb_seconds: float
    s3_puts: float
    s3_gets: float
    api_requests: float


def dollars_per_million(
    usage: TaskUsage, *, architecture: str = "arm64", prices: Mapping[str, Price] = PRICES
) -> dict[str, float]:
    """Dollars per million tasks, by service (SERVICES) and "total"."""
    tasks = 1e6
    cost = {
        "DynamoDB": usage.write_units * prices["dynamodb_write_request_unit"].usd
        + usage.read_units * prices["dynamodb_read_request_unit"].usd,
        "SQS": usage.sqs_requests * prices["sqs_request"].usd,
        "Lambda": usage.lambda_requests * prices["lambda_request"].usd
        + usage.lambda_gb_seconds * prices[f"lambda_gb_second_{architecture}"].usd,
        "S3": usage.s3_puts * prices["s3_put_request"].usd + usage.s3_gets * prices["s3_get_request"].usd,
        "API Gateway": usage.api_requests * prices["apigateway_rest_request"].usd,
    }
    answer = {service: value * tasks for service, value in cost.items()}
    answer["total"] = sum(answer.values())
    return answer


# ------------------------------------------------------------------ what template.yaml configures
@dataclass(frozen=True)
class Deployment:
    """The template's figures the cost depends on."""

    architecture: str
    memory_mb: dict[str, int]
    """MemorySize by function logical id (the Globals' when a function sets none)."""
    processor_batch_size: int
    """Messages per processor invocation at most (the SQS event source mappings' BatchSize)."""
    authorizer_cache_ttl_seconds: int


def deployment(template: dict[str, Any] | None = None) -> Deployment:
    template = template or load_template()
    defaults = template.get("Globals", {}).get("Function", {})
    parameters = template.get("Parameters", {})
    functions = resources(template, "AWS::Serverless::Function")
    memory = {
        logical_id: int(function["Properties"].get("MemorySize", defaults.get("MemorySize", 128)))
        for logical_id, function in functions.items()
    }
    events = functions["ProcessorFunction"]["Properties"].get("Events", {})
    sizes = [int(e["Properties"].get("BatchSize", 10)) for e in events.values() if e.get("Type") == "SQS"]
    return Deployment(
        architecture=str(parameters.get("Architecture", {}).get("Default", "x86_64")),
        memory_mb=memory,
        processor_batch_size=min(sizes) if sizes else 10,
        authorizer_cache_ttl_seconds=int(parameters.get("AuthorizerCacheTtlSeconds", {}).get("Default", 0)),
    )


def price_lines(prices: Mapping[str, Price] = PRICES) -> list[str]:
    """The prices, one a line, with their dates and sources."""
    lines = []
    for name, price in prices.items():
        per_million = price.usd * 1e6
        lines.append(
            f"{name}: ${per_million:.6g} per million (unit: {price.unit}); dated {price.dated}; {price.source}"
            + (f"; confirmed by {price.confirmed_by}" if price.confirmed_by else "")
        )
    return lines
