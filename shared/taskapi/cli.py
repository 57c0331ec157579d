"""`taskapi`: operator commands on the same settings and AWS endpoint as the service.

    taskapi keys create --account ID        new API key; the key alone is the last line printed
    taskapi keys revoke KEY_PREFIX_OR_ID    revoke a key (by key id, display prefix or whole key)
    taskapi token --sub USER --account ID [--account ID ...] [--ttl SECONDS]
                                            a local HS256 bearer token
    taskapi queue pause                     stop the processor consuming its queues (tasks stay QUEUED)
    taskapi queue resume                    let it consume them again
    taskapi queue status                    whether it consumes them, mapping by mapping

AWS_ENDPOINT_URL points it at the local stack (e.g. http://127.0.0.1:4566), like boto3 itself.
The queue commands act on the processor's event source mappings: in AWS (TASKAPI_ENVIRONMENT=aws,
TASKAPI_PROCESSOR_FUNCTION) through Lambda, on the local stack through the mapping states its
pollers read (SSM parameters under TASKAPI_LOCAL_MAPPINGS_PARAMETER_PREFIX).
Exit codes: 0 done, 1 failed (unknown key, AWS unreachable, no mappings), 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from taskapi import aws
from taskapi.auth.api_keys import DynamoApiKeyStore, generate_key, key_id_from_reference
from taskapi.auth.tokens import issue_local_token
from taskapi.errors import NotFound, TaskApiError
from taskapi.models.limits import ACCOUNT_ID_PATTERN
from taskapi.queueing.control import MappingState, processing_active
from taskapi.services.queue_admin import pause_processing, restart_processing
from taskapi.settings import get_settings
from taskapi.wiring import get_processing_control

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
MAX_TOKEN_TTL_SECONDS = 366 * 86_400


class CommandFailed(Exception):
    """An expected failure: its message is the whole story, printed without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _ttl(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of seconds") from None
    if not 1 <= value <= MAX_TOKEN_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOKEN_TTL_SECONDS} seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskapi",
        description="Task API operator commands (API keys, local bearer tokens, queue processing).",
        epilog="AWS_ENDPOINT_URL selects the AWS endpoint, e.g. the local stack's http://127.0.0.1:4566.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keys = commands.add_parser("keys", help="create or revoke API keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create an API key; prints it once, on the last line")
    create.add_argument("--account", required=True, help="account the key acts for")
    create.set_defaults(handler=_keys_create)
    revoke = key_commands.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key", metavar="KEY_PREFIX_OR_ID", help="key id, 'tk.<account>.<key id>' or the whole key")
    revoke.set_defaults(handler=_keys_revoke)

    token = commands.add_parser("token", help="issue a local HS256 bearer token")
    token.add_argument("--sub", required=True, help="the token's subject (user id)")
    token.add_argument(
        "--account", dest="accounts", action="append", required=True, help="an account it grants (repeatable)"
    )
    token.add_argument("--ttl", type=_ttl, default=86_400, help="lifetime in seconds (default 86400)")
    token.set_defaults(handler=_token)

    queue = commands.add_parser("queue", help="pause, resume or show the processing of the task queues")
    queue_commands = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    pause = queue_commands.add_parser("pause", help="stop the processor consuming its queues (tasks stay QUEUED)")
    pause.set_defaults(handler=_queue_pause)
    resume = queue_commands.add_parser("resume", help="let the processor consume its queues again")
    resume.set_defaults(handler=_queue_resume)
    status = queue_commands.add_parser("status", help="whether the processor consumes its queues")
    status.set_defaults(handler=_queue_status)
    return parser


def _key_store() -> DynamoApiKeyStore:
    return DynamoApiKeyStore(aws.client("dynamodb"), get_settings().api_keys_table)


def _aws_failure(action: str, exc: BaseException) -> CommandFailed:
    table = get_settings().api_keys_table
    if isinstance(exc, TaskApiError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the store's domain error wraps what AWS said
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
        return CommandFailed(
            f"cannot {action}: table {table} does not exist at this endpoint "
            "(is the local stack running and AWS_ENDPOINT_URL pointing at it?)"
        )
    return CommandFailed(f"cannot {action} in table {table}: {exc}")


def _keys_create(args: argparse.Namespace) -> None:
    try:
        key, record = generate_key(args.account)
    except ValueError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from exc
    try:
        _key_store().put(record)
    except (BotoCoreError, ClientError, TaskApiError) as exc:
        raise _aws_failure("store the key", exc) from exc
    print(f"Created key {record.display_prefix} for account {record.account_id}; store it now, it is not shown again:")
    print(key)


def _keys_revoke(args: argparse.Namespace) -> None:
    try:
        key_id = key_id_from_reference(args.key)
        record = _key_store().revoke(key_id)
    except NotFound as exc:
        raise CommandFailed(str(exc.detail)) from exc
    except (BotoCoreError, ClientError, TaskApiError) as exc:
        raise _aws_failure("revoke the key", exc) from exc
    print(f"Revoked key {record.display_prefix} (account {record.account_id}) at {record.revoked_at}")


def _token(args: argparse.Namespace) -> None:
    accounts = list(dict.fromkeys(args.accounts))
    invalid = [account for account in accounts if not re.match(ACCOUNT_ID_PATTERN, account)]
    if invalid:
        raise CommandFailed(f"account id {invalid[0]!r} must match {ACCOUNT_ID_PATTERN}", EXIT_USAGE)
    if not args.sub.strip():
        raise CommandFailed("--sub must not be blank", EXIT_USAGE)
    try:
        token = issue_local_token(get_settings(), subject=args.sub, accounts=accounts, ttl_seconds=args.ttl)
    except RuntimeError as exc:
        raise CommandFailed(f"cannot issue a local token here: {exc}") from exc
    print(token)


def _control_failure(action: str, exc: BaseException) -> CommandFailed:
    if isinstance(exc, TaskApiError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the control's domain error wraps what AWS said
    return CommandFailed(f"cannot {action}: {exc}")


def _mappings_missing() -> CommandFailed:
    settings = get_settings()
    where = (
        f"Lambda function {settings.processor_function}"
        if settings.environment == "aws"
        else f"the local stack's mapping states under {settings.local_mappings_parameter_prefix}"
    )
    return CommandFailed(
        f"the processor has no event source mappings at {where} "
        "(is the local stack running and AWS_ENDPOINT_URL pointing at it?)"
    )


def _print_mappings(mappings: list[MappingState]) -> None:
    for mapping in mappings:
        print(f"  {mapping.mapping_id}: {mapping.state} ({mapping.source_arn})")


def _was_is(active: bool) -> str:
    return "active" if active else "paused"


def _queue_switch(enable: bool) -> None:
    action = "resume processing" if enable else "pause processing"
    control = get_processing_control()
    try:
        if not control.mappings():
            raise _mappings_missing()
        answer = restart_processing(control) if enable else pause_processing(control)
        mappings = control.mappings()
    except (BotoCoreError, ClientError, TaskApiError) as exc:
        raise _control_failure(action, exc) from exc
    print(
        f"Processing was {_was_is(answer['was_processing_before'])}; it is {_was_is(answer['is_processing_now'])} now."
    )
    _print_mappings(mappings)
    if not answer["success"]:
        raise CommandFailed(f"could not {action}: not every event source mapping changed state")


def _queue_pause(args: argparse.Namespace) -> None:
    _queue_switch(enable=False)


def _queue_resume(args: argparse.Namespace) -> None:
    _queue_switch(enable=True)


def _queue_status(args: argparse.Namespace) -> None:
    try:
        mappings = get_processing_control().mappings()
    except (BotoCoreError, ClientError, TaskApiError) as exc:
        raise _control_failure("read the processing state", exc) from exc
    if not mappings:
        raise _mappings_missing()
    print(f"Processing is {_was_is(processing_active(mappings))}.")
    _print_mappings(mappings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help already
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        args.handler(args)
    except CommandFailed as exc:
        print(f"taskapi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:  # settings: a TASKAPI_* variable holds something unusable
        print(f"taskapi: error: invalid TASKAPI_* configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
