"""`taskapi`: operator commands on the same settings and AWS endpoint as the service.

    taskapi keys create --account ID [--plan PLAN] [--role tenant|operator]
                                            new API key on a usage plan (default: the settings'
                                            default plan); the key alone is the last line printed
    taskapi keys list --account ID          the account's keys: prefix, plan, role, created, state (no secrets)
    taskapi keys revoke KEY_PREFIX_OR_ID    revoke a key (by key id, display prefix or whole key)
    taskapi keys rotate KEY_PREFIX_OR_ID [--grace-seconds N]
                                            new key on the same account and plan; the old one stops
                                            working N seconds later (default 0); new key on the last line
    taskapi keys purge --account ID         delete the API Gateway keys of keys whose grace period ended
    taskapi accounts enrol --account ID --plan PLAN
                                            meter the account's bearer-token requests on PLAN
    taskapi token --sub USER --account ID [--account ID ...] [--ttl SECONDS] [--role operator]
                                            a local HS256 bearer token
    taskapi queue pause                     stop the processor consuming its queues (tasks stay QUEUED)
    taskapi queue resume                    let it consume them again
    taskapi queue status                    whether it consumes them, mapping by mapping

User commands, over HTTP to the API (the client extra: httpx, rich; taskapi.client.cli documents
their options, output and exit codes):

    taskapi submit FILE [--group G]         create the tasks of a JSONL, JSON or CSV file, with a
                                            progress bar and a summary (rows, created, existing, invalid)
    taskapi watch [--group G | --source S ... | --ids ID ...]
                                            live counts by status and task type until every task is final
    taskapi cancel SELECTOR [--reason TEXT] cancel the matching open tasks
    taskapi regenerate SELECTOR [--force] [--keep-results]
                                            start a new attempt of the matching tasks
    taskapi tasks [filters] [--limit N | --all] [--json]
                                            list tasks as a table or JSON lines
    taskapi webhooks listen [--forward-to URL] [--events TYPES] [--group ID] [--public-url URL]
                                            receive webhooks on this machine through a temporary
                                            endpoint, deleted on exit (taskapi.client.cli.listen)

AWS_ENDPOINT_URL points it at the local stack (e.g. http://127.0.0.1:4566), like boto3 itself.
The queue commands act on the processor's event source mappings: in AWS (TASKAPI_ENVIRONMENT=aws,
TASKAPI_PROCESSOR_FUNCTION) through Lambda, on the local stack through the mapping states its
pollers read (SSM parameters under TASKAPI_LOCAL_MAPPINGS_PARAMETER_PREFIX).
Every key also exists in API Gateway with the same value, on the usage plan "<TASKAPI_STACK_NAME>-<plan>".
Exit codes: 0 done, 1 failed (unknown key, AWS unreachable, no mappings), 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from taskapi import wiring
from taskapi.auth.api_keys import AccountEnrolment, ApiKeyRecord, ApiKeyStore
from taskapi.auth.gateway import UsagePlanGateway, UsagePlansUnavailable
from taskapi.auth.principal import OPERATOR, ROLES, TENANT
from taskapi.auth.tokens import issue_local_token
from taskapi.cli_support import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandFailed, run_command
from taskapi.errors import Conflict, InvalidRequest, NotFound, TaskApiError
from taskapi.models.domain import utc_now
from taskapi.models.limits import ACCOUNT_ID_PATTERN
from taskapi.queueing.control import MappingState, processing_active
from taskapi.services import keys as key_service
from taskapi.services.queue_admin import pause_processing, restart_processing
from taskapi.settings import PLANS, get_settings, usage_plan_name
from taskapi.wiring import get_processing_control

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CommandFailed", "build_parser", "main"]

MAX_TOKEN_TTL_SECONDS = 366 * 86_400


def _ttl(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of seconds") from None
    if not 1 <= value <= MAX_TOKEN_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOKEN_TTL_SECONDS} seconds")
    return value


def _grace(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of seconds") from None
    if not 0 <= value <= key_service.MAX_GRACE_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {key_service.MAX_GRACE_SECONDS} seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskapi",
        description="Task API operator commands (API keys, account enrolments, local bearer tokens, queue processing).",
        epilog="AWS_ENDPOINT_URL selects the AWS endpoint, e.g. the local stack's http://127.0.0.1:4566.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keys = commands.add_parser("keys", help="create, list, revoke or rotate API keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create an API key; prints it once, on the last line")
    create.add_argument("--account", required=True, help="account the key acts for")
    create.add_argument(
        "--plan", choices=PLANS, default=None, help="usage plan (default: TASKAPI_DEFAULT_PLAN, normally free)"
    )
    create.add_argument(
        "--role",
        choices=ROLES,
        default=TENANT,
        help="tenant (default): the account's own tasks; operator: also processing control and every "
        "tenant's queue figures (give the operator its own account)",
    )
    create.set_defaults(handler=_keys_create)
    listing = key_commands.add_parser("list", help="list an account's API keys (never their secrets)")
    listing.add_argument("--account", required=True, help="the account whose keys to list")
    listing.set_defaults(handler=_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke an API key and delete its API Gateway key")
    revoke.add_argument("key", metavar="KEY_PREFIX_OR_ID", help="key id, 'tk.<account>.<key id>' or the whole key")
    revoke.set_defaults(handler=_keys_revoke)
    rotate = key_commands.add_parser(
        "rotate", help="replace an API key: a new key on the same plan; prints it once, on the last line"
    )
    rotate.add_argument("key", metavar="KEY_PREFIX_OR_ID", help="key id, 'tk.<account>.<key id>' or the whole key")
    rotate.add_argument(
        "--grace-seconds",
        type=_grace,
        default=0,
        help="seconds the old key keeps working (default 0: revoked at once); `keys purge` later "
        "deletes its API Gateway key",
    )
    rotate.set_defaults(handler=_keys_rotate)
    purge = key_commands.add_parser(
        "purge", help="delete the API Gateway keys of an account's keys whose grace period has ended"
    )
    purge.add_argument("--account", required=True, help="the account whose rotated keys to purge")
    purge.set_defaults(handler=_keys_purge)

    accounts = commands.add_parser("accounts", help="usage plans of accounts' bearer-token requests")
    account_commands = accounts.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    enrol = account_commands.add_parser(
        "enrol", help="meter an account's bearer-token requests on a usage plan (creates or moves its enrolment)"
    )
    enrol.add_argument("--account", required=True, help="the account")
    enrol.add_argument("--plan", choices=PLANS, required=True, help="usage plan")
    enrol.set_defaults(handler=_accounts_enrol)

    token = commands.add_parser("token", help="issue a local HS256 bearer token")
    token.add_argument("--sub", required=True, help="the token's subject (user id)")
    token.add_argument(
        "--account", dest="accounts", action="append", required=True, help="an account it grants (repeatable)"
    )
    token.add_argument("--ttl", type=_ttl, default=86_400, help="lifetime in seconds (default 86400)")
    token.add_argument(
        "--role", choices=ROLES, default=TENANT, help="operator puts roles: [operator] in the token (default tenant)"
    )
    token.set_defaults(handler=_token)

    queue = commands.add_parser("queue", help="pause, resume or show the processing of the task queues")
    queue_commands = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    pause = queue_commands.add_parser("pause", help="stop the processor consuming its queues (tasks stay QUEUED)")
    pause.set_defaults(handler=_queue_pause)
    resume = queue_commands.add_parser("resume", help="let the processor consume its queues again")
    resume.set_defaults(handler=_queue_resume)
    status = queue_commands.add_parser("status", help="whether the processor consumes its queues")
    status.set_defaults(handler=_queue_status)

    try:  # imported here, so that the operator commands load no httpx and run without the client extra
        from taskapi.client.cli import register as register_user_commands
        from taskapi.client.cli.webhooks import register as register_webhook_commands
    except ModuleNotFoundError as exc:
        if exc.name not in ("httpx", "rich"):
            raise
    else:
        register_user_commands(commands)
        register_webhook_commands(commands)
    return parser


def _key_store() -> ApiKeyStore:
    return wiring.get_key_store()


def _usage_plans() -> UsagePlanGateway:
    return wiring.get_usage_plans()


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


def _key_failure(action: str, exc: BaseException) -> CommandFailed:
    """A key command's failure: our own refusals as they are, AWS failures with their cause,
    and any notes (e.g. a compensating step that failed too)."""
    if isinstance(exc, InvalidRequest):
        failure = CommandFailed(str(exc.detail), EXIT_USAGE)
    elif isinstance(exc, NotFound | Conflict):
        failure = CommandFailed(f"cannot {action}: {exc.detail}")
    elif isinstance(exc, UsagePlansUnavailable):
        failure = CommandFailed(f"cannot {action}: {exc.detail} (is AWS_ENDPOINT_URL pointing at the stack?)")
    else:
        failure = _aws_failure(action, exc)
    notes = getattr(exc, "__notes__", [])
    if notes:
        failure = CommandFailed(" ".join([str(failure), *notes]), failure.exit_code)
    return failure


_KEY_ERRORS = (BotoCoreError, ClientError, TaskApiError)


def _fresh_key_lines(key: str, record: ApiKeyRecord) -> None:
    print(
        f"Created {'operator ' if record.role == OPERATOR else ''}key {record.display_prefix} for account "
        f"{record.account_id} on plan {record.plan}; "
        "store it now, it is not shown again:"
    )
    print(key)


def _keys_create(args: argparse.Namespace) -> None:
    _valid_account(args.account)
    plan = args.plan or get_settings().default_plan
    store = _key_store()
    try:
        enrolled_before = store.get_account(args.account)
        key, record = key_service.create_key(store, _usage_plans(), args.account, plan, role=args.role)
        enrolled = enrolled_before or store.get_account(args.account)
    except _KEY_ERRORS as exc:
        raise _key_failure("create the key", exc) from exc
    if enrolled_before is None and enrolled is not None:
        print(f"Enrolled account {record.account_id} on plan {enrolled.plan} for bearer-token metering.")
    elif enrolled is not None and enrolled.plan != record.plan:
        print(
            f"Bearer-token requests of account {record.account_id} stay metered on plan {enrolled.plan} "
            "(`taskapi accounts enrol` moves them)."
        )
    _fresh_key_lines(key, record)


def _valid_account(account_id: str) -> None:
    if not re.match(ACCOUNT_ID_PATTERN, account_id):
        raise CommandFailed(f"account id {account_id!r} must match {ACCOUNT_ID_PATTERN}", EXIT_USAGE)


def _state(record: ApiKeyRecord) -> str:
    state = record.state(utc_now())
    return state if state == "active" else f"{'expires' if state == 'expiring' else 'revoked'} {record.revoked_at}"


def _enrolment_line(account_id: str, enrolment: AccountEnrolment | None) -> str:
    if enrolment is None:
        return f"Account {account_id} is not enrolled for bearer tokens (`taskapi accounts enrol` enrols it)."
    return f"Bearer-token requests of account {account_id} are metered on plan {enrolment.plan}."


def _keys_list(args: argparse.Namespace) -> None:
    _valid_account(args.account)
    store = _key_store()
    try:
        records = key_service.list_keys(store, args.account)
        enrolment = store.get_account(args.account)
    except _KEY_ERRORS as exc:
        raise _key_failure("list the keys", exc) from exc
    if not records:
        print(f"No API keys for account {args.account}.")
    else:
        rows = [("KEY", "PLAN", "ROLE", "CREATED", "STATE")]
        rows += [(r.display_prefix, r.plan, r.role, r.created_at, _state(r)) for r in records]
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    waiting = key_service.awaiting_purge(records, utc_now())
    if waiting:
        print(
            f"{len(waiting)} revoked key(s) still have API Gateway keys; "
            f"`taskapi keys purge --account {args.account}` deletes them."
        )
    print(_enrolment_line(args.account, enrolment))


def _keys_revoke(args: argparse.Namespace) -> None:
    try:
        record = key_service.revoke_key(_key_store(), _usage_plans(), args.key)
    except _KEY_ERRORS as exc:
        raise _key_failure("revoke the key", exc) from exc
    print(
        f"Revoked key {record.display_prefix} (account {record.account_id}, plan {record.plan}) at "
        f"{record.revoked_at}; its API Gateway key is deleted."
    )


def _keys_rotate(args: argparse.Namespace) -> None:
    try:
        rotation = key_service.rotate_key(_key_store(), _usage_plans(), args.key, args.grace_seconds)
    except _KEY_ERRORS as exc:
        raise _key_failure("rotate the key", exc) from exc
    old = rotation.old
    if old.is_revoked(utc_now()):
        print(f"Revoked key {old.display_prefix} at {old.revoked_at}; its API Gateway key is deleted.")
    else:
        print(
            f"Key {old.display_prefix} keeps working until {old.revoked_at}; then "
            f"`taskapi keys purge --account {old.account_id}` deletes its API Gateway key."
        )
    _fresh_key_lines(rotation.key, rotation.record)


def _keys_purge(args: argparse.Namespace) -> None:
    _valid_account(args.account)
    try:
        purged = key_service.purge_expired(_key_store(), _usage_plans(), args.account)
    except _KEY_ERRORS as exc:
        raise _key_failure("purge the expired keys", exc) from exc
    if not purged:
        print(f"No revoked keys of account {args.account} have API Gateway keys left.")
        return
    print(f"Deleted the API Gateway keys of {len(purged)} revoked key(s):")
    for record in purged:
        print(f"  {record.display_prefix} (revoked {record.revoked_at})")


def _accounts_enrol(args: argparse.Namespace) -> None:
    _valid_account(args.account)
    store = _key_store()
    try:
        before = store.get_account(args.account)
        enrolment = key_service.enrol_account(store, _usage_plans(), args.account, args.plan)
    except _KEY_ERRORS as exc:
        raise _key_failure("enrol the account", exc) from exc
    if before is None:
        change = "newly enrolled"
    elif before.plan != enrolment.plan:
        change = f"moved from plan {before.plan}"
    else:
        change = "unchanged"
    print(
        f"Bearer-token requests of account {enrolment.account_id} are metered on plan {enrolment.plan} "
        f"(usage plan {usage_plan_name(get_settings(), enrolment.plan)}; {change})."
    )


def _token(args: argparse.Namespace) -> None:
    accounts = list(dict.fromkeys(args.accounts))
    invalid = [account for account in accounts if not re.match(ACCOUNT_ID_PATTERN, account)]
    if invalid:
        raise CommandFailed(f"account id {invalid[0]!r} must match {ACCOUNT_ID_PATTERN}", EXIT_USAGE)
    if not args.sub.strip():
        raise CommandFailed("--sub must not be blank", EXIT_USAGE)
    try:
        token = issue_local_token(
            get_settings(),
            subject=args.sub,
            accounts=accounts,
            ttl_seconds=args.ttl,
            roles=[OPERATOR] if args.role == OPERATOR else None,
        )
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
        return run_command(parser, argv)
    except ValidationError as exc:  # settings: a TASKAPI_* variable holds something unusable
        print(f"taskapi: error: invalid TASKAPI_* configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # python -m taskapi.cli
    sys.exit(main())
