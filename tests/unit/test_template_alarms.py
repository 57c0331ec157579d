"""Operators see trouble first (issue 17): every queue, dead-letter queue, function and table of
template.yaml has its alarms, and every alarm reaches the encrypted alarm topic."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from infra.template import load_template, resources

TEMPLATE = load_template()
ALARM = "AWS::CloudWatch::Alarm"

THRESHOLD_PARAMETERS = [
    "UrgentQueueAgeAlarmSeconds",
    "HighQueueAgeAlarmSeconds",
    "NormalQueueAgeAlarmSeconds",
    "LowQueueAgeAlarmSeconds",
    "IngestQueueAgeAlarmSeconds",
    "WebhookQueueAgeAlarmSeconds",
    "ApiLatencyP99AlarmMilliseconds",
    "Api5xxRateAlarmPercent",
    "StuckTasksAlarmThreshold",
    "WebhookFailuresAlarmThreshold",
    "StreamIteratorAgeAlarmSeconds",
    "DurationAlarmPercentOfTimeout",
]


def referenced_id(value: Any) -> str | None:
    """The logical id a dimension value names through Ref or GetAtt (None for a literal)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"]).split(".", 1)[0]
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metric an alarm watches, or the metrics of its metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [props]
    return [query["MetricStat"]["Metric"] for query in props.get("Metrics", []) if "MetricStat" in query]


def watched_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, set[str]]]:
    """(metric name, logical ids its dimensions name) of each metric an alarm watches."""
    for metric in alarm_metrics(alarm):
        ids = {referenced_id(d["Value"]) for d in metric.get("Dimensions", [])}
        yield metric["MetricName"], {i for i in ids if i}


def alarmed(template: dict[str, Any]) -> dict[str, set[str]]:
    """Logical id -> the metric names some alarm watches for it."""
    found: dict[str, set[str]] = {}
    for alarm in resources(template, ALARM).values():
        for metric_name, ids in watched_metrics(alarm):
            for logical_id in ids:
                found.setdefault(logical_id, set()).add(metric_name)
    return found


# What each kind of resource must be watched for.
REQUIRED: dict[str, set[str]] = {
    "AWS::SQS::Queue": {"ApproximateAgeOfOldestMessage"},
    "AWS::Serverless::Function": {"Errors", "Throttles", "Duration"},
    "AWS::DynamoDB::Table": {"ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"},
}
DEAD_LETTER_REQUIRED = {"ApproximateNumberOfMessagesVisible"}


def missing_alarms(template: dict[str, Any]) -> dict[str, set[str]]:
    """Logical id -> metrics it has no alarm on; empty when every resource is watched."""
    found = alarmed(template)
    missing: dict[str, set[str]] = {}
    for resource_type, required in REQUIRED.items():
        for logical_id in resources(template, resource_type):
            need = DEAD_LETTER_REQUIRED if logical_id.endswith("DeadLetterQueue") else required
            lacking = need - found.get(logical_id, set())
            if lacking:
                missing[logical_id] = lacking
    return missing


def test_every_queue_dead_letter_queue_function_and_table_has_its_alarms():
    assert missing_alarms(TEMPLATE) == {}


def test_the_check_fails_when_an_alarm_is_deleted():
    # Given the template without one dead-letter queue's alarm and one function's throttle alarm
    template = copy.deepcopy(TEMPLATE)
    del template["Resources"]["WebhookDeliveryDeadLetterQueueAlarm"]
    del template["Resources"]["ProcessorFunctionThrottlesAlarm"]
    # Then the check names exactly those
    assert missing_alarms(template) == {
        "WebhookDeliveryDeadLetterQueue": {"ApproximateNumberOfMessagesVisible"},
        "ProcessorFunction": {"Throttles"},
    }


def test_there_is_something_to_check():
    counts = {t: len(resources(TEMPLATE, t)) for t in REQUIRED}
    assert all(counts.values()), counts
    assert len(resources(TEMPLATE, ALARM)) >= sum(counts.values())


def test_the_stream_consumers_iterator_age_and_the_custom_metrics_are_alarmed():
    found = alarmed(TEMPLATE)
    assert "IteratorAge" in found["CountersFunction"]
    assert "IteratorAge" in found["EventsFunction"]
    custom = {
        metric_name
        for alarm in resources(TEMPLATE, ALARM).values()
        if alarm["Properties"].get("Namespace") == "TaskApi"
        for metric_name, _ in watched_metrics(alarm)
    }
    assert custom == {"TasksStuck", "WebhookDeliveriesFailed"}


def test_the_api_is_alarmed_on_its_5xx_rate_and_p99_latency_at_its_stage():
    title = TEMPLATE["Resources"]["TaskApi"]["Properties"]["DefinitionBody"]["info"]["title"]
    api_metrics = []
    for alarm in resources(TEMPLATE, ALARM).values():
        for metric in alarm_metrics(alarm):
            if metric.get("Namespace") == "AWS/ApiGateway":
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                assert dims == {"ApiName": title, "Stage": {"Ref": "Stage"}}
                api_metrics.append(metric["MetricName"])
    assert sorted(api_metrics) == ["5XXError", "Latency"]


@pytest.mark.parametrize("alarm_id", sorted(resources(TEMPLATE, ALARM)))
def test_every_alarm_notifies_the_topic_both_ways(alarm_id):
    props = TEMPLATE["Resources"][alarm_id]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert props["OKActions"] == [{"Ref": "AlarmTopic"}]


def test_the_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use():
    topic = TEMPLATE["Resources"]["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    key_id = referenced_id(topic["Properties"]["KmsMasterKeyId"])
    key = TEMPLATE["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    grants = {
        action
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Principal"].get("Service") == "cloudwatch.amazonaws.com"
        for action in statement["Action"]
    }
    assert grants == {"kms:Decrypt", "kms:GenerateDataKey*"}


@pytest.mark.parametrize("name", THRESHOLD_PARAMETERS)
def test_every_threshold_is_a_parameter_with_a_default_and_a_description(name):
    param = TEMPLATE["Parameters"][name]
    assert param["Type"] == "Number"
    assert "Default" in param
    assert str(param["Default"]) in param["Description"]


def test_every_threshold_parameter_is_used_by_an_alarm():
    used = {referenced_id(alarm["Properties"]["Threshold"]) for alarm in resources(TEMPLATE, ALARM).values()}
    assert set(THRESHOLD_PARAMETERS) <= used


def test_urgent_work_alarms_soonest():
    params = TEMPLATE["Parameters"]
    age = [int(params[f"{p}QueueAgeAlarmSeconds"]["Default"]) for p in ("Urgent", "High", "Normal", "Low")]
    assert age == sorted(age)
    assert len(set(age)) == 4


def test_the_email_subscription_exists_only_when_an_address_is_given():
    param = TEMPLATE["Parameters"]["AlarmEmail"]
    assert param["Default"] == ""
    assert "Description" in param
    subscriptions = resources(TEMPLATE, "AWS::SNS::Subscription")
    assert list(subscriptions) == ["AlarmEmailSubscription"]
    (subscription,) = subscriptions.values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_the_dashboard_and_the_topic_are_outputs():
    outputs = TEMPLATE["Outputs"]
    assert "OperationsDashboard" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_the_saved_queries_read_every_functions_log_group():
    groups = {f"{function_id}LogGroup" for function_id in resources(TEMPLATE, "AWS::Serverless::Function")}
    queries = resources(TEMPLATE, "AWS::Logs::QueryDefinition")
    assert len(queries) == 2
    for query in queries.values():
        assert {referenced_id(g) for g in query["Properties"]["LogGroupNames"]} == groups
