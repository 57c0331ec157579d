"""The local stack's reusable pieces, in process: environment building, moto start, provisioning,
the functions as the template declares them, the schedule, the SQS event the pollers build and how
they read a function's answer, the SQS fault injection and the embedded moto's transactions and queues
(on the local stack's moto server process, the one process whose moto carries the corrections)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from infra import local_stack, welcome
from infra.faults import SqsEntryRefusal
from infra.moto_server import MotoServerProcess
from infra.pollers import Mapping, failed_message_ids, sqs_record
from infra.provision import provision
from infra.runtime import function_specs
from infra.schedule import rate_seconds, schedule_events, scheduled_event
from infra.template import LocalNames, function_environment, load_template, resources

pytestmark = pytest.mark.e2e


def test_api_environment_is_the_templates_with_local_overrides() -> None:
    names = LocalNames(region="eu-west-1")
    template_env = function_environment("ApiFunction", names=names)

    env = local_stack.api_environment(names)

    assert env["TASKAPI_TASKS_TABLE"] == template_env["TASKAPI_TASKS_TABLE"] == "taskapi-local-TasksTable"
    assert env["TASKAPI_API_KEYS_TABLE"] == template_env["TASKAPI_API_KEYS_TABLE"]
    assert env["TASKAPI_JWT_AUDIENCE"] == template_env["TASKAPI_JWT_AUDIENCE"]
    assert env["POWERTOOLS_SERVICE_NAME"] == template_env["POWERTOOLS_SERVICE_NAME"]
    assert (env["TASKAPI_ENVIRONMENT"], env["TASKAPI_ROOT_PATH"]) == ("local", "")
    assert env["POWERTOOLS_METRICS_DISABLED"] == "true"
    # Empty AWS-only values are dropped so that the settings' local defaults apply.
    assert template_env["TASKAPI_JWT_ISSUER"] == ""
    assert "TASKAPI_JWT_ISSUER" not in env
    assert "TASKAPI_JWT_JWKS_URL" not in env


def test_api_environment_keeps_a_configured_issuer() -> None:
    template = load_template()
    parameters = template["Parameters"]
    custom = {**template, "Parameters": {**parameters, "JwtIssuer": {**parameters["JwtIssuer"], "Default": "me"}}}

    env = local_stack.api_environment(LocalNames(), template=custom)

    assert env["TASKAPI_JWT_ISSUER"] == "me"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {"AWS_DEFAULT_REGION": "us-east-1", **local_stack.DUMMY_CREDENTIALS}),
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, local_stack.DUMMY_CREDENTIALS),
        ({"AWS_ACCESS_KEY_ID": "mine", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "eu-west-1"}, {}),
        ({"AWS_PROFILE": "work"}, {"AWS_DEFAULT_REGION": "us-east-1", **local_stack.DUMMY_CREDENTIALS}),
    ],
    ids=["nothing-set", "region-set", "keys-set", "profile-shadowed"],
)
def test_aws_environment_for_the_embedded_server(environ: dict[str, str], expected: dict[str, str]) -> None:
    env = local_stack.aws_environment("http://127.0.0.1:4566", environ, embedded=True)

    assert env == {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", **expected}


@pytest.mark.parametrize("raw", ["abc", "-1", "65536", "80.5"])
def test_an_invalid_port_is_a_stack_error(raw: str) -> None:
    with pytest.raises(local_stack.StackError, match="TASKAPI_PORT"):
        local_stack.StackConfig.from_environ({"TASKAPI_PORT": raw})


def test_config_from_environ_reads_ports_and_endpoint() -> None:
    config = local_stack.StackConfig.from_environ(
        {"TASKAPI_PORT": "9000", "TASKAPI_AWS_PORT": "9001", "AWS_ENDPOINT_URL": "http://localhost:4566"}
    )

    assert (config.api_port, config.aws_port, config.external_endpoint) == (9000, 9001, "http://localhost:4566")
    assert local_stack.StackConfig.from_environ({}) == local_stack.StackConfig(8000, 4566, None)


def test_the_curl_example_is_one_shell_line_carrying_the_key_and_a_valid_body() -> None:
    line = welcome.curl_example("http://127.0.0.1:8000", "tk.demo.0123456789abcdef.s3cr-et_")

    words = shlex.split(line)
    assert "\n" not in line
    assert words[:5] == ["curl", "-sS", "-X", "POST", "http://127.0.0.1:8000/api/tasks/bulk"]
    assert "X-API-Key: tk.demo.0123456789abcdef.s3cr-et_" in words


def test_moto_starts_provisioning_is_idempotent_and_a_taken_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    server = local_stack.start_moto_server(port=0)
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack.http_url(host, port))

        first = provision(boto3.Session())
        second = provision(boto3.Session())

        tables = boto3.client("dynamodb").list_tables()["TableNames"]
        template = load_template()
        table_ids = set(resources(template, "AWS::DynamoDB::Table"))
        assert first == second
        expected = (
            table_ids
            | set(resources(template, "AWS::SQS::Queue"))
            | set(resources(template, "AWS::S3::Bucket"))
            | set(resources(template, "AWS::ApiGateway::UsagePlan"))
            | set(resources(template, "AWS::Events::EventBus"))
        )
        assert set(first) == expected
        buses = boto3.client("events").list_event_buses()["EventBuses"]
        assert first["TaskEventBus"] in {bus["Name"] for bus in buses}
        assert sorted(tables) == sorted(first[logical_id] for logical_id in table_ids)
        assert first["TasksNormalQueue"].startswith(f"http://{host}:{port}/")
        with pytest.raises(local_stack.StackError, match="TASKAPI_AWS_PORT"):
            local_stack.start_moto_server(port=port)
    finally:
        server.stop()
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0


def test_the_moto_server_process_serves_the_corrected_moto_and_ends_with_its_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the local stack's moto server: a child process
    server = local_stack.start_moto_server(port=0, own_process=True)
    assert isinstance(server, MotoServerProcess)
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack.http_url(host, port))
        refs = provision(boto3.Session())
        # Then it serves with the corrections (a FIFO queue deduplicating by content, as moto does)
        sqs = boto3.client("sqs")
        url = sqs.create_queue(
            QueueName="child.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"]
        for _ in range(2):
            sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
        assert _counts(sqs, url)["ApproximateNumberOfMessages"] == "1"
        assert refs["TasksTable"] in boto3.client("dynamodb").list_tables()["TableNames"]
        # And its port is refused to a second server
        with pytest.raises(local_stack.StackError, match="TASKAPI_AWS_PORT"):
            local_stack.start_moto_server(port=port, own_process=True)
    finally:
        server.stop()
    # Then stopped, nothing listens there any more
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0


def test_the_moto_server_process_ends_when_its_parent_does(tmp_path: Path) -> None:
    # Given a parent process that starts the moto server process, then is killed
    script = (
        "import os, sys; sys.path.insert(0, os.getcwd()); from infra.moto_server import MotoServerProcess;"
        "s = MotoServerProcess('127.0.0.1', 0); s.start(); print(*s.get_host_and_port(), flush=True);"
        "import time; time.sleep(600)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        host, port = parent.stdout.readline().split()
        with socket.socket() as probe:
            assert probe.connect_ex((host, int(port))) == 0
    finally:
        parent.kill()
        parent.wait()
    # Then the child sees its stdin close and stops serving
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((host, int(port))) != 0:
                return
        time.sleep(0.2)
    pytest.fail(f"the moto server process still listens on {host}:{port} after its parent was killed")


def test_the_stack_environment_is_every_functions_with_provisioned_refs() -> None:
    names = LocalNames()
    refs = {"TasksNormalQueue": "http://127.0.0.1:4566/123456789012/taskapi-local-TasksNormalQueue"}

    env = local_stack.stack_environment(names, refs)

    assert env["TASKAPI_QUEUE_URL_NORMAL"] == refs["TasksNormalQueue"]
    assert env["TASKAPI_DLQ_URL_NORMAL"] == "taskapi-local-TasksNormalDeadLetterQueue"  # no ref given: its name
    assert env["TASKAPI_RESULTS_BUCKET"] == "taskapi-local-resultsbucket"
    assert env["TASKAPI_PROCESSOR_FUNCTION"] == "taskapi-local-processor"
    assert env["TASKAPI_LOCAL_MAPPINGS_PARAMETER_PREFIX"] == names.mappings_parameter_prefix
    assert (env["TASKAPI_ENVIRONMENT"], env["TASKAPI_ROOT_PATH"]) == ("local", "")
    assert env["TASKAPI_JWT_AUDIENCE"] == "taskapi"  # the API function's own variables are in it
    assert "TASKAPI_JWT_ISSUER" not in env


def test_functions_that_disagree_on_a_variable_cannot_share_the_process() -> None:
    template = copy.deepcopy(load_template())
    processor = template["Resources"]["ProcessorFunction"]["Properties"]
    processor["Environment"] = {"Variables": {"TASKAPI_TASKS_TABLE": "another-table"}}

    with pytest.raises(local_stack.StackError, match="TASKAPI_TASKS_TABLE"):
        local_stack.stack_environment(LocalNames(), template=template)


def test_function_specs_follow_code_uri_handler_and_globals() -> None:
    specs = function_specs()

    processor = specs["ProcessorFunction"]
    assert processor.handler_path == Path(local_stack.__file__).parents[1] / "functions" / "processor" / "app.py"
    assert processor.handler_name == "handler"
    assert (processor.function_name, processor.timeout_seconds, processor.memory_mb) == (
        "taskapi-local-processor",
        900,
        1024,
    )
    assert specs["DeadLetterFunction"].function_name == "taskapi-local-DeadLetterFunction"
    assert (specs["ApiFunction"].timeout_seconds, specs["ApiFunction"].memory_mb) == (29, 1024)  # Globals


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(2 minute)", "rate(0 minutes)", "cron(0 12 * * ? *)"])
def test_expressions_the_local_schedule_does_not_run_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        rate_seconds(expression)


def test_the_templates_schedule_runs_the_reconciler_with_an_eventbridge_event() -> None:
    names = LocalNames()

    (default,) = schedule_events(load_template(), names)
    (fast,) = schedule_events(load_template(), names, period_override=2.5)
    event = scheduled_event(default, names, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))

    assert (default.function, default.event_name, default.period_seconds) == ("ReconcilerFunction", "EveryMinute", 60)
    assert fast.period_seconds == 2.5
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-01-02T03:04:05Z"
    rule = "taskapi-local-ReconcilerFunctionEveryMinute"
    assert event["resources"] == [f"arn:aws:events:us-east-1:{names.account}:rule/{rule}"]


MAPPING = Mapping(
    parameter="/taskapi-local/event-source-mappings/ProcessorFunction/Normal",
    function="ProcessorFunction",
    source_arn="arn:aws:sqs:eu-west-1:123456789012:taskapi-local-TasksNormalQueue",
    queue_url="http://127.0.0.1:4566/123456789012/taskapi-local-TasksNormalQueue",
    batch_size=10,
    maximum_concurrency=5,
    report_batch_item_failures=True,
    enabled=True,
)


def test_an_sqs_message_becomes_a_lambda_sqs_record() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": '{"a": 1}',
        "MD5OfBody": "abc",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
        "MessageAttributes": {
            "kind": {"StringValue": "task", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }

    record = sqs_record(message, MAPPING)

    assert record == {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": '{"a": 1}',
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
        "messageAttributes": {
            "kind": {"stringValue": "task", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "abc",
        "eventSource": "aws:sqs",
        "eventSourceARN": MAPPING.source_arn,
        "awsRegion": "eu-west-1",
    }
    # Powertools reads it like a record Lambda delivered.
    parsed = SQSRecord(record)
    assert parsed.attributes.approximate_receive_count == "2"
    assert parsed.message_attributes["kind"].string_value == "task"


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b", "c"}),
        ({"batchItemFailures": [{}]}, {"a", "b", "c"}),
        ({"batchItemFailures": "b"}, {"a", "b", "c"}),
    ],
    ids=["none", "empty", "no-failures", "one", "unknown-id", "empty-id", "no-id", "not-a-list"],
)
def test_batch_item_failures_are_read_like_lambda_reads_them(response: Any, failed: set[str]) -> None:
    assert failed_message_ids(response, MAPPING, ["a", "b", "c"]) == failed


def test_without_report_batch_item_failures_an_answer_fails_nothing() -> None:
    plain = dataclasses.replace(MAPPING, report_batch_item_failures=False)

    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, plain, ["a", "b"]) == set()


@pytest.fixture(scope="module")
def corrected_moto() -> Iterator[str]:
    """The local stack's moto server (a child process: the corrections apply there alone)."""
    server = local_stack.start_moto_server(port=0, own_process=True)
    try:
        yield local_stack.http_url(*server.get_host_and_port())
    finally:
        server.stop()


@pytest.fixture
def moto_endpoint(corrected_moto: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module's corrected moto server, emptied, and this process's AWS clients pointed at it."""
    httpx.post(f"{corrected_moto}/moto-api/reset", timeout=30).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", corrected_moto)
    return corrected_moto


@pytest.mark.parametrize(("rate", "seed"), [(0.5, 3), (1.0, 0), (0.0, 0)])
def test_refused_entries_come_back_as_failed_and_never_reach_the_queue(
    moto_endpoint: str, rate: float, seed: int
) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="refusals")["QueueUrl"]
    SqsEntryRefusal(rate, seed).install(sqs)
    entries = [{"Id": str(n), "MessageBody": f"message {n}"} for n in range(10)]

    answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)

    failed = {f["Id"] for f in answer.get("Failed", [])}
    sent = {s["Id"] for s in answer.get("Successful", [])}
    assert failed | sent == {e["Id"] for e in entries}
    assert not failed & sent
    assert len(failed) == {0.0: 0, 1.0: 10}.get(rate, len(failed))
    assert all(f["Code"] == "InternalError" and f["SenderFault"] is False for f in answer.get("Failed", []))
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received += [m["Body"] for m in batch]
    assert sorted(received) == sorted(f"message {n}" for n in sent)
    assert len(entries) == 10  # the caller's list is left as it was


def test_transactions_on_the_embedded_moto_roll_back_only_their_own_items(moto_endpoint: str) -> None:
    # Given a table with an item, and a transaction whose second condition fails
    refs = provision(boto3.Session())
    dynamodb = boto3.client("dynamodb")
    table = refs["TasksTable"]
    dynamodb.put_item(TableName=table, Item={"account_id": {"S": "a"}, "task_id": {"S": "kept"}, "v": {"N": "1"}})
    items = [
        {"Put": {"TableName": table, "Item": {"account_id": {"S": "a"}, "task_id": {"S": "new"}}}},
        {
            "Put": {
                "TableName": table,
                "Item": {"account_id": {"S": "a"}, "task_id": {"S": "kept"}, "v": {"N": "2"}},
                "ConditionExpression": "v = :v",
                "ExpressionAttributeValues": {":v": {"N": "9"}},
            }
        },
    ]

    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=items)

    # Then nothing of it was written, and the table is as it was
    key = {"account_id": {"S": "a"}, "task_id": {"S": "kept"}}
    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "1"}
    assert "Item" not in dynamodb.get_item(TableName=table, Key={**key, "task_id": {"S": "new"}})


def test_a_failed_transaction_on_the_embedded_moto_leaves_nothing_in_the_tables_stream(moto_endpoint: str) -> None:
    """moto writes a stream record per item as it applies a transaction; when the transaction then
    fails, the records of writes that never happened are taken back (the stream consumer would
    count them), and the stream is served through the server like DynamoDB's."""
    # Given the tasks table (with its stream) holding one item
    refs = provision(boto3.Session())
    dynamodb = boto3.client("dynamodb")
    table = refs["TasksTable"]
    dynamodb.put_item(TableName=table, Item={"account_id": {"S": "a"}, "task_id": {"S": "kept"}})
    new = {"Put": {"TableName": table, "Item": {"account_id": {"S": "a"}, "task_id": {"S": "new"}}}}
    refused = {
        "Put": {
            "TableName": table,
            "Item": {"account_id": {"S": "a"}, "task_id": {"S": "kept"}},
            "ConditionExpression": "attribute_not_exists(task_id)",
        }
    }

    # When a transaction inserting a new item fails on its second item, then succeeds without it
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[new, refused])
    dynamodb.transact_write_items(TransactItems=[new])

    # Then the stream holds the first put and the successful insert, once
    streams = boto3.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["task_id"]["S"]) for r in records] == [
        ("INSERT", "kept"),
        ("INSERT", "new"),
    ]


@pytest.mark.parametrize("failure", ["condition", "validation"])
def test_a_failed_transaction_on_the_embedded_moto_undoes_updates_deletes_and_puts_in_two_tables(
    moto_endpoint: str, failure: str
) -> None:
    # Given items in a table with a range key and in one without
    refs = provision(boto3.Session())
    dynamodb = boto3.client("dynamodb")
    tasks, keys = refs["TasksTable"], refs["ApiKeysTable"]

    def task_key(task_id: str) -> dict[str, Any]:
        return {"account_id": {"S": "u"}, "task_id": {"S": task_id}}

    dynamodb.put_item(TableName=tasks, Item={**task_key("kept"), "v": {"N": "1"}, "tags": {"SS": ["a"]}})
    dynamodb.put_item(TableName=tasks, Item={**task_key("gone"), "v": {"N": "1"}})
    dynamodb.put_item(TableName=keys, Item={"key_id": {"S": "k1"}, "v": {"N": "1"}})
    before = {
        name: dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        for name, table in (("t", tasks), ("k", keys))
    }
    last: dict[str, Any]
    if failure == "condition":
        last = {"ConditionCheck": {"TableName": tasks, "Key": task_key("kept"), "ConditionExpression": "v = :nine"}}
        last["ConditionCheck"]["ExpressionAttributeValues"] = {":nine": {"N": "9"}}
    else:  # an update moto refuses while applying it (adding a number to a string set)
        last = {
            "Update": {
                "TableName": tasks,
                "Key": task_key("other"),
                "UpdateExpression": "ADD tags :n",
                "ExpressionAttributeValues": {":n": {"N": "1"}},
            }
        }
        dynamodb.put_item(TableName=tasks, Item={**task_key("other"), "tags": {"SS": ["x"]}})
        before["t"] = dynamodb.scan(TableName=tasks, ConsistentRead=True)["Items"]
    items = [
        {
            "Update": {
                "TableName": tasks,
                "Key": task_key("kept"),
                "UpdateExpression": "SET v = :two ADD tags :b",
                "ExpressionAttributeValues": {":two": {"N": "2"}, ":b": {"SS": ["b"]}},
            }
        },
        {"Delete": {"TableName": tasks, "Key": task_key("gone")}},
        {"Put": {"TableName": tasks, "Item": {**task_key("new"), "v": {"N": "1"}}}},
        {"Put": {"TableName": keys, "Item": {"key_id": {"S": "k1"}, "v": {"N": "2"}}}},
        {"Put": {"TableName": keys, "Item": {"key_id": {"S": "k2"}}}},
        last,
    ]

    # When the transaction fails at its last operation
    with pytest.raises(dynamodb.exceptions.ClientError):
        dynamodb.transact_write_items(TransactItems=items)

    # Then both tables hold exactly what they held before
    for name, table in (("t", tasks), ("k", keys)):
        assert dynamodb.scan(TableName=table, ConsistentRead=True)["Items"] == before[name]
    # And the same transaction without its failing operation goes through
    dynamodb.transact_write_items(TransactItems=items[:-1])
    assert dynamodb.get_item(TableName=tasks, Key=task_key("kept"))["Item"]["v"] == {"N": "2"}
    assert "Item" not in dynamodb.get_item(TableName=tasks, Key=task_key("gone"))
    assert dynamodb.get_item(TableName=keys, Key={"key_id": {"S": "k2"}})["Item"] == {"key_id": {"S": "k2"}}


def test_a_failed_transaction_on_the_embedded_moto_never_drops_a_concurrent_write(moto_endpoint: str) -> None:
    # Given failing 100-item transactions (moto rolls each back from a snapshot) in one thread
    refs = provision(boto3.Session())
    table = refs["TasksTable"]
    transactions, writer = boto3.client("dynamodb"), boto3.client("dynamodb")
    transactions.put_item(TableName=table, Item={"account_id": {"S": "tx"}, "task_id": {"S": "guard"}})
    doomed = [
        {"Put": {"TableName": table, "Item": {"account_id": {"S": "tx"}, "task_id": {"S": f"t{n}"}}}} for n in range(99)
    ] + [
        {
            "Put": {
                "TableName": table,
                "Item": {"account_id": {"S": "tx"}, "task_id": {"S": "guard"}},
                "ConditionExpression": "attribute_not_exists(task_id)",
            }
        }
    ]
    stop = threading.Event()

    def fail_transactions() -> None:
        while not stop.is_set():
            with contextlib.suppress(transactions.exceptions.TransactionCanceledException):
                transactions.transact_write_items(TransactItems=doomed)

    thread = threading.Thread(target=fail_transactions)
    thread.start()
    try:
        # When another client writes items meanwhile
        for n in range(150):
            writer.put_item(TableName=table, Item={"account_id": {"S": "w"}, "task_id": {"S": f"w{n}"}})
    finally:
        stop.set()
        thread.join()

    # Then every one of them is still there
    stored = writer.query(
        TableName=table,
        KeyConditionExpression="account_id = :a",
        ExpressionAttributeValues={":a": {"S": "w"}},
        Select="COUNT",
    )
    assert stored["Count"] == 150


def _counts(sqs: Any, url: str) -> dict[str, str]:
    names = [f"ApproximateNumberOfMessages{part}" for part in ("", "NotVisible", "Delayed")]
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"])


def test_the_embedded_sqs_counts_delays_and_receives_like_moto(moto_endpoint: str) -> None:
    # Given a standard queue holding 25 messages, 5 of them delayed
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="counted", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    for start in range(0, 20, 10):
        entries = [{"Id": str(n), "MessageBody": f"m{n}"} for n in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"late{n}", DelaySeconds=60)
    assert _counts(sqs, url) == {
        "ApproximateNumberOfMessages": "20",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "5",
    }

    # When 12 are received (within their retention period) with a visibility timeout
    received = []
    while len(received) < 12:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, 12 - len(received)), VisibilityTimeout=60)
        received += [m["Body"] for m in batch.get("Messages", [])]

    # Then they are in flight, the delayed ones are not received, and the counts follow
    assert len(set(received)) == 12
    assert not any(body.startswith("late") for body in received)
    assert _counts(sqs, url) == {
        "ApproximateNumberOfMessages": "8",
        "ApproximateNumberOfMessagesNotVisible": "12",
        "ApproximateNumberOfMessagesDelayed": "5",
    }
    every_attribute = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "ContentBasedDeduplication" not in every_attribute


def test_the_embedded_sqs_deduplicates_fifo_messages_by_content(moto_endpoint: str) -> None:
    # Given FIFO queues with and without content-based deduplication
    sqs = boto3.client("sqs")
    by_content = sqs.create_queue(
        QueueName="by-content.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    by_id = sqs.create_queue(QueueName="by-id.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]

    # When the same body is sent twice to each (with distinct deduplication ids where required)
    for _ in range(2):
        sqs.send_message(QueueUrl=by_content, MessageBody="same", MessageGroupId="g")
    for n in range(2):
        sqs.send_message(QueueUrl=by_id, MessageBody="same", MessageGroupId="g", MessageDeduplicationId=f"d{n}")

    # Then the content-deduplicated queue keeps one, the other both; without a deduplication id
    # the queue without content-based deduplication refuses the message
    assert _counts(sqs, by_content)["ApproximateNumberOfMessages"] == "1"
    assert _counts(sqs, by_id)["ApproximateNumberOfMessages"] == "2"
    with pytest.raises(sqs.exceptions.ClientError, match="ContentBasedDeduplication"):
        sqs.send_message(QueueUrl=by_id, MessageBody="other", MessageGroupId="g")
    assert sqs.get_queue_attributes(QueueUrl=by_content, AttributeNames=["ContentBasedDeduplication"])[
        "Attributes"
    ] == {"ContentBasedDeduplication": "true"}


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"TASKAPI_LOCAL_SCHEDULE_SECONDS": "0"}, "TASKAPI_LOCAL_SCHEDULE_SECONDS"),
        ({"TASKAPI_LOCAL_SCHEDULE_SECONDS": "soon"}, "TASKAPI_LOCAL_SCHEDULE_SECONDS"),
        ({"TASKAPI_LOCAL_MAX_CONCURRENCY": "0"}, "TASKAPI_LOCAL_MAX_CONCURRENCY"),
        ({"TASKAPI_LOCAL_RETRY_VISIBILITY_SECONDS": "-1"}, "TASKAPI_LOCAL_RETRY_VISIBILITY_SECONDS"),
        ({"TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE": "1.5"}, "TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE"),
        ({"TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE": "0.1", "TASKAPI_LOCAL_FAULT_SEED": "x"}, "TASKAPI_LOCAL_FAULT_SEED"),
    ],
)
def test_invalid_local_options_are_stack_errors_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(local_stack.StackError, match=variable):
        local_stack.StackConfig.from_environ(environ)


def test_local_options_from_environ() -> None:
    config = local_stack.StackConfig.from_environ(
        {
            "TASKAPI_LOCAL_SCHEDULE_SECONDS": "2.5",
            "TASKAPI_LOCAL_MAX_CONCURRENCY": "1",
            "TASKAPI_LOCAL_RETRY_VISIBILITY_SECONDS": "0",
            "TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE": "0.2",
        }
    )

    assert (config.schedule_seconds, config.max_concurrency, config.retry_visibility_seconds) == (2.5, 1, 0)
    assert config.sqs_refusal is not None
    assert config.sqs_refusal.rate == 0.2
