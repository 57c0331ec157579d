"""Invariants of template.yaml that a deploy would not catch until production."""

from __future__ import annotations

import json

import pytest

from infra.template import load_template, resources

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = resources(TEMPLATE, "AWS::Serverless::Function")
QUEUES = resources(TEMPLATE, "AWS::SQS::Queue")
TASK_QUEUES = {name: q for name, q in QUEUES.items() if "RedrivePolicy" in q["Properties"]}
PARAMS = TEMPLATE["Parameters"]


def timeout_of(function_id: str) -> int:
    return FUNCTIONS[function_id]["Properties"].get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])


def sqs_events():
    for function_id, function in FUNCTIONS.items():
        for name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] == "SQS":
                yield function_id, name, event["Properties"]


def test_there_is_a_queue_per_priority_each_with_its_own_dead_letter_queue():
    assert set(TASK_QUEUES) == {f"Tasks{p}Queue" for p in ("Urgent", "High", "Normal", "Low")}
    targets = [q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for q in TASK_QUEUES.values()]
    assert len(set(targets)) == 4
    assert all(target in QUEUES for target in targets)
    assert int(PARAMS["MaxReceiveCount"]["MinValue"]) >= 3


def test_every_queue_is_encrypted():
    assert all(q["Properties"].get("SqsManagedSseEnabled") is True for q in QUEUES.values())


@pytest.mark.parametrize(("function_id", "event", "props"), list(sqs_events()), ids=lambda v: str(v)[:30])
def test_queue_visibility_is_at_least_six_times_its_consumers_timeout(function_id, event, props):
    queue_id = props["Queue"]["Fn::GetAtt"][0]
    assert int(QUEUES[queue_id]["Properties"]["VisibilityTimeout"]) >= 6 * timeout_of(function_id)
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_processor_concurrency_is_bounded_per_priority_with_urgent_highest():
    events = FUNCTIONS["ProcessorFunction"]["Properties"]["Events"]
    defaults = {
        name: int(PARAMS[event["Properties"]["ScalingConfig"]["MaximumConcurrency"]["Ref"]]["Default"])
        for name, event in events.items()
    }
    assert defaults["Urgent"] > defaults["High"] > defaults["Normal"] >= defaults["Low"] >= 2


def test_the_reconciler_runs_every_minute():
    (event,) = FUNCTIONS["ReconcilerFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(1 minute)"


def test_results_bucket_is_private_encrypted_and_tls_only():
    props = RESOURCES["ResultsBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    policy = RESOURCES["ResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny"
    assert policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_tables_are_on_demand_with_recovery_and_encryption():
    for table in resources(TEMPLATE, "AWS::DynamoDB::Table").values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True


def test_no_policy_grants_full_access_and_every_function_logs_with_retention():
    text = json.dumps(FUNCTIONS)
    assert "FullAccess" not in text
    assert '"Action": "*"' not in text
    for function in FUNCTIONS.values():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
