"""The UploadStore contract, run over the in-memory fake (tests/unit) and the DynamoDB adapter on
moto (tests/integration/uploads): subclass UploadStoreContract and provide a `store` fixture."""

from __future__ import annotations

from dataclasses import replace

import pytest

from taskapi.errors import Conflict
from taskapi.uploads.model import Upload, UploadCounts, UploadStatus, object_key

ACCOUNT = "acct_a"
UPLOAD_ID = "6f1c0b4e-4a8e-4d57-9c39-0e7b0b1f2a3c"
T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:01:00.000000Z"
T2 = "2026-01-01T00:02:00.000000Z"
LATER = "2026-01-01T01:00:00.000000Z"
MUCH_LATER = "2027-01-01T00:00:00.000000Z"


def new_upload(**overrides) -> Upload:
    upload = Upload(
        account_id=ACCOUNT,
        upload_id=UPLOAD_ID,
        user_id="user_1",
        auth_method="jwt",
        format="jsonl",
        status=UploadStatus.PENDING,
        created_at=T0,
        updated_at=T0,
        object_key=object_key(ACCOUNT, UPLOAD_ID),
    )
    return replace(upload, **overrides)


class UploadStoreContract:
    @pytest.fixture
    def store(self):  # pragma: no cover - every subclass provides it
        raise NotImplementedError

    def test_an_upload_reads_back_as_written(self, store):
        upload = new_upload(task_source_group_id="g", filename="f.jsonl", plan="standard", auth_method="api_key")
        store.create(upload)

        assert store.get(ACCOUNT, UPLOAD_ID) == upload
        assert store.get("acct_b", UPLOAD_ID) is None
        assert store.get(ACCOUNT, "6f1c0b4e-0000-4000-8000-000000000000") is None

    def test_an_id_is_created_once(self, store):
        store.create(new_upload())
        with pytest.raises(Conflict):
            store.create(new_upload(user_id="someone else"))
        assert store.get(ACCOUNT, UPLOAD_ID).user_id == "user_1"

    def test_claim_takes_a_pending_upload_once(self, store):
        store.create(new_upload())

        claimed = store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T1, lease_until=LATER)

        assert claimed.status is UploadStatus.PROCESSING
        assert (claimed.claim, claimed.lease_until, claimed.started_at, claimed.updated_at) == ("c1", LATER, T1, T1)
        assert store.get(ACCOUNT, UPLOAD_ID) == claimed
        assert store.claim(ACCOUNT, UPLOAD_ID, claim="c2", now=T2, lease_until=LATER) is None
        assert store.get(ACCOUNT, UPLOAD_ID).claim == "c1"

    def test_an_unknown_upload_cannot_be_claimed_or_failed(self, store):
        assert store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T1, lease_until=LATER) is None
        assert store.fail(ACCOUNT, UPLOAD_ID, error="x", now=T1) is None
        assert store.get(ACCOUNT, UPLOAD_ID) is None

    def test_a_lapsed_claim_is_taken_over_and_the_first_start_is_kept(self, store):
        store.create(new_upload())
        store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T0, lease_until=T1)

        taken = store.claim(ACCOUNT, UPLOAD_ID, claim="c2", now=T2, lease_until=LATER)

        assert (taken.claim, taken.started_at) == ("c2", T0)
        assert not store.record_progress(ACCOUNT, UPLOAD_ID, claim="c1", counts=UploadCounts(created=1), now=T2)

    def test_progress_is_fenced_by_the_claim(self, store):
        store.create(new_upload())
        store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T1, lease_until=LATER)

        assert store.record_progress(ACCOUNT, UPLOAD_ID, claim="c1", counts=UploadCounts(1, 2, 3), now=T2)
        assert not store.record_progress(ACCOUNT, UPLOAD_ID, claim="c2", counts=UploadCounts(9, 9, 9), now=T2)

        current = store.get(ACCOUNT, UPLOAD_ID)
        assert current.counts == UploadCounts(created=1, existing=2, invalid=3)
        assert current.updated_at == T2

    def test_finish_is_fenced_and_final(self, store):
        store.create(new_upload())
        store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T1, lease_until=LATER)
        assert not store.finish(
            ACCOUNT, UPLOAD_ID, claim="c2", status=UploadStatus.COMPLETED, counts=UploadCounts(), now=T2
        )

        assert store.finish(
            ACCOUNT,
            UPLOAD_ID,
            claim="c1",
            status=UploadStatus.FAILED,
            counts=UploadCounts(created=4),
            now=T2,
            error="bad file",
            report_key="reports/acct_a/x.jsonl",
        )

        done = store.get(ACCOUNT, UPLOAD_ID)
        assert (done.status, done.error, done.report_key, done.counts) == (
            UploadStatus.FAILED,
            "bad file",
            "reports/acct_a/x.jsonl",
            UploadCounts(created=4),
        )
        assert (done.claim, done.lease_until, done.started_at) == (None, None, T1)
        assert store.claim(ACCOUNT, UPLOAD_ID, claim="c3", now=MUCH_LATER, lease_until=MUCH_LATER) is None
        assert store.fail(ACCOUNT, UPLOAD_ID, error="again", now=LATER) is None
        assert store.get(ACCOUNT, UPLOAD_ID).error == "bad file"

    def test_release_ends_the_lease_now_and_keeps_the_error(self, store):
        store.create(new_upload())
        store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T0, lease_until=LATER)

        assert not store.release(ACCOUNT, UPLOAD_ID, claim="c2", now=T1, error="not mine")
        assert store.release(ACCOUNT, UPLOAD_ID, claim="c1", now=T1, error="Retryable: busy")

        released = store.get(ACCOUNT, UPLOAD_ID)
        assert (released.status, released.lease_until, released.last_error) == (
            UploadStatus.PROCESSING,
            T1,
            "Retryable: busy",
        )
        assert store.claim(ACCOUNT, UPLOAD_ID, claim="c2", now=T2, lease_until=LATER).claim == "c2"

    @pytest.mark.parametrize("claimed", [False, True])
    def test_fail_ends_a_pending_or_processing_upload(self, store, claimed):
        store.create(new_upload())
        if claimed:
            store.claim(ACCOUNT, UPLOAD_ID, claim="c1", now=T1, lease_until=LATER)

        failed = store.fail(ACCOUNT, UPLOAD_ID, error="ingest failed repeatedly: x", now=T2)

        assert (failed.status, failed.error, failed.claim, failed.updated_at) == (
            UploadStatus.FAILED,
            "ingest failed repeatedly: x",
            None,
            T2,
        )
        assert store.get(ACCOUNT, UPLOAD_ID) == failed
        assert not store.record_progress(ACCOUNT, UPLOAD_ID, claim="c1", counts=UploadCounts(), now=T2)
