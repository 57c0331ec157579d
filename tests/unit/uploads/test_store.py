"""The in-memory UploadStore honours the store contract (the DynamoDB adapter is checked on moto)."""

from __future__ import annotations

import pytest

from taskapi.uploads.store import InMemoryUploadStore
from tests.unit.uploads.store_contract import UploadStoreContract


class TestInMemoryUploadStore(UploadStoreContract):
    @pytest.fixture
    def store(self):
        return InMemoryUploadStore()
