"""Settings every test shares: no real AWS credentials, quiet Powertools, fresh cached factories."""

from __future__ import annotations

import os

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(autouse=True)
def _fresh_factories():
    """Cached settings and clients never leak from one test into the next."""
    from taskapi import aws, wiring
    from taskapi.settings import get_settings

    def clear() -> None:
        get_settings.cache_clear()
        aws.reset_clients()
        wiring.reset()

    clear()
    yield
    clear()
