"""Every function's built handler loads the way Lambda loads it: in a fresh interpreter that sees
only the function's build directory, its layers and the standard library. A dependency missing
from shared/requirements.txt, a module left out of the layer or a wheel for the wrong platform
fails here instead of on the first request in AWS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.template import LocalNames, function_environment, resolve, resources
from tests.packaging.sam_build import (
    Build,
    fail_or_skip,
    function_ids,
    function_layer_ids,
    function_setting,
    source_template,
)

PROBE = Path(__file__).with_name("lambda_probe.py")
REGION = "us-east-1"
ACCOUNT = "123456789012"
# Any AWS call made during the check fails at once on this machine instead of reaching AWS.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"
PROBE_TIMEOUT_SECONDS = 120


def interpreter_for(runtime: str) -> str:
    """A CPython of the function's runtime version: the layer's native wheels are built for it."""
    version = runtime.removeprefix("python")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        fail_or_skip(f"python{version} (the functions' runtime) is not on PATH")
    return str(found)


def lambda_environment(logical_id: str, handler: str, task_root: Path, home: Path) -> dict[str, str]:
    """What the Lambda runtime sets, plus the variables template.yaml gives the function.
    Nothing of this process's environment is inherited."""
    template = source_template()
    name = f"taskapi-{logical_id}"
    runtime = function_setting(template, logical_id, "Runtime")
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function_setting(template, logical_id, "MemorySize", 128)),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "packaging-check",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "packaging-check",
        "AWS_SECRET_ACCESS_KEY": "packaging-check",
        "AWS_SESSION_TOKEN": "packaging-check",
        "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        **function_environment(logical_id, template),
    }


def rest_api_get_event(path: str, stage: str) -> dict[str, Any]:
    """An API Gateway REST (payload 1.0) proxy event for GET `path`, without credentials."""
    headers = {"Accept": "*/*", "Host": "packaging.execute-api.us-east-1.amazonaws.com", "User-Agent": "packaging"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "packaging",
            "domainName": headers["Host"],
            "httpMethod": "GET",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers["User-Agent"]},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": f"packaging-{path.strip('/').replace('/', '-') or 'root'}",
            "requestTimeEpoch": int(time.time() * 1000),
            "resourcePath": path,
            "stage": stage,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def public_get_routes(logical_id: str) -> list[tuple[str, str]]:
    """(path, stage) of the GETs of a fixed path that a REST API of the template sends to the
    function without an authorizer (`security: []` in its DefinitionBody): the routes that answer
    without credentials or stored data (health, OpenAPI document, docs)."""
    template = source_template()
    routes = []
    for api in resources(template, "AWS::Serverless::Api").values():
        properties = api.get("Properties", {})
        stage = str(resolve(properties.get("StageName", "Prod"), template, LocalNames()))
        for path, methods in properties.get("DefinitionBody", {}).get("paths", {}).items():
            get = methods.get("get")
            if get is None or "{" in path or get.get("security") != []:
                continue
            uri = get.get("x-amazon-apigateway-integration", {}).get("uri", {})
            if isinstance(uri, dict) and f"${{{logical_id}.Arn}}" in str(uri.get("Fn::Sub", "")):
                routes.append((path, stage))
    return sorted(routes)


def probe(build: Build, logical_id: str, tmp_path: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    template = source_template()
    handler = function_setting(template, logical_id, "Handler")
    runtime = function_setting(template, logical_id, "Runtime")
    timeout = int(function_setting(template, logical_id, "Timeout", 3))
    task_root = build.artifact_dir(logical_id)
    assert task_root.is_dir(), f"{logical_id} has no build directory at {task_root}"
    path = [str(task_root)]
    for layer_id in function_layer_ids(template, logical_id):
        layer_paths = build.layer_python_paths(layer_id, runtime)
        assert layer_paths, f"layer {layer_id} of {logical_id} has no python/ directory in {build.root}"
        path += [str(p) for p in layer_paths]
    request = {
        "path": path,
        "handler": handler,
        "events": events,
        "context": {
            "function_name": f"taskapi-{logical_id}",
            "invoked_function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:taskapi-{logical_id}",
            "memory_limit_in_mb": int(function_setting(template, logical_id, "MemorySize", 128)),
            "aws_request_id": "packaging-check",
            "timeout_seconds": timeout,
        },
    }
    request_file, result_file = tmp_path / "request.json", tmp_path / "result.json"
    request_file.write_text(json.dumps(request))
    home = tmp_path / "home"
    home.mkdir()
    # -I: no user site, no PYTHON* variables, no script directory on sys.path; -S: no site-packages
    # (so nothing installed in this virtualenv); -B: no __pycache__ written into the build output.
    completed = subprocess.run(
        [interpreter_for(runtime), "-I", "-S", "-B", str(PROBE), str(request_file), str(result_file)],
        env=lambda_environment(logical_id, handler, task_root, home),
        cwd=task_root,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
        check=False,
    )
    crashed = f"the probe of {logical_id} crashed (exit {completed.returncode})\n{completed.stdout}{completed.stderr}"
    assert completed.returncode == 0, crashed
    assert result_file.is_file(), crashed
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["output"] = completed.stdout + completed.stderr
    return result


@pytest.mark.parametrize("logical_id", function_ids())
def test_built_handler_imports_with_only_its_code_layers_and_stdlib(build: Build, logical_id: str, tmp_path: Path):
    # Given the function's build directory and its layers' python/ directories
    # When a clean interpreter imports the handler from them
    result = probe(build, logical_id, tmp_path, events=[])
    # Then it loads from the build output, and the handler is a callable
    assert result["imported"], f"{logical_id}: importing the handler failed\n{result.get('error')}\n{result['output']}"
    assert Path(result["module_file"]).is_relative_to(build.root), result["module_file"]
    handler = function_setting(source_template(), logical_id, "Handler")
    assert result["has_attribute"], f"{logical_id}: the module of {handler!r} has no such attribute"
    assert result["callable"], f"{logical_id}: the handler is not callable"
    assert not any("site-packages" in entry and build.root.as_posix() not in entry for entry in result["sys_path"]), (
        f"the probe saw site-packages outside the build: {result['sys_path']}"
    )


@pytest.mark.parametrize(
    ("logical_id", "path", "stage"),
    [(logical_id, path, stage) for logical_id in function_ids() for path, stage in public_get_routes(logical_id)],
)
def test_built_api_answers_its_public_get_routes(build: Build, logical_id: str, path: str, stage: str, tmp_path: Path):
    # Given an API Gateway proxy event for a route that needs neither credentials nor data
    event = rest_api_get_event(path, stage)
    # When the built handler runs it in a clean interpreter
    result = probe(build, logical_id, tmp_path, events=[event])
    assert result["imported"], f"{logical_id}: importing the handler failed\n{result.get('error')}\n{result['output']}"
    (invocation,) = result["invocations"]
    # Then it answers 200 with a body, as it would in Lambda
    assert "error" not in invocation, f"GET {path} raised\n{invocation['error']}\n{result['output']}"
    answer = invocation["answer"]
    assert answer["statusCode"] == 200, f"GET {path} answered {answer}\n{result['output']}"
    assert answer["body"]
