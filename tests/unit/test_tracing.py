"""Powertools Tracer: on every Lambda handler, on the service calls that do I/O, and free where no
X-Ray daemon listens (the local stack, tests, the CLI never load the X-Ray SDK)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from taskapi.observability import tracing_enabled

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))


def _traced_as_handler(path: Path) -> list[str]:
    """Functions of the module decorated with tracer.capture_lambda_handler (called or not)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr == "capture_lambda_handler":
                    found.append(node.name)
    return found


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.parent.name)
def test_every_lambda_handler_is_traced(path):
    assert _traced_as_handler(path), f"{path.relative_to(ROOT)} has no @tracer.capture_lambda_handler"


def test_there_are_handlers_to_check():
    assert {p.parent.name for p in HANDLERS} >= {
        "api",
        "authorizer",
        "processor",
        "dead_letter",
        "reconciler",
        "ingest",
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "taskapi-processor"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "taskapi-processor", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "taskapi-processor", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "taskapi-processor", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_is_on_only_inside_lambda_unless_switched_off(environ, expected):
    assert tracing_enabled(environ) is expected


def test_outside_lambda_traced_service_calls_run_without_loading_the_x_ray_sdk():
    code = """
import json, sys
from taskapi.observability import tracer
from taskapi.services import tasks
from taskapi.store.memory import InMemoryTaskRepository
from taskapi.store.base import TaskFilters
from taskapi.auth.principal import Principal

@tracer.capture_method(capture_response=False)
def traced(x):
    return x + 1

principal = Principal(account_id="a", user_id="u", auth_method="api_key")
counted = tasks.count_tasks(InMemoryTaskRepository(), principal, TaskFilters())
print(json.dumps({"value": traced(1), "counted": counted, "xray": "aws_xray_sdk.core" in sys.modules}))
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"value": 2, "counted": 0, "xray": False}
