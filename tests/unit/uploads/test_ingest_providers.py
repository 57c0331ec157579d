"""An uploaded row naming request_data.provider meets the same rule as POST /api/tasks/bulk: where
the deployment does not serve the provider for the row's type, the row is reported invalid at that
field, in the same words, and the other rows become tasks as usual."""

from __future__ import annotations

import pytest

from taskapi.store.base import TaskFilters
from taskapi.uploads.ingest import IngestOutcome
from taskapi.uploads.model import UploadCounts
from tests import factories
from tests.fakes import Fakes
from tests.unit.uploads.support import ACCOUNT, BUCKET, drop, event_key, ingestor, jsonl, report, settings, start

DATA = {"story_prompt": "Pythagoras discovered a theorem about right triangles.", "difficulty": "easy"}


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def upload_rows(fakes: Fakes, **overrides):
    upload = start(fakes)
    drop(
        fakes,
        upload,
        jsonl(
            factories.quiz("plain", request_data=DATA),
            factories.quiz("chooses", request_data={**DATA, "provider": "bedrock"}),
        ),
    )
    result = ingestor(fakes, settings=settings(**overrides)).ingest(BUCKET, event_key(upload.object_key), None)
    return upload, result


def stored_ids(fakes: Fakes) -> set[str]:
    return {task.task_id for task in fakes.repo.page(ACCOUNT, TaskFilters(), before=None, want=100)}


def test_a_row_choosing_a_provider_the_deployment_does_not_let_it_choose_is_invalid(fakes):
    upload, result = upload_rows(
        fakes, allow_provider_override=False, quiz_provider="builtin", quiz_model_id="test-model"
    )

    assert result.outcome is IngestOutcome.COMPLETED
    assert result.counts == UploadCounts(created=1, existing=0, invalid=1)
    first, second = report(fakes, upload)
    assert (first["row"], first["status"], first["task_id"]) == (1, "created", "plain")
    assert (second["row"], second["status"], second["task_id"]) == (2, "invalid", "chooses")
    (problem,) = second["errors"]
    assert problem["field"] == "request_data.provider"
    assert "does not let a task choose its provider" in problem["message"]
    assert "AllowProviderOverride" in problem["message"]
    assert stored_ids(fakes) == {"plain"}
    assert [message.task_id for _, message, _ in fakes.queue.sent] == ["plain"]


def test_where_tasks_may_choose_the_row_becomes_a_task_keeping_its_provider(fakes):
    upload, result = upload_rows(fakes, allow_provider_override=True, quiz_model_id="test-model")

    assert result.counts == UploadCounts(created=2, existing=0, invalid=0)
    assert [line["status"] for line in report(fakes, upload)] == ["created", "created"]
    task = fakes.repo.get(ACCOUNT, "chooses")
    assert task is not None
    assert (task.request_data or {})["provider"] == "bedrock"
