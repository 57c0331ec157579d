"""The local stack's DynamoDB stream poller (infra/stream_pollers.py) on moto's own streams
(in-process): records reach the handler in stream order and in Lambda's shape, a failing handler
gets the same records again from the same first record, a batch that keeps failing is skipped and
reported to the on-failure queue, and a restarted poller goes on where the last one stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from infra.runtime import ExecutionEnvironment, FunctionSpec
from infra.stream_pollers import StreamMapping, StreamPoller, build_stream_pollers, stream_event_mappings
from infra.template import LocalNames, load_template

NAMES = LocalNames()
TABLE = "stream-test"
DLQ = "stream-test-dlq"
HANDLER = """
import json, os

def handler(event, context):
    with open(os.environ["STREAM_TEST_LOG"], "a") as log:
        log.write(json.dumps(event) + "\\n")
    if os.path.exists(os.environ["STREAM_TEST_FAIL"]):
        raise RuntimeError("injected failure")
    return None
"""


class Stack:
    """A table with a stream, the handler's log and its failure switch."""

    def __init__(self, tmp_path: Path) -> None:
        self.dynamodb = boto3.client("dynamodb")
        self.streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        self.sqs = boto3.client("sqs")
        self.ssm = boto3.client("ssm")
        self.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self.dlq_url = self.sqs.create_queue(QueueName=DLQ)["QueueUrl"]
        self.log = tmp_path / "events.jsonl"
        self.fail_flag = tmp_path / "fail"
        handler = tmp_path / "app.py"
        handler.write_text(HANDLER)
        self.spec = FunctionSpec(
            logical_id="StreamTestFunction",
            function_name="stream-test-function",
            handler_path=handler,
            handler_name="handler",
            timeout_seconds=30,
            memory_mb=128,
            events={},
        )

    def put(self, *keys: str, value: str = "v") -> None:
        for key in keys:
            self.dynamodb.put_item(TableName=TABLE, Item={"k": {"S": key}, "value": {"S": value}})

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def delivered_keys(self) -> list[list[str]]:
        return [[r["dynamodb"]["Keys"]["k"]["S"] for r in event["Records"]] for event in self.events()]

    def poller(self, retries: int = -1, batch_size: int = 2) -> StreamPoller:
        mapping = StreamMapping(
            function="StreamTestFunction",
            event_name="Changes",
            table_name=TABLE,
            batch_size=batch_size,
            maximum_retry_attempts=retries,
            on_failure_queue=DLQ,
        )
        (poller,) = build_stream_pollers(
            [mapping],
            {"StreamTestFunction": self.spec},
            NAMES,
            dynamodb=self.dynamodb,
            streams=self.streams,
            sqs=self.sqs,
            ssm=self.ssm,
            retry_delay_seconds=0,
        )
        return poller

    def environment(self) -> ExecutionEnvironment:
        return ExecutionEnvironment(self.spec, NAMES)


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Any:
    with mock_aws():
        stack = Stack(tmp_path)
        monkeypatch.setenv("STREAM_TEST_LOG", str(stack.log))
        monkeypatch.setenv("STREAM_TEST_FAIL", str(stack.fail_flag))
        yield stack


def test_records_reach_the_handler_in_stream_order_in_batches_and_in_lambdas_shape(stack):
    stack.put("a", "b", "c")
    stack.dynamodb.update_item(
        TableName=TABLE,
        Key={"k": {"S": "a"}},
        UpdateExpression="SET #v = :v",
        ExpressionAttributeNames={"#v": "value"},
        ExpressionAttributeValues={":v": {"S": "w"}},
    )
    stack.dynamodb.delete_item(TableName=TABLE, Key={"k": {"S": "b"}})
    poller, environment = stack.poller(), stack.environment()

    while poller.poll(environment):
        pass

    assert stack.delivered_keys() == [["a", "b"], ["c", "a"], ["b"]]
    records = [record for event in stack.events() for record in event["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE"]
    modify = records[3]
    assert set(modify) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert modify["eventSource"] == "aws:dynamodb"
    assert modify["eventSourceARN"] == poller.stream_arn
    assert modify["eventSourceARN"].startswith(f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/")
    assert modify["awsRegion"] == "us-east-1"
    body = modify["dynamodb"]
    assert body["OldImage"] == {"k": {"S": "a"}, "value": {"S": "v"}}
    assert body["NewImage"] == {"k": {"S": "a"}, "value": {"S": "w"}}
    assert body["Keys"] == {"k": {"S": "a"}}
    assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(body["ApproximateCreationDateTime"], int)
    assert abs(body["ApproximateCreationDateTime"] - time.time()) < 300
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence)
    assert "NewImage" not in records[4]["dynamodb"]


def test_a_failing_handler_gets_the_same_records_again_from_the_same_first_record(stack):
    poller, environment = stack.poller(), stack.environment()
    stack.put("a")
    poller.poll(environment)
    stack.fail_flag.touch()
    stack.put("b", "c")

    poller.poll(environment)  # fails
    stack.put("d")  # arrives while the batch is being retried
    poller.poll(environment)  # fails again, the same batch
    stack.fail_flag.unlink()
    poller.poll(environment)  # succeeds
    poller.poll(environment)  # goes on after it
    assert not poller.poll(environment)

    assert stack.delivered_keys() == [["a"], ["b", "c"], ["b", "c"], ["b", "c"], ["d"]]
    ids = [[r["eventID"] for r in event["Records"]] for event in stack.events()]
    assert ids[1] == ids[2] == ids[3]
    assert stack.sqs.receive_message(QueueUrl=stack.dlq_url).get("Messages", []) == []


def test_a_batch_failing_past_its_retries_is_skipped_and_reported_to_the_on_failure_queue(stack):
    poller, environment = stack.poller(retries=1), stack.environment()
    stack.fail_flag.touch()
    stack.put("a", "b", "c")

    poller.poll(environment)  # the first try
    poller.poll(environment)  # its one retry: then skipped
    stack.fail_flag.unlink()
    poller.poll(environment)

    assert stack.delivered_keys() == [["a", "b"], ["a", "b"], ["c"]]
    (message,) = stack.sqs.receive_message(QueueUrl=stack.dlq_url)["Messages"]
    report = json.loads(message["Body"])
    assert report["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert report["requestContext"]["approximateInvokeCount"] == 2
    info = report["DDBStreamBatchInfo"]
    first, second = stack.events()[0]["Records"]
    assert info["startSequenceNumber"] == first["dynamodb"]["SequenceNumber"]
    assert info["endSequenceNumber"] == second["dynamodb"]["SequenceNumber"]
    assert (info["batchSize"], info["streamArn"]) == (2, poller.stream_arn)


def test_a_restarted_poller_goes_on_after_the_last_record_handled(stack):
    stack.put("a", "b", "c")
    first = stack.poller()
    first.poll(stack.environment())  # a, b

    again = stack.poller()  # the stack restarted on the same endpoint
    while again.poll(stack.environment()):
        pass

    assert stack.delivered_keys() == [["a", "b"], ["c"]]
    stored = json.loads(stack.ssm.get_parameter(Name=again.positions_parameter)["Parameter"]["Value"])
    assert stored["stream_arn"] == again.stream_arn


def test_the_poller_thread_delivers_until_stopped(stack):
    poller = stack.poller(batch_size=10)
    poller.start()
    try:
        stack.put("a", "b")
        deadline = time.monotonic() + 10
        while sum(map(len, stack.delivered_keys())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    assert [key for batch in stack.delivered_keys() for key in batch] == ["a", "b"]


def test_a_table_without_a_stream_is_refused(stack):
    stack.dynamodb.create_table(
        TableName="no-stream",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    mapping = StreamMapping(function="StreamTestFunction", event_name="Changes", table_name="no-stream")

    with pytest.raises(ValueError, match="no-stream has no stream"):
        build_stream_pollers(
            [mapping],
            {"StreamTestFunction": stack.spec},
            NAMES,
            dynamodb=stack.dynamodb,
            streams=stack.streams,
            sqs=stack.sqs,
            ssm=stack.ssm,
            retry_delay_seconds=0,
        )


def test_the_templates_stream_mappings_are_the_counters_and_events_functions():
    counters, *events = stream_event_mappings(load_template(), NAMES)

    assert [(m.function, m.event_name, m.table_name) for m in events] == [
        ("EventsFunction", "CounterChanges", "taskapi-local-CountersTable"),
        ("EventsFunction", "TaskChanges", "taskapi-local-TasksTable"),
    ]
    assert {m.on_failure_queue for m in events} == {"taskapi-local-EventsDeadLetterQueue"}
    assert counters == StreamMapping(
        function="CountersFunction",
        event_name="TaskChanges",
        table_name="taskapi-local-TasksTable",
        batch_size=500,
        starting_position="TRIM_HORIZON",
        maximum_retry_attempts=10,
        on_failure_queue="taskapi-local-CountersDeadLetterQueue",
        batching_window_seconds=1.0,
    )
