"""The local stack as a user runs it: `python -m infra.local_stack` in a subprocess, on free ports,
started once per session (with a short schedule, so the reconciler runs during the session). Its
banner gives the demo API key, bearer token and curl line; the `taskapi` CLI runs as a subprocess
against the stack's moto endpoint. Tasks are processed by the stack's pollers as they arrive."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import (
    SESSION_JWT_AUDIENCE,
    SESSION_REQUEUE_AFTER_SECONDS,
    SESSION_SCHEDULE_SECONDS,
    MediaServer,
    processing_paused,
)
from tests.support.media import CLIP_COLOUR, LOGO_COLOUR, OUTRO_COLOUR, clip, png

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30
SHUTDOWN_SECONDS = 15
CLI_SECONDS = 30
# Accounts the session's multi-account bearer token grants (each test module owns some).
TOKEN_ACCOUNTS = ("alpha", "beta", "catalog", "idem", "limits", "pages")
_BANNER_LINE = re.compile(r"^(API URL|Docs|AWS endpoint|API key|Bearer token|X-Account-ID|Operator API key): (\S+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without AWS or TASKAPI settings, so nothing outside leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TASKAPI_", "POWERTOOLS_"))}
    env.update(extra)
    return env


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    fields: dict[str, str]
    curl_line: str

    @property
    def api_url(self) -> str:
        return self.fields["API URL"]

    @property
    def aws_endpoint(self) -> str:
        return self.fields["AWS endpoint"]

    @property
    def api_key(self) -> str:
        return self.fields["API key"]

    @property
    def bearer_token(self) -> str:
        return self.fields["Bearer token"]

    @property
    def account_id(self) -> str:
        return self.fields["X-Account-ID"]

    @property
    def operator_key(self) -> str:
        return self.fields["Operator API key"]

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")


def parse_banner(stdout: str) -> tuple[dict[str, str], str | None]:
    fields: dict[str, str] = {}
    curl_line = None
    for line in stdout.splitlines():
        match = _BANNER_LINE.match(line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
        elif line.startswith("curl ") and curl_line is None:
            curl_line = line
    return fields, curl_line


def start_stack(workdir: Path, env: Mapping[str, str]) -> RunningStack:
    """Start the stack, wait for its banner and /health; fail with its output if it does not come up."""
    workdir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        # Files, not pipes: the access log keeps writing and a full pipe would block the server.
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack"], cwd=ROOT, env=dict(env), stdout=out, stderr=err
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            fields, curl_line = parse_banner(stdout_path.read_text(errors="replace"))
            if "Bearer token" in fields and curl_line:
                try:
                    if httpx.get(f"{fields['API URL']}/health", timeout=2).status_code == 200:
                        return RunningStack(process, stdout_path, stderr_path, fields, curl_line)
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
    except BaseException:
        stop_stack(process)
        raise
    stop_stack(process)
    output = stdout_path.read_text(errors="replace") + stderr_path.read_text(errors="replace")
    pytest.fail(f"local stack did not come up (exit code {process.returncode}):\n{output}")


def stop_stack(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a supervisor stops it; kill only if it ignores that."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    api_port, aws_port = free_port(), free_port()
    env = clean_environment(
        TASKAPI_PORT=str(api_port),
        TASKAPI_AWS_PORT=str(aws_port),
        TASKAPI_LOCAL_SCHEDULE_SECONDS=str(SESSION_SCHEDULE_SECONDS),
        TASKAPI_REQUEUE_QUEUED_AFTER_SECONDS=str(SESSION_REQUEUE_AFTER_SECONDS),
        # A setting the template also sets: the environment of `make dev` must win.
        TASKAPI_JWT_AUDIENCE=SESSION_JWT_AUDIENCE,
    )
    running = start_stack(tmp_path_factory.mktemp("local_stack"), env)
    yield running
    code = stop_stack(running.process)
    assert code == 0, f"local stack exited with {code} on SIGTERM:\n{running.output()}"
    assert "Local stack stopped." in running.stderr_path.read_text()
    assert not port_is_listening(aws_port), "the embedded moto server outlived the stack"


def cli_environment_for(aws_endpoint: str) -> dict[str, str]:
    return clean_environment(
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )


@pytest.fixture(scope="session")
def cli_environment(stack: RunningStack) -> dict[str, str]:
    return {**cli_environment_for(stack.aws_endpoint), "TASKAPI_JWT_AUDIENCE": SESSION_JWT_AUDIENCE}


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def cli_runner(cli_environment: Mapping[str, str]) -> CliRunner:
    """Run the installed `taskapi` console script (or the module when it is not installed)."""
    script = Path(sys.executable).with_name("taskapi")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "taskapi.cli"]

    def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args],
            cwd=ROOT,
            env={**cli_environment, **(env or {})},
            capture_output=True,
            text=True,
            timeout=CLI_SECONDS,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def run_cli(cli_environment: dict[str, str]) -> CliRunner:
    return cli_runner(cli_environment)


class StackTools:
    """The helpers above, for tests that start a stack of their own (a conftest is not importable)."""

    free_port = staticmethod(free_port)
    port_is_listening = staticmethod(port_is_listening)
    clean_environment = staticmethod(clean_environment)
    start_stack = staticmethod(start_stack)
    stop_stack = staticmethod(stop_stack)
    cli_environment_for = staticmethod(cli_environment_for)
    cli_runner = staticmethod(cli_runner)


@pytest.fixture(scope="session")
def stack_tools() -> type[StackTools]:
    return StackTools


@pytest.fixture(scope="session")
def create_api_key(run_cli: CliRunner) -> Callable[[str], str]:
    def create(account: str) -> str:
        result = run_cli("keys", "create", "--account", account)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    return create


@pytest.fixture(scope="session")
def multi_account_token(run_cli: CliRunner) -> str:
    """One bearer token (from `taskapi token`) granting every account in TOKEN_ACCOUNTS."""
    args = ["token", "--sub", "e2e-user"]
    for account in TOKEN_ACCOUNTS:
        args += ["--account", account]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def as_account(multi_account_token: str) -> Callable[[str], dict[str, str]]:
    """Headers acting for one of TOKEN_ACCOUNTS with the multi-account token."""

    def headers(account: str) -> dict[str, str]:
        assert account in TOKEN_ACCOUNTS
        return {"Authorization": f"Bearer {multi_account_token}", "X-Account-ID": account}

    return headers


@pytest.fixture(scope="session")
def operator_headers(stack: RunningStack) -> dict[str, str]:
    """The stack's operator key: queue restart, the real queue depths and dead-letter figures."""
    return {"X-API-Key": stack.operator_key}


@pytest.fixture(scope="session")
def client(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=10) as http:
        yield http


@pytest.fixture
def paused(run_cli: CliRunner) -> Iterator[None]:
    """Processing paused (`taskapi queue pause`) for the test, resumed after it."""
    with processing_paused(run_cli):
        yield


@pytest.fixture(scope="session")
def media_server() -> Iterator[MediaServer]:
    """A magenta logo (logo.png) and one-second intro (green) and outro (blue) videos with sound."""
    files = {
        "logo.png": (png(LOGO_COLOUR), "image/png"),
        "intro.mp4": (clip(1.0, CLIP_COLOUR), "video/mp4"),
        "outro.mp4": (clip(1.0, OUTRO_COLOUR), "video/mp4"),
    }
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.partition("?")[0]  # a query string names the same file
            requests.append(path)
            body, content_type = files.get(path.lstrip("/"), (b"not found", "text/plain"))
            self.send_response(200 if path.lstrip("/") in files else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="e2e media server", daemon=True)
    thread.start()
    try:
        yield MediaServer(f"http://127.0.0.1:{server.server_address[1]}", files, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
