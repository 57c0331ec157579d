"""infra/provision.py reads the usage plans of template.yaml for the local stack."""

from __future__ import annotations

from infra.provision import usage_plan_definitions
from infra.template import LocalNames, load_template

TEMPLATE = {
    "Parameters": {"Rate": {"Type": "Number", "Default": 7}, "Period": {"Type": "String", "Default": "WEEK"}},
    "Resources": {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "v1"}},
        "GoldUsagePlan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": {"Fn::Sub": "${AWS::StackName}-gold"},
                "Description": "Gold",
                "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "Api.Stage"}}],
                "Throttle": {"RateLimit": {"Ref": "Rate"}, "BurstLimit": "20"},
                "Quota": {"Limit": 100, "Period": {"Ref": "Period"}, "Offset": "1"},
            },
        },
        "BareUsagePlan": {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {}},
    },
}


def test_usage_plans_resolve_name_throttle_and_quota_without_api_stages():
    definitions = usage_plan_definitions(TEMPLATE, LocalNames(stack_name="s1"))
    assert definitions == {
        "GoldUsagePlan": {
            "name": "s1-gold",
            "description": "Gold",
            "throttle": {"rateLimit": 7.0, "burstLimit": 20},
            "quota": {"limit": 100, "period": "WEEK", "offset": 1},
        },
        "BareUsagePlan": {"name": "s1-BareUsagePlan"},
    }


def test_the_template_has_a_usage_plan_per_plan_named_after_the_stack():
    from taskapi.settings import PLANS, Settings, usage_plan_name

    names = {d["name"] for d in usage_plan_definitions(load_template(), LocalNames()).values()}
    assert names == {usage_plan_name(Settings(), plan) for plan in PLANS}
