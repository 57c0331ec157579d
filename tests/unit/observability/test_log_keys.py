"""Every log line of a task's life carries account_id, task_id, attempt and the message id
(issue 17): read back from the Powertools logger's JSON on stdout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from taskapi.engines.base import EngineError
from taskapi.models.domain import TaskType
from taskapi.observability import logger
from tests import factories
from tests.support.isolation import captured_logs
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    FaultyEngine,
    create,
    load_function,
    messages,
    registry_with,
    sqs_event,
    sqs_record,
)

IDS = ("account_id", "task_id", "attempt", "message_id")


def log_lines(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "level" in line and "_aws" not in line]


def test_every_line_of_a_processed_message_carries_the_task_and_message_ids(fakes, clock, capsys, caplog):
    # Given two messages in one batch, the first one's try failing (a warning and a retry are logged)
    engine = FaultyEngine(TaskType.QUIZ, [EngineError("flaky", permanent=False)])
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"), BODY_OF[TaskType.QUIZ]("q2"))
    first, second = messages(fakes)
    module = load_function("processor")
    module.get_processor = lambda: processor

    # When the processor function handles the batch
    with captured_logs(capsys, caplog):
        module.handler(
            sqs_event([sqs_record(first.body(), message_id="m-1"), sqs_record(second.body(), message_id="m-2")]),
            factories.LambdaContext(),
        )
        lines = log_lines(capsys.readouterr().out)

    # Then each line of a record's run names its task, attempt and message
    about = [line for line in lines if line.get("message_id")]
    assert {line["message_id"] for line in about} == {"m-1", "m-2"}
    for line in about:
        expected_task = {"m-1": first.task_id, "m-2": second.task_id}[line["message_id"]]
        assert (line.get("account_id"), line.get("task_id"), line.get("attempt")) == (ACCOUNT, expected_task, 1), line
    processed = [line for line in lines if line["message"] == "message processed"]
    assert len(processed) == 2
    assert all(line.get("function_request_id") for line in processed)  # the invocation's request id
    # ... and a line outside any record's run carries none of them
    assert [line for line in lines if not line.get("message_id")] == [
        line for line in lines if not any(key in line for key in IDS)
    ]


def test_a_poison_message_does_not_inherit_the_previous_records_task(fakes, clock):
    processor = fakes.processor(clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)
    module = load_function("processor")
    module.handle_record(SQSRecord(sqs_record(message.body(), message_id="m-1")), processor)

    with pytest.raises(ValueError, match="not JSON"):
        module.handle_record(SQSRecord(sqs_record("{", message_id="poison")), processor)

    keys = logger.get_current_keys()
    assert keys.get("message_id") == "poison"
    assert not {"account_id", "task_id", "attempt"} & set(keys)
