"""Powertools Logger and Metrics, shared by every entry point (service name and namespace come
from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="taskapi")
metrics = Metrics(namespace="TaskApi", service="taskapi")
