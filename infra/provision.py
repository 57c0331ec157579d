"""Create the template's resources on moto (or any AWS endpoint): the same code builds the
local stack and the test fixtures, so the schema exists once, in template.yaml."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from infra.template import LocalNames, load_template, resources

_TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


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
        definitions[logical_id] = args
    return definitions


def provision(session: Any, names: LocalNames | None = None, template: dict[str, Any] | None = None) -> dict[str, str]:
    """Create what the template declares, skipping what exists. Answers logical id -> physical name."""
    names = names or LocalNames()
    template = template or load_template()
    dynamodb = session.client("dynamodb", region_name=names.region)
    created = {}
    for logical_id, args in table_definitions(template, names).items():
        try:
            dynamodb.create_table(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        dynamodb.get_waiter("table_exists").wait(TableName=args["TableName"], WaiterConfig={"Delay": 1})
        created[logical_id] = args["TableName"]
    return created
