"""`taskapi webhooks ACTION`: webhook tools for a developer's machine.

    taskapi webhooks listen [--forward-to URL] [--events TYPES] [--group ID] [--port N]
                            [--public-url URL] [--json]

taskapi.cli registers the group with `register(commands)` next to the other user commands; each
action is a module of this package (taskapi.client.cli.listen) built like them."""

from __future__ import annotations

from typing import Any

from taskapi.client.cli import listen
from taskapi.client.cli.arguments import add_command
from taskapi.client.cli.runtime import Runtime


def register(commands: Any, runtime: Runtime | None = None) -> None:
    """Adds `webhooks` and its actions to `commands` (the subparsers action of the taskapi parser);
    `runtime` as taskapi.client.cli.register takes it."""
    webhooks = commands.add_parser(
        "webhooks", help="webhook tools: receive deliveries on this machine", description="Webhook tools."
    )
    actions = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    add_command(actions, listen, runtime)
