"""ApiGatewayUsagePlans on moto's API Gateway, with the usage plans of template.yaml as
infra/provision.py creates them."""

from __future__ import annotations

import boto3
import pytest

from infra.provision import provision, usage_plan_definitions
from infra.template import LocalNames, load_template
from taskapi import aws
from taskapi.auth.gateway import ApiGatewayUsagePlans
from taskapi.errors import Conflict, InvalidRequest, NotFound
from taskapi.settings import Settings

VALUE = "tk.acme.0123456789abcdef." + "s" * 43


@pytest.fixture
def apigateway(aws_env):
    return aws.client("apigateway")


@pytest.fixture
def plans(apigateway) -> ApiGatewayUsagePlans:
    return ApiGatewayUsagePlans(apigateway, Settings())


def plan_ids(apigateway) -> dict[str, str]:
    return {plan["name"]: plan["id"] for plan in apigateway.get_usage_plans()["items"]}


def keys_on(apigateway, plan_name: str) -> dict[str, str]:
    usage_plan_id = plan_ids(apigateway)[plan_name]
    return {key["id"]: key["value"] for key in apigateway.get_usage_plan_keys(usagePlanId=usage_plan_id)["items"]}


def test_provisioning_creates_the_templates_usage_plans_once(aws_env, apigateway):
    plans = {plan["name"]: plan for plan in apigateway.get_usage_plans()["items"]}
    assert set(plans) == {"taskapi-local-free", "taskapi-local-standard", "taskapi-local-enterprise"}
    defaults = {name: p["Default"] for name, p in load_template()["Parameters"].items()}
    free = plans["taskapi-local-free"]
    assert free["throttle"] == {"rateLimit": float(defaults["FreeRateLimit"]), "burstLimit": defaults["FreeBurstLimit"]}
    assert free["quota"] == {"limit": defaults["FreeQuotaLimit"], "period": defaults["FreeQuotaPeriod"]}
    assert aws_env["FreeUsagePlan"] == free["id"]
    again = provision(boto3.Session(region_name="us-east-1"), LocalNames())
    assert again["StandardUsagePlan"] == plans["taskapi-local-standard"]["id"]
    assert len(apigateway.get_usage_plans()["items"]) == 3


def test_usage_plan_names_follow_the_stack_name():
    definitions = usage_plan_definitions(load_template(), LocalNames(stack_name="taskapi-dev"))
    assert {d["name"] for d in definitions.values()} == {f"taskapi-dev-{p}" for p in ("free", "standard", "enterprise")}


def test_register_puts_the_same_value_on_the_plan(plans, apigateway):
    gateway_key_id = plans.register_key("tk.acme.0123456789abcdef", VALUE, "standard")
    answer = apigateway.get_api_key(apiKey=gateway_key_id, includeValue=True)
    assert (answer["value"], answer["enabled"], answer["name"]) == (VALUE, True, "tk.acme.0123456789abcdef")
    assert keys_on(apigateway, "taskapi-local-standard") == {gateway_key_id: VALUE}
    assert keys_on(apigateway, "taskapi-local-free") == {}


def test_the_plan_ids_are_looked_up_once(plans, apigateway):
    made = []
    apigateway.meta.events.register("before-call.api-gateway.GetUsagePlans", lambda **_: made.append(1))
    plans.plan_id("free")
    plans.plan_id("enterprise")
    plans.plan_id("free")
    assert len(made) == 1


def test_an_unknown_plan_and_a_missing_usage_plan_are_clear_errors(apigateway):
    plans = ApiGatewayUsagePlans(apigateway, Settings(stack_name="elsewhere"))
    with pytest.raises(InvalidRequest, match="the plans are free, standard, enterprise"):
        plans.register_key("k", VALUE, "gold")
    with pytest.raises(NotFound, match="usage plan elsewhere-free does not exist at this endpoint"):
        plans.register_key("k", VALUE, "free")
    assert apigateway.get_api_keys()["items"] == []


def test_a_value_already_registered_is_a_conflict(plans, apigateway):
    plans.register_key("first", VALUE, "free")
    with pytest.raises(Conflict, match="API Gateway could not create API key second"):
        plans.register_key("second", VALUE, "free")
    assert len(apigateway.get_api_keys()["items"]) == 1


def test_delete_detaches_and_deletes_and_tolerates_a_key_gone(plans, apigateway):
    gateway_key_id = plans.register_key("k", VALUE, "free")
    plans.delete_key(gateway_key_id)
    assert keys_on(apigateway, "taskapi-local-free") == {}
    assert apigateway.get_api_keys()["items"] == []
    plans.delete_key(gateway_key_id)
    plans.delete_key("nosuchkey")


def test_move_attaches_the_key_to_the_new_plan_only(plans, apigateway):
    gateway_key_id = plans.register_key("k", VALUE, "free")
    plans.move_key(gateway_key_id, "free", "enterprise")
    assert keys_on(apigateway, "taskapi-local-free") == {}
    assert keys_on(apigateway, "taskapi-local-enterprise") == {gateway_key_id: VALUE}
    plans.move_key(gateway_key_id, "enterprise", "enterprise")
    assert keys_on(apigateway, "taskapi-local-enterprise") == {gateway_key_id: VALUE}
