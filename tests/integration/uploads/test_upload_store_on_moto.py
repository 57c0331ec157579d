"""The DynamoDB adapter of UploadStore honours the store contract on the UploadsTable that
template.yaml declares (built by provisioning, on moto)."""

from __future__ import annotations

import pytest

from taskapi import wiring
from taskapi.uploads.dynamodb import DynamoUploadStore
from tests.unit.uploads.store_contract import UploadStoreContract


class TestDynamoUploadStore(UploadStoreContract):
    @pytest.fixture
    def store(self, uploads_env):
        store = wiring.get_upload_store()
        assert isinstance(store, DynamoUploadStore)
        return store
