"""The local stack's reusable pieces, in process: environment building, moto start, provisioning."""

from __future__ import annotations

import shlex
import socket

import boto3
import pytest

from infra import local_stack
from infra.provision import provision
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
    line = local_stack.curl_example("http://127.0.0.1:8000", "tk.demo.0123456789abcdef.s3cr-et_")

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
        assert first == second
        assert set(first) == set(resources(load_template(), "AWS::DynamoDB::Table"))
        assert sorted(tables) == sorted(first.values())
        with pytest.raises(local_stack.StackError, match="TASKAPI_AWS_PORT"):
            local_stack.start_moto_server(port=port)
    finally:
        server.stop()
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0
