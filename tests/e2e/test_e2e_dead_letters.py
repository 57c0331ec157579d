"""The dead-letter path on the running stack: a poison message sent straight to a task queue is
delivered maxReceiveCount times, then SQS moves it to the queue's DLQ while other tasks are still
processed; the dead-letter function consumes the DLQ and marks a dead-lettered task FAILED."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from infra.template import LocalNames, load_template
from tests.e2e.support import (
    PROCESS_SECONDS,
    aws_client,
    create,
    queue_status,
    task_body,
    wait_for_status,
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMES = LocalNames()
DLQ_MAPPING = f"{NAMES.mappings_parameter_prefix}/DeadLetterFunction/NormalDeadLetters"
MAX_RECEIVE_COUNT = int(load_template()["Parameters"]["MaxReceiveCount"]["Default"])
# Each delivery fails and comes back after the stack's local retry delay (2 s): allow for all of
# them, plus the move to the DLQ on the next receive.
DEAD_LETTER_SECONDS = MAX_RECEIVE_COUNT * 2 + 30


@pytest.fixture(scope="module")
def headers(create_api_key: Callable[[str], str]) -> dict[str, str]:
    return {"X-API-Key": create_api_key("dead_letters")}


@pytest.fixture(scope="module")
def sqs(stack: Any) -> Any:
    return aws_client("sqs", stack.aws_endpoint)


@pytest.fixture(scope="module")
def ssm(stack: Any) -> Any:
    return aws_client("ssm", stack.aws_endpoint)


def _queue_url(sqs: Any, logical_id: str) -> str:
    return str(sqs.get_queue_url(QueueName=NAMES.physical_name(logical_id))["QueueUrl"])


def _set_mapping_enabled(ssm: Any, name: str, enabled: bool) -> None:
    """What `taskapi queue pause` does for the processor's mappings, for one mapping of the
    dead-letter function: its SSM parameter, which its poller re-reads every second."""
    mapping = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    mapping["enabled"] = enabled
    ssm.put_parameter(Name=name, Value=json.dumps(mapping), Type="String", Overwrite=True)


@pytest.fixture
def dead_letters_held(ssm: Any) -> Iterator[None]:
    """The normal DLQ's poller paused, so what lands there stays there to be seen."""
    _set_mapping_enabled(ssm, DLQ_MAPPING, False)
    try:
        yield
    finally:
        _set_mapping_enabled(ssm, DLQ_MAPPING, True)


def _dead_letter_depth(sqs: Any) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=_queue_url(sqs, "TasksNormalDeadLetterQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _handled_dead_letters(stack: Any) -> dict[str, dict[str, Any]]:
    """The dead-letter function's "dead letter handled" log records, by SQS message id."""
    found = {}
    for line in stack.stdout_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"message":"dead letter handled"' in line:
            record = json.loads(line)
            found[record["message_id"]] = record
    return found


def test_a_poison_message_ends_in_the_dead_letter_queue_and_processing_continues(
    client: httpx.Client,
    headers: dict[str, str],
    operator_headers: dict[str, str],
    sqs: Any,
    ssm: Any,
    stack: Any,
    dead_letters_held: None,
) -> None:
    # Given a message no task message parser accepts, on the normal queue
    sent = sqs.send_message(QueueUrl=_queue_url(sqs, "TasksNormalQueue"), MessageBody="this is not JSON {")
    # and a real task behind it on the same queue
    create(client, headers, task_body("beside_poison", "quiz", "normal"))

    # Then the task is processed while the poison message keeps failing
    wait_for_status(client, headers, ["beside_poison"])
    # and after maxReceiveCount deliveries SQS moves the message to the dead-letter queue
    wait_until(lambda: _dead_letter_depth(sqs) == 1, DEAD_LETTER_SECONDS, "the poison message in the DLQ")
    status = queue_status(client, operator_headers)  # the real queues: for operators only
    assert status["overall_queue_status"]["dead_letter_by_priority"]["normal"] == 1
    assert status["overall_queue_status"]["dead_letter_total"] >= 1
    tenant = queue_status(client, headers)["overall_queue_status"]
    assert (tenant["dead_letter_by_priority"], tenant["dead_letter_total"]) == (None, None)
    assert sent["MessageId"] not in _handled_dead_letters(stack)

    # When the dead-letter function's mapping is enabled again
    _set_mapping_enabled(ssm, DLQ_MAPPING, True)

    # Then it consumes the message: not a task message, so there is no task to mark, and it is
    # acknowledged rather than left to loop in the DLQ
    handled = wait_until(
        lambda: _handled_dead_letters(stack).get(sent["MessageId"]), PROCESS_SECONDS, "the dead letter handled"
    )
    assert handled["outcome"] == "skipped"
    wait_until(lambda: _dead_letter_depth(sqs) == 0, PROCESS_SECONDS, "the DLQ to drain")


def test_a_dead_lettered_task_message_marks_its_task_failed(
    client: httpx.Client, headers: dict[str, str], sqs: Any
) -> None:
    # Given a task that was never processed (no request_data: stored PENDING)
    (task,) = create(client, headers, {"task_id": "dead_lettered", "task_type": "video"})
    assert task["status"] == "PENDING"

    # When its message is dead-lettered (as SQS's redrive policy would put it there)
    body = json.dumps({"account_id": task["account_id"], "task_id": "dead_lettered", "attempt": 1})
    sqs.send_message(QueueUrl=_queue_url(sqs, "TasksNormalDeadLetterQueue"), MessageBody=body)

    # Then the dead-letter function marks the task FAILED with why
    failed = wait_for_status(client, headers, ["dead_lettered"], {"FAILED"})["dead_lettered"]
    assert failed["error_message"].startswith("Processing failed: the message was dead-lettered after ")
    assert failed["error_details"]["dead_lettered"] is True
    assert failed["events"][-1]["message"] == failed["error_message"]
    wait_until(lambda: _dead_letter_depth(sqs) == 0, PROCESS_SECONDS, "the DLQ to drain")
