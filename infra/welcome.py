"""What `make dev` makes for a developer and prints: the demo account's API key and bearer
token, an operator's key, and the banner with a curl line that works as printed. Tests parse the
banner's "Label: value" lines."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

DEMO_ACCOUNT = "demo"
DEMO_USER = "demo-user"
OPERATOR_ACCOUNT = "ops"
"""The local operator key's own account (operators act on processing, not on tenants' tasks)."""


@dataclass(frozen=True)
class DemoCredentials:
    account_id: str
    user_id: str
    api_key: str
    key_prefix: str
    bearer_token: str | None
    """None when bearer tokens are verified against a JWKS URL: no local secret signs them then."""
    operator_key: str
    """An API key with the operator role, on account OPERATOR_ACCOUNT."""


def create_demo_credentials(account_id: str = DEMO_ACCOUNT, user_id: str = DEMO_USER) -> DemoCredentials:
    """A new API key for the account on the default plan (through the same service code as
    `taskapi keys create`: hashed record, API Gateway key on the usage plan, account enrolment),
    a bearer token granting it, and an operator key. Reads settings and clients, so call it after
    apply_environment."""
    from taskapi.auth.tokens import issue_local_token
    from taskapi.services.keys import create_key
    from taskapi.settings import get_settings
    from taskapi.wiring import get_key_store, get_usage_plans

    settings = get_settings()
    key, record = create_key(get_key_store(), get_usage_plans(), account_id, settings.default_plan)
    operator_key, _ = create_key(
        get_key_store(), get_usage_plans(), OPERATOR_ACCOUNT, settings.default_plan, role="operator"
    )
    token = None
    if settings.bearer_algorithm == "HS256":
        token = issue_local_token(settings, subject=user_id, accounts=[account_id])
    return DemoCredentials(
        account_id=account_id,
        user_id=user_id,
        api_key=key,
        key_prefix=record.display_prefix,
        bearer_token=token,
        operator_key=operator_key,
    )


EXAMPLE_TASK = {
    "tasks": [
        {
            "task_id": "hello_quiz_001",
            "task_type": "quiz",
            "priority": "normal",
            "request_data": {
                "story_prompt": (
                    "In a right triangle, the square of the hypotenuse equals the sum of the squares of the "
                    "other two sides. The hypotenuse is the longest side of a right triangle. Pythagoras of "
                    "Samos gave the theorem its name. A triangle with sides 3, 4 and 5 is a right triangle."
                ),
                "difficulty": "easy",
            },
            "task_source_name": "README",
            "task_source_group_id": "getting_started",
        }
    ]
}


def curl_example(api_url: str, api_key: str) -> str:
    """One shell line that creates a task with the demo key (idempotent: rerunning it is harmless)."""
    body = json.dumps(EXAMPLE_TASK, separators=(",", ":"))
    return shlex.join(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{api_url}/api/tasks/bulk",
            "-H",
            f"X-API-Key: {api_key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ]
    )


def banner(
    *, api_url: str, aws_endpoint: str, embedded: bool, demo: DemoCredentials, processing: Sequence[str] = ()
) -> str:
    """What a developer needs to call the stack. Tests parse the "Label: value" lines."""
    endpoint_note = "embedded moto server" if embedded else "external endpoint from AWS_ENDPOINT_URL"
    return "\n".join(
        [
            "",
            "Task API local stack is up.",
            f"API URL: {api_url}",
            f"Docs: {api_url}/docs",
            f"AWS endpoint: {aws_endpoint} ({endpoint_note})",
            f"Account: {demo.account_id}",
            f"API key: {demo.api_key}",
            f"Bearer token: {demo.bearer_token or '- (TASKAPI_JWT_JWKS_URL is set: tokens come from that issuer)'}",
            f"X-Account-ID: {demo.account_id}",
            f"Operator API key: {demo.operator_key}",
            "  (queue restart and the real queue depths; account keys see their own tasks only)",
            "Try it (creates a task with the API key):",
            curl_example(api_url, demo.api_key),
            *processing,
            "More keys and tokens: taskapi keys create --account ID [--role operator] /"
            " taskapi token --sub USER --account ID [--role operator];"
            f" pause and resume processing: taskapi queue pause / resume (with AWS_ENDPOINT_URL={aws_endpoint}).",
            "Press Ctrl-C to stop.",
            "",
        ]
    )
