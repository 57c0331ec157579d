"""Cached boto3 clients. Nothing is created at import time; AWS_ENDPOINT_URL (honoured by boto3
itself) points every client at moto or LocalStack for the local stack."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=32,
)
# Presigned result URLs: SigV4 everywhere (in us-east-1 boto3 would otherwise presign with SigV2).
_S3_CONFIG = Config(signature_version="s3v4")


@cache
def client(service: str) -> Any:
    """One client per service and process (clients are thread-safe)."""
    config = _CONFIG.merge(_S3_CONFIG) if service == "s3" else _CONFIG
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests switch between moto back ends)."""
    client.cache_clear()
