"""The API client a command talks through: URL and credentials from flags, then the environment,
and the client's failures as CommandFailed."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import httpx
from pydantic import ValidationError

from taskapi.cli_support import EXIT_USAGE, CommandFailed
from taskapi.client.api import TaskApiClient
from taskapi.client.cli.runtime import DEFAULT_URL, ENV_ACCOUNT, ENV_API_KEY, ENV_TOKEN, ENV_URL, Runtime
from taskapi.client.errors import TaskApiError, Unauthorized
from taskapi.client.uploads import UploadRejected


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = None
    token: str | None = None
    account_id: str | None = None


def resolve_credentials(args: argparse.Namespace, env: Mapping[str, str]) -> Credentials:
    """An API key, or a token and its account: flags first, then the environment."""
    for api_key, token, level in (
        (args.api_key, args.token, "flags"),
        (env.get(ENV_API_KEY), env.get(ENV_TOKEN), "environment"),
    ):
        if api_key and token:
            where = "--api-key and --token" if level == "flags" else f"{ENV_API_KEY} and {ENV_TOKEN}"
            raise CommandFailed(f"{where} are both set: use one", EXIT_USAGE)
        if api_key:
            if args.account:
                raise CommandFailed("--account goes with --token only (an API key names its own account)", EXIT_USAGE)
            return Credentials(api_key=api_key)
        if token:
            account_id = args.account or env.get(ENV_ACCOUNT)
            if not account_id:
                raise CommandFailed(f"--token needs --account (or {ENV_ACCOUNT})", EXIT_USAGE)
            return Credentials(token=token, account_id=account_id)
    raise CommandFailed(
        f"no credentials: pass --api-key (or set {ENV_API_KEY}), or --token with --account "
        f"(or set {ENV_TOKEN} and {ENV_ACCOUNT})",
        EXIT_USAGE,
    )


def open_client(args: argparse.Namespace, runtime: Runtime) -> TaskApiClient:
    url = args.url or runtime.env.get(ENV_URL) or DEFAULT_URL
    if not re.match(r"^https?://[^/\s]+", url):
        raise CommandFailed(f"--url {url!r} is not an http(s) URL", EXIT_USAGE)
    credentials = resolve_credentials(args, runtime.env)
    return TaskApiClient(url, http=runtime.http, sleep=runtime.sleep, **asdict(credentials))


@contextmanager
def failures(action: str, api: TaskApiClient) -> Iterator[None]:
    """API answers and transport errors as CommandFailed (exit 1), request validation as exit 2."""
    try:
        yield
    except Unauthorized as exc:
        raise CommandFailed(f"cannot {action}: {exc} (check the API key or token)") from exc
    except UploadRejected as exc:
        where = f"the bucket refused it (HTTP {exc.status_code})" if exc.status_code else "not sent"
        raise CommandFailed(f"cannot {action}: {exc.detail}; {where}") from exc
    except TaskApiError as exc:
        raise CommandFailed(f"cannot {action}: {exc}") from exc
    except httpx.TransportError as exc:
        raise CommandFailed(
            f"cannot {action}: {api.base_url} did not answer ({type(exc).__name__}: {exc}); "
            f"is the API running there? (--url, ${ENV_URL})"
        ) from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CommandFailed(f"cannot {action}: {problems}", EXIT_USAGE) from exc
