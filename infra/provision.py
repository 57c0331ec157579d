"""Create the template's resources on moto (or any AWS endpoint): the same code builds the
local stack and the test fixtures, so the schema exists once, in template.yaml.

Tables (with their indexes and streams), queues (with redrive policies), buckets (with their notifications to
queues), API Gateway usage plans (name, throttle and quota; without API stages, as the local stack
has no REST API), and — because the local stack has no Lambda service — one SSM parameter per SQS
event source mapping, which the local pollers and the queue restart/pause controls share."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra.template import LocalNames, load_template, resolve, resources

_TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")


def table_definitions(template: dict[str, Any], names: LocalNames) -> dict[str, dict[str, Any]]:
    """CreateTable arguments for each AWS::DynamoDB::Table, keyed by logical id."""
    definitions = {}
    for logical_id, resource in resources(template, "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        args: dict[str, Any] = {"TableName": props.get("TableName", names.physical_name(logical_id))}
        args.update({key: props[key] for key in _TABLE_KEYS if key in props})
        args["BillingMode"] = props.get("BillingMode", "PROVISIONED")
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        if props.get("SSESpecification", {}).get("SSEEnabled"):
            args["SSESpecification"] = {"Enabled": True}
        if "StreamSpecification" in props:
            view = props["StreamSpecification"]["StreamViewType"]
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        definitions[logical_id] = args
    return definitions


def queue_definitions(template: dict[str, Any], names: LocalNames) -> dict[str, dict[str, Any]]:
    """CreateQueue arguments for each AWS::SQS::Queue, dead-letter queues first."""
    definitions = {}
    for logical_id, resource in resources(template, "AWS::SQS::Queue").items():
        props = resolve(resource.get("Properties", {}), template, names)
        attributes = {key: str(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        if props.get("SqsManagedSseEnabled"):
            attributes["SqsManagedSseEnabled"] = "true"
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": policy["deadLetterTargetArn"],
                    "maxReceiveCount": int(policy["maxReceiveCount"]),
                }
            )
        definitions[logical_id] = {"QueueName": names.physical_name(logical_id), "Attributes": attributes}
    return dict(sorted(definitions.items(), key=lambda item: "RedrivePolicy" in item[1]["Attributes"]))


def sqs_event_mappings(template: dict[str, Any], names: LocalNames, refs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every SQS event of every function, as "<function>/<event>" -> its settings."""
    mappings = {}
    for function_id, resource in resources(template, "AWS::Serverless::Function").items():
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event.get("Type") != "SQS":
                continue
            props = resolve(event["Properties"], template, names, refs=refs)
            queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            mappings[f"{function_id}/{event_name}"] = {
                "function": function_id,
                "source_arn": props["Queue"],
                "queue_url": refs[queue_id],
                "batch_size": int(props.get("BatchSize", 10)),
                "maximum_concurrency": int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
                "report_batch_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                "enabled": bool(props.get("Enabled", True)),
            }
    return mappings


def usage_plan_definitions(template: dict[str, Any], names: LocalNames) -> dict[str, dict[str, Any]]:
    """CreateUsagePlan arguments for each AWS::ApiGateway::UsagePlan, keyed by logical id: its
    resolved name, throttle and quota (parameter defaults). ApiStages are left out: locally no
    REST API exists to attach them to."""
    definitions = {}
    for logical_id, resource in resources(template, "AWS::ApiGateway::UsagePlan").items():
        raw = resource.get("Properties", {})
        props = resolve(
            {key: raw[key] for key in ("UsagePlanName", "Description", "Throttle", "Quota") if key in raw},
            template,
            names,
        )
        args: dict[str, Any] = {"name": props.get("UsagePlanName", names.physical_name(logical_id))}
        if props.get("Description"):
            args["description"] = str(props["Description"])
        if "Throttle" in props:
            throttle = props["Throttle"]
            args["throttle"] = {}
            if "RateLimit" in throttle:
                args["throttle"]["rateLimit"] = float(throttle["RateLimit"])
            if "BurstLimit" in throttle:
                args["throttle"]["burstLimit"] = int(throttle["BurstLimit"])
        if "Quota" in props:
            quota = props["Quota"]
            args["quota"] = {"limit": int(quota["Limit"]), "period": str(quota["Period"])}
            if "Offset" in quota:
                args["quota"]["offset"] = int(quota["Offset"])
        definitions[logical_id] = args
    return definitions


def _create_usage_plans(apigateway: Any, definitions: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Create the usage plans missing by name; answers logical id -> usage plan id."""
    existing = {
        plan["name"]: plan["id"]
        for page in apigateway.get_paginator("get_usage_plans").paginate()
        for plan in page.get("items", [])
    }
    ids = {}
    for logical_id, args in definitions.items():
        if args["name"] not in existing:
            existing[args["name"]] = apigateway.create_usage_plan(**args)["id"]
        ids[logical_id] = existing[args["name"]]
    return ids


def _create_bucket(s3: Any, name: str, region: str, props: dict[str, Any]) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "BucketEncryption" in props:
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if props.get("VersioningConfiguration", {}).get("Status"):
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    notifications = bucket_notifications(props)
    if notifications and _queue_targets(s3.get_bucket_notification_configuration(Bucket=name)) != _queue_targets(
        notifications
    ):
        # Only when it differs: S3 (and moto) send an s3:TestEvent to each queue on every put.
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=notifications)


def bucket_notifications(props: dict[str, Any]) -> dict[str, Any]:
    """PutBucketNotificationConfiguration's argument for a bucket's resolved NotificationConfiguration
    (its QueueConfigurations: the only kind the template uses); {} when it has none."""
    queues = []
    for entry in props.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
        queue: dict[str, Any] = {"QueueArn": entry["Queue"], "Events": [entry["Event"]]}
        rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            queue["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
        queues.append(queue)
    return {"QueueConfigurations": queues} if queues else {}


def _queue_targets(configuration: dict[str, Any]) -> set[tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]]:
    return {
        (
            queue["QueueArn"],
            tuple(sorted(queue.get("Events", []))),
            tuple(
                sorted(
                    (rule["Name"].lower(), rule["Value"])
                    for rule in queue.get("Filter", {}).get("Key", {}).get("FilterRules", [])
                )
            ),
        )
        for queue in configuration.get("QueueConfigurations", [])
    }


def _enable_stream(dynamodb: Any, args: dict[str, Any]) -> None:
    """A table that existed before its stream was declared (an external endpoint) gets it."""
    wanted = args.get("StreamSpecification")
    if not wanted:
        return
    current = dynamodb.describe_table(TableName=args["TableName"])["Table"].get("StreamSpecification", {})
    if not current.get("StreamEnabled"):
        dynamodb.update_table(TableName=args["TableName"], StreamSpecification=wanted)


def provision(session: Any, names: LocalNames | None = None, template: dict[str, Any] | None = None) -> dict[str, str]:
    """Create what the template declares, keeping what exists (a paused mapping stays paused).
    Answers logical id -> the value `!Ref` gives (table name, queue URL, bucket name, event bus name,
    usage plan id)."""
    names = names or LocalNames()
    template = template or load_template()
    refs: dict[str, str] = {}

    dynamodb = session.client("dynamodb", region_name=names.region)
    for logical_id, args in table_definitions(template, names).items():
        try:
            dynamodb.create_table(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            _enable_stream(dynamodb, args)
        dynamodb.get_waiter("table_exists").wait(TableName=args["TableName"], WaiterConfig={"Delay": 1})
        refs[logical_id] = args["TableName"]

    sqs = session.client("sqs", region_name=names.region)
    for logical_id, args in queue_definitions(template, names).items():
        try:
            refs[logical_id] = sqs.create_queue(**args)["QueueUrl"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            refs[logical_id] = sqs.get_queue_url(QueueName=args["QueueName"])["QueueUrl"]

    buckets = resources(template, "AWS::S3::Bucket")
    if buckets:
        s3 = session.client("s3", region_name=names.region)
        for logical_id, resource in buckets.items():
            name = names.bucket_name(logical_id)
            _create_bucket(s3, name, names.region, resolve(resource.get("Properties", {}), template, names))
            refs[logical_id] = name

    buses = resources(template, "AWS::Events::EventBus")
    if buses:
        events = session.client("events", region_name=names.region)
        for logical_id, resource in buses.items():
            name = str(
                resolve(resource.get("Properties", {}).get("Name"), template, names) or names.physical_name(logical_id)
            )
            try:
                events.create_event_bus(Name=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
            refs[logical_id] = name

    plans = usage_plan_definitions(template, names)
    if plans:
        refs.update(_create_usage_plans(session.client("apigateway", region_name=names.region), plans))

    mappings = sqs_event_mappings(template, names, refs)
    if mappings:
        ssm = session.client("ssm", region_name=names.region)
        for key, mapping in mappings.items():
            try:
                ssm.put_parameter(
                    Name=f"{names.mappings_parameter_prefix}/{key}",
                    Value=json.dumps(mapping),
                    Type="String",
                    Overwrite=False,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ParameterAlreadyExists":
                    raise
    return refs
