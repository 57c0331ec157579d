"""Where the moto corrections (infra/moto_corrections.py) apply: in the moto server's own process
only, never in a test's, whose mock_aws tests run moto's own functions; and only on the moto they
were written for. What each correction answers is tested against moto's own answers in
tests/e2e/test_e2e_stack_parts.py."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest

from infra import moto_corrections
from infra.local_stack import http_url, start_moto_server
from infra.moto_server import MotoServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]


def replaced_moto_functions() -> list[str]:
    """What the corrections replace and is no longer moto's own in this process."""
    import moto.dynamodb.models as dynamodb_models
    from moto import backends
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.sqs.models import Message, Queue, SQSBackend

    functions = {
        "DynamoDBBackend.transact_write_items": dynamodb_models.DynamoDBBackend.transact_write_items,
        "SQSBackend.send_message": SQSBackend.send_message,
        "SQSBackend.is_message_valid_based_on_retention_period": (
            SQSBackend.is_message_valid_based_on_retention_period
        ),
        "Queue.attributes": Queue.attributes.fget,
        "Message.visible": Message.visible.fget,
        "Message.delayed": Message.delayed.fget,
        "moto.backends.list_of_moto_modules": backends.list_of_moto_modules,
        "DynamoDBStreamsBackend.__init__": DynamoDBStreamsBackend.__init__,
        "DynamoDBStreamsHandler.get_records": DynamoDBStreamsHandler.get_records,
    }
    replaced = [name for name, function in functions.items() if not function.__module__.startswith("moto.")]
    if dynamodb_models.copy is not copy:
        replaced.append("moto.dynamodb.models.copy")
    return replaced


def _in_a_fresh_interpreter(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def _use(endpoint: str) -> None:
    """A DynamoDB transaction and SQS sends and receives: what the corrections change."""
    options = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    dynamodb = boto3.client("dynamodb", **options)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"k": {"S": "a"}}}}])
    sqs = boto3.client("sqs", **options)
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="g")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])] == ["m"]


def test_starting_moto_servers_as_tests_do_leaves_this_processs_moto_its_own() -> None:
    # Given this process's moto as moto ships it
    assert replaced_moto_functions() == []

    # When moto servers are started as tests start them (on a thread of this process, and as the
    # local stack's child process) and serve what the corrections change
    for own_process in (False, True):
        server = start_moto_server(port=0, own_process=own_process)
        try:
            assert isinstance(server, MotoServerProcess) == own_process
            _use(http_url(*server.get_host_and_port()))
        finally:
            server.stop()

    # Then this process's moto (the one mock_aws tests use) still has only moto's own functions
    assert replaced_moto_functions() == []


def test_apply_replaces_every_corrected_function_once_in_its_own_process() -> None:
    script = (
        "import json; from infra import moto_corrections;"
        "from tests.integration.test_moto_corrections import replaced_moto_functions as replaced;"
        "before = replaced(); moto_corrections.apply(); once = replaced();"
        "from moto.sqs.models import SQSBackend; send = SQSBackend.send_message;"
        "moto_corrections.apply(); print(json.dumps([before, once, replaced(), SQSBackend.send_message is send]))"
    )

    result = _in_a_fresh_interpreter(script)

    assert result.returncode == 0, result.stderr
    before, once, twice, same_send = json.loads(result.stdout.splitlines()[-1])
    assert before == []
    assert sorted(once) == sorted(
        [
            "DynamoDBBackend.transact_write_items",
            "SQSBackend.send_message",
            "SQSBackend.is_message_valid_based_on_retention_period",
            "Queue.attributes",
            "Message.visible",
            "Message.delayed",
            "moto.backends.list_of_moto_modules",
            "moto.dynamodb.models.copy",
            "DynamoDBStreamsBackend.__init__",
            "DynamoDBStreamsHandler.get_records",
        ]
    )
    assert (twice, same_send) == (once, True)  # applied twice: nothing wrapped twice


def test_another_moto_version_is_refused_before_anything_is_corrected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_corrections, "installed_moto_version", lambda: "9.9.9")

    with pytest.raises(moto_corrections.MotoCorrectionError) as refused:
        moto_corrections.apply()

    message = str(refused.value)
    assert message.startswith(
        f"moto corrections were written for moto {moto_corrections.MOTO_VERSION}; installed 9.9.9: "
        "re-check each correction in infra/moto_corrections.py ("
    )
    assert message.endswith("against the new moto and update MOTO_VERSION")
    assert all(correction in message for correction in moto_corrections.CORRECTIONS)
    assert replaced_moto_functions() == []


def test_the_moto_server_process_does_not_start_on_another_moto_version() -> None:
    script = (
        "from infra import moto_corrections, moto_server;"
        "moto_corrections.installed_moto_version = lambda: '9.9.9';"
        "raise SystemExit(moto_server.main(['127.0.0.1', '0']))"
    )

    result = _in_a_fresh_interpreter(script)

    assert result.returncode == 1
    assert "listening" not in result.stdout
    assert "moto corrections were written for moto 5.2.5; installed 9.9.9" in result.stderr


def test_the_corrections_are_written_for_the_moto_pyproject_pins() -> None:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {pin for group in dependencies.values() for pin in group if pin.startswith("moto")}

    assert pins == {f"moto[server]=={moto_corrections.MOTO_VERSION}"}
    assert moto_corrections.installed_moto_version() == moto_corrections.MOTO_VERSION


def test_dynamodb_streams_keeps_only_the_newest_shard_iterators(monkeypatch: pytest.MonkeyPatch) -> None:
    """Correction 5: GetShardIterator and every GetRecords hand out an iterator moto would keep for
    good; the local stack's stream poller asks for a few a second."""
    monkeypatch.setattr(moto_corrections, "SHARD_ITERATORS_KEPT", 3)
    kept = moto_corrections._NewestShardIterators({"old": 0})

    for number in range(5):
        kept[f"iterator-{number}"] = number

    assert list(kept) == ["iterator-2", "iterator-3", "iterator-4"]


def _stream_records(endpoint: str) -> list[dict[str, object]]:
    """Writes of every attribute type to a table with a NEW_AND_OLD_IMAGES stream, then its
    records as boto3 reads them (moto's own ids, sequence numbers and times left out, and sizes:
    moto measures a record with its time in it)."""
    options = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    dynamodb = boto3.client("dynamodb", **options)
    arn = dynamodb.create_table(
        TableName="s",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    item = {
        "k": {"S": "a"},
        "n": {"N": "1.5"},
        "b": {"B": b"\x00\xffbytes"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2"]},
        "m": {"M": {"inner": {"S": "v"}, "blob": {"B": b"\x01"}, "list": {"L": [{"N": "3"}, {"S": "w"}]}}},
        "l": {"L": [{"M": {"deep": {"BOOL": False}}}]},
    }
    dynamodb.put_item(TableName="s", Item=item)
    dynamodb.update_item(
        TableName="s",
        Key={"k": {"S": "a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    dynamodb.delete_item(TableName="s", Key={"k": {"S": "a"}})
    streams = boto3.client("dynamodbstreams", **options)
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    answer = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=10)
    assert isinstance(answer["NextShardIterator"], str)
    records = []
    for record in answer["Records"]:
        record.pop("eventID")
        stream = record["dynamodb"]
        assert stream.pop("ApproximateCreationDateTime").year >= 2025
        assert int(stream.pop("SequenceNumber")) > 0
        assert stream.pop("SizeBytes") > 0
        records.append(record)
    return records


def test_stream_records_read_through_the_correction_are_moto_s_own() -> None:
    # Given moto's own server (a thread of this process) and the corrected one (the child process)
    answers = []
    for own_process in (False, True):
        server = start_moto_server(port=0, own_process=own_process)
        try:
            # When the same writes are made and their stream records read
            answers.append(_stream_records(http_url(*server.get_host_and_port())))
        finally:
            server.stop()

    # Then boto3 reads the same records from both, every attribute type included
    own, corrected = answers
    assert [record["eventName"] for record in corrected] == ["INSERT", "MODIFY", "REMOVE"]
    assert corrected[0]["dynamodb"]["NewImage"]["m"]["M"]["blob"] == {"B": b"\x01"}
    assert corrected == own
