"""Invariants of template.yaml that a deploy would not catch until production."""

from __future__ import annotations

import json
import re

import pytest

from infra.template import LocalNames, load_template, resolve, resources
from taskapi.http.app import create_app

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = resources(TEMPLATE, "AWS::Serverless::Function")
QUEUES = resources(TEMPLATE, "AWS::SQS::Queue")
TASK_QUEUES = {name: q for name, q in QUEUES.items() if "RedrivePolicy" in q["Properties"] and name.startswith("Tasks")}
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


# ---------------------------------------------------------------- gateway identity
API = RESOURCES["TaskApi"]["Properties"]
BODY = API["DefinitionBody"]
AUTHORIZER = BODY["components"]["securitySchemes"]["TaskAuthorizer"]["x-amazon-apigateway-authorizer"]
USAGE_PLANS = resources(TEMPLATE, "AWS::ApiGateway::UsagePlan")


def test_the_api_meters_callers_by_the_key_its_authorizer_names():
    assert BODY["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    assert AUTHORIZER["type"] == "request"
    assert "AuthorizerFunction.Arn" in AUTHORIZER["authorizerUri"]["Fn::Sub"]
    (security,) = BODY["paths"]["/api/{proxy+}"]["x-amazon-apigateway-any-method"]["security"]
    assert security == {"TaskAuthorizer": [], "UsagePlanKey": []}  # authorizer AND API key required
    for public in ("/health", "/openapi.json", "/docs"):
        assert BODY["paths"][public]["get"]["security"] == []


PUBLIC_PATHS = {"/health", "/openapi.json", "/docs"}


def test_every_path_the_app_serves_is_routed_and_only_public_ones_skip_the_authorizer():
    """A route outside /api (the reference's /task/requeue-pending) needs its own gateway path,
    guarded and integrated exactly like /api/{proxy+}, or API Gateway answers it 403 by itself."""
    served = set(create_app().openapi()["paths"])
    assert {path for path in served if not path.startswith("/api/")} <= set(BODY["paths"])
    proxy = BODY["paths"]["/api/{proxy+}"]["x-amazon-apigateway-any-method"]
    for path, item in BODY["paths"].items():
        if path in PUBLIC_PATHS or path == "/api/{proxy+}":
            continue
        assert set(item) == {"x-amazon-apigateway-any-method"}, path  # the app answers 405 for a wrong method
        operation = item["x-amazon-apigateway-any-method"]
        assert operation["security"] == proxy["security"], path
        assert operation["x-amazon-apigateway-integration"] == proxy["x-amazon-apigateway-integration"], path
    assert "/task/requeue-pending" in BODY["paths"]


def test_authorizer_caching_is_keyed_on_every_header_the_decision_reads():
    """A cached Allow for one account must never answer a request for another: the cache key
    holds the credentials and X-Account-ID. With the cache off there are no identity sources,
    since API Gateway answers 401 by itself when one is missing (API key callers send no
    Authorization, bearer callers no X-API-Key)."""
    assert AUTHORIZER["authorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheTtlSeconds"}
    condition, cached, uncached = AUTHORIZER["identitySource"]["Fn::If"]
    assert TEMPLATE["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthorizerCacheTtlSeconds"}, 0]}]}
    sources = {s.strip() for s in cached.split(",")}
    assert sources == {f"method.request.header.{h}" for h in ("Authorization", "X-API-Key", "X-Account-ID")}
    assert uncached == {"Ref": "AWS::NoValue"}
    ttl = PARAMS["AuthorizerCacheTtlSeconds"]
    assert (int(ttl["MinValue"]), int(ttl["MaxValue"])) == (0, 3600)


def test_the_authorizer_reads_the_key_store_and_nothing_else():
    authorizer = FUNCTIONS["AuthorizerFunction"]["Properties"]
    assert authorizer["Policies"] == [{"DynamoDBReadPolicy": {"TableName": {"Ref": "ApiKeysTable"}}}]
    assert timeout_of("AuthorizerFunction") <= 10


def test_there_is_a_usage_plan_per_plan_with_rate_burst_and_quota_parameters():
    names = {p["Properties"]["UsagePlanName"]["Fn::Sub"] for p in USAGE_PLANS.values()}
    assert names == {"${AWS::StackName}-free", "${AWS::StackName}-standard", "${AWS::StackName}-enterprise"}
    for logical_id, plan in USAGE_PLANS.items():
        prefix = logical_id.removesuffix("UsagePlan")
        props = plan["Properties"]
        assert props["Throttle"] == {
            "RateLimit": {"Ref": f"{prefix}RateLimit"},
            "BurstLimit": {"Ref": f"{prefix}BurstLimit"},
        }
        assert props["Quota"] == {"Limit": {"Ref": f"{prefix}QuotaLimit"}, "Period": {"Ref": f"{prefix}QuotaPeriod"}}
        assert props["ApiStages"] == [{"ApiId": {"Ref": "TaskApi"}, "Stage": {"Ref": "TaskApi.Stage"}}]
        ceiling = f"TASKAPI_MAX_UNFINISHED_{prefix.upper()}"
        assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"][ceiling] == {
            "Ref": f"{prefix}MaxUnfinishedTasks"
        }


def test_gateway_errors_answer_json_detail_like_the_app():
    responses = API["GatewayResponses"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == 401
    assert responses["ACCESS_DENIED"]["StatusCode"] == 403
    assert responses["THROTTLED"]["StatusCode"] == 429
    assert responses["QUOTA_EXCEEDED"]["StatusCode"] == 429
    assert "Retry-After" in responses["THROTTLED"]["ResponseParameters"]["Headers"]
    for name, response in responses.items():
        template = response["ResponseTemplates"]["application/json"]
        rendered = template.replace("$context.error.messageString", '"x"').replace("$context.authorizer.detail", "x")
        assert set(json.loads(rendered)) == {"detail"}, name


def test_api_gateway_may_invoke_the_api_and_the_authorizer():
    permissions = resources(TEMPLATE, "AWS::Lambda::Permission")
    targets = {p["Properties"]["FunctionName"]["Ref"] for p in permissions.values()}
    assert {"ApiFunction", "AuthorizerFunction"} <= targets


# ---------------------------------------------------------------- generation providers (Bedrock)
GENERATION = {  # parameter prefix -> settings/env prefix
    "Quiz": "QUIZ",
    "Documentation": "DOCUMENTATION",
    "AnimatedLesson": "ANIMATED_LESSON",
    "VideoScript": "VIDEO_SCRIPT",
}
DEFAULT_MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
BEDROCK_POLICY = RESOURCES["ProcessorBedrockPolicy"]


def condition_holds(name: str, params: dict[str, str]) -> bool:
    """Evaluate one of the template's Conditions for the given parameter values (defaults else)."""
    values = {key: str(param.get("Default", "")) for key, param in PARAMS.items()} | params

    def value(node):
        return values[node["Ref"]] if isinstance(node, dict) else str(node)

    def holds(node) -> bool:
        ((function, arg),) = node.items()
        if function in ("Condition", "Fn::Condition"):  # infra.template reads `!Condition X` as Fn::Condition
            return holds(TEMPLATE["Conditions"][arg])
        if function == "Fn::Equals":
            return value(arg[0]) == value(arg[1])
        if function == "Fn::Not":
            return not holds(arg[0])
        if function == "Fn::Or":
            return any(holds(a) for a in arg)
        if function == "Fn::And":
            return all(holds(a) for a in arg)
        raise AssertionError(f"unexpected condition function {function}")

    return holds(TEMPLATE["Conditions"][name])


def render(node, params: dict[str, str]):
    """A template value as CloudFormation would deploy it with these parameters: Fn::If decided,
    AWS::NoValue dropped, then Ref and Fn::Sub resolved (us-east-1, account 123456789012)."""

    no_value = {"Ref": "AWS::NoValue"}

    def decide(value):
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return decide(when_true if condition_holds(condition, params) else when_false)
        if isinstance(value, dict):
            return {k: v for k, v in ((k, decide(v)) for k, v in value.items()) if v != no_value}
        if isinstance(value, list):
            return [v for v in map(decide, value) if v != no_value]
        return value

    return resolve(decide(node), TEMPLATE, LocalNames(), parameters=params)


def bedrock_statements(params: dict[str, str]) -> list[dict]:
    """The processor's Bedrock statements as deployed with these parameters ([] without the policy)."""
    if not condition_holds(BEDROCK_POLICY["Condition"], params):
        return []
    return render(BEDROCK_POLICY["Properties"]["PolicyDocument"], params)["Statement"]


@pytest.mark.parametrize("kind", GENERATION)
def test_every_generation_parameter_has_its_documented_default_and_reaches_the_functions(kind):
    env = GENERATION[kind]
    provider, model = PARAMS[f"{kind}Provider"], PARAMS[f"{kind}ModelId"]
    assert (provider["Default"], provider["AllowedValues"]) == ("builtin", ["builtin", "bedrock"])
    assert model["Default"] == DEFAULT_MODEL
    pattern = re.compile(model["AllowedPattern"])
    assert pattern.match(DEFAULT_MODEL)
    assert pattern.match("amazon.nova-pro-v1:0")
    for wrong in ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "*", "anthropic.*", "anthropic", "a.b/c"):
        assert not pattern.match(wrong), wrong
    assert provider["Description"]
    assert model["Description"]

    # Globals: the processor generates with them, the API and ingest check request_data.provider.
    assert GLOBAL_ENV[f"TASKAPI_{env}_PROVIDER"] == {"Ref": f"{kind}Provider"}
    variable = f"TASKAPI_{env}_MODEL_ID"
    assert render(GLOBAL_ENV[variable], {}) == f"us.{DEFAULT_MODEL}"
    assert render(GLOBAL_ENV[variable], {"BedrockInferenceProfile": "eu"}) == f"eu.{DEFAULT_MODEL}"
    assert render(GLOBAL_ENV[variable], {"BedrockInferenceProfile": "none"}) == DEFAULT_MODEL
    assert render(GLOBAL_ENV[variable], {f"{kind}ModelId": "amazon.nova-pro-v1:0"}) == "us.amazon.nova-pro-v1:0"
    for function_id in ("ProcessorFunction", "ApiFunction", "IngestFunction"):
        own = FUNCTIONS[function_id]["Properties"].get("Environment", {}).get("Variables", {})
        assert not {f"TASKAPI_{env}_PROVIDER", variable} & set(own), function_id  # nothing shadows Globals


def test_the_inference_profile_and_override_parameters_default_to_us_and_off():
    profile = PARAMS["BedrockInferenceProfile"]
    assert profile["Default"] == "us"
    assert profile["AllowedValues"] == ["none", "us", "eu", "apac", "jp", "au", "ca", "global"]
    override = PARAMS["AllowProviderOverride"]
    assert (override["Default"], override["AllowedValues"]) == ("false", ["false", "true"])
    assert GLOBAL_ENV["TASKAPI_ALLOW_PROVIDER_OVERRIDE"] == {"Ref": "AllowProviderOverride"}
    assert profile["Description"]
    assert override["Description"]


def test_a_deployment_of_builtin_providers_without_overrides_has_no_bedrock_permission():
    assert BEDROCK_POLICY["Condition"] == "AnyTypeCanUseBedrock"
    for profile in ("us", "none"):  # not even an empty policy: the resource is not created
        assert not condition_holds("AnyTypeCanUseBedrock", {"BedrockInferenceProfile": profile})
    assert condition_holds("AnyTypeCanUseBedrock", {"AllowProviderOverride": "true"})
    assert condition_holds("AnyTypeCanUseBedrock", {"VideoScriptProvider": "bedrock"})
    assert "bedrock" not in json.dumps(FUNCTIONS).lower().replace("bedrockinferenceprofile", "")
    for logical_id, resource in RESOURCES.items():
        if logical_id != "ProcessorBedrockPolicy":
            assert "bedrock:" not in json.dumps(resource), logical_id


def test_the_bedrock_policy_is_the_processors_alone():
    assert BEDROCK_POLICY["Type"] == "AWS::IAM::Policy"
    # ProcessorFunctionRole: the role SAM makes for ProcessorFunction (cfn-lint and sam validate resolve it).
    assert BEDROCK_POLICY["Properties"]["Roles"] == [{"Ref": "ProcessorFunctionRole"}]


def test_a_bedrock_type_may_invoke_its_model_through_the_profile_and_nothing_else():
    (statement,) = bedrock_statements({"QuizProvider": "bedrock"})
    assert statement == {
        "Sid": "InvokeQuizModel",
        "Effect": "Allow",
        "Action": "bedrock:InvokeModel",
        "Resource": [
            f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{DEFAULT_MODEL}",
            f"arn:aws:bedrock:*::foundation-model/{DEFAULT_MODEL}",
        ],
    }
    direct = {
        "VideoScriptProvider": "bedrock",
        "BedrockInferenceProfile": "none",
        "VideoScriptModelId": "amazon.nova-pro-v1:0",
    }
    (statement,) = bedrock_statements(direct)
    assert statement["Sid"] == "InvokeVideoScriptModel"
    assert statement["Resource"] == ["arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"]


@pytest.mark.parametrize(
    "params",
    [
        {"QuizProvider": "bedrock"},
        {"DocumentationProvider": "bedrock", "AnimatedLessonProvider": "bedrock", "BedrockInferenceProfile": "eu"},
        {"AllowProviderOverride": "true"},
        {"AllowProviderOverride": "true", "BedrockInferenceProfile": "none"},
        {kind + "Provider": "bedrock" for kind in GENERATION} | {"BedrockInferenceProfile": "global"},
    ],
    ids=lambda params: ",".join(f"{k}={v}" for k, v in params.items()),
)
def test_bedrock_statements_cover_exactly_the_types_that_can_use_it_and_name_their_models(params):
    models = {kind: f"{kind.lower()}.model-v1:0" for kind in GENERATION}  # distinct model per type
    params = params | {f"{kind}ModelId": model for kind, model in models.items()}
    overrides = params.get("AllowProviderOverride") == "true"
    expected = {kind for kind in GENERATION if overrides or params.get(f"{kind}Provider") == "bedrock"}

    statements = bedrock_statements(params)

    assert {s["Sid"].removeprefix("Invoke").removesuffix("Model") for s in statements} == expected
    for statement in statements:
        kind = statement["Sid"].removeprefix("Invoke").removesuffix("Model")
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "bedrock:InvokeModel"  # authorises Converse; nothing wider
        assert "Condition" not in statement
        assert "NotResource" not in statement
        for arn in statement["Resource"]:
            assert not arn.endswith("*"), arn
            assert arn.endswith(f"/{models[kind]}") or arn.endswith(f".{models[kind]}"), arn
            assert arn.split(":")[2] == "bedrock"


# ---------------------------------------------------------------- counters (the tasks table's stream)
STREAM_READERS = [
    ("CountersFunction", "TaskChanges", "TasksTable", "CountersDeadLetterQueue"),
    ("EventsFunction", "CounterChanges", "CountersTable", "EventsDeadLetterQueue"),
    ("EventsFunction", "TaskChanges", "TasksTable", "EventsDeadLetterQueue"),
]
"""Every DynamoDB stream consumer: the tasks table's stream has two (Lambda's advice: at most two
per shard), the counters table's one."""


def test_the_streams_carry_both_images_to_their_consumers_each_batch_retried_whole():
    for table in ("TasksTable", "CountersTable"):
        assert RESOURCES[table]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    readers = sorted(
        (function_id, name, event["Properties"])
        for function_id, function in FUNCTIONS.items()
        for name, event in function["Properties"].get("Events", {}).items()
        if event["Type"] == "DynamoDB"
    )
    assert [(function_id, name) for function_id, name, _ in readers] == [(f, n) for f, n, _, _ in STREAM_READERS]
    for (_, _, props), (_, _, table, dead_letters) in zip(readers, STREAM_READERS, strict=True):
        assert props["Stream"] == {"Fn::GetAtt": [table, "StreamArn"]}
        # Retries start at the same first record, one batch per shard at a time: the consumers'
        # markers (counter chunks, event ids) then make a redelivered batch count and send once.
        assert props["StartingPosition"] == "TRIM_HORIZON"
        assert props["BisectBatchOnFunctionError"] is False
        assert props["ParallelizationFactor"] == 1
        assert 0 < props["MaximumRetryAttempts"] <= 100
        assert props["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS",  # SAM grants sqs:SendMessage on it
            "Destination": {"Fn::GetAtt": [dead_letters, "Arn"]},
        }
        assert "FunctionResponseTypes" not in props  # the whole batch is retried, never a part of it


def test_the_counters_table_is_keyed_by_counter_and_expires_markers():
    props = RESOURCES["CountersTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "counter_key", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert GLOBAL_ENV["TASKAPI_COUNTERS_TABLE"] == {"Ref": "CountersTable"}
    assert TEMPLATE["Outputs"]["CountersTableName"]["Value"] == {"Ref": "CountersTable"}


def test_the_counters_function_writes_the_counters_table_and_nothing_else():
    counters = FUNCTIONS["CountersFunction"]["Properties"]
    assert counters["Policies"] == [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "CountersTable"}}}]
    assert counters["CodeUri"] == "functions/counters/"
