"""The local stack: template.yaml run offline, started with `python -m infra.local_stack` (`make dev`).

It starts an embedded moto server (unless AWS_ENDPOINT_URL names one to use instead), provisions
the template's tables, queues (with their dead-letter queues), buckets and local event source
mappings on it, gives this process the environment template.yaml gives the functions, creates a
demo account's credentials (infra/welcome.py) and serves the same FastAPI app with uvicorn. Beside it run the
template's other functions, as background workers: a poller per SQS event source mapping
(infra/pollers.py: the processor on the four task queues, the dead-letter function on their DLQs),
a poller per DynamoDB stream event source mapping (infra/stream_pollers.py: the counters function
on the tasks table's stream) and the Schedule events (infra/schedule.py: the reconciler). Every
function runs in this process; the moto server runs in a child process of its own
(infra/moto_server.py).

Environment:
  TASKAPI_PORT       port of the API (default 8000)
  TASKAPI_AWS_PORT   port of the embedded moto server (default 4566)
  AWS_ENDPOINT_URL   use this AWS endpoint (moto, LocalStack, a real account) and start no moto server
  TASKAPI_LOCAL_SCHEDULE_SECONDS          run every Schedule event this often instead of its rate()
  TASKAPI_LOCAL_MAX_CONCURRENCY           invocations at once per SQS mapping, at most (default 2)
  TASKAPI_LOCAL_RETRY_VISIBILITY_SECONDS  a failed record (SQS) or batch (stream) is delivered again
                                          after this (default 2)
  TASKAPI_LOCAL_FAULT_SQS_REFUSE_RATE     tests: SQS refuses this share of SendMessageBatch entries
  TASKAPI_LOCAL_FAULT_SEED                tests: seed of those refusals (default 0)
  TASKAPI_LOCAL_FAULT_INGEST_CRASH_AFTER_BYTES  tests: the first read of each uploaded file breaks
                                          after this many bytes (ingest stops halfway, is redelivered)
  TASKAPI_LOCAL_FAULT_DELIVERY_CRASH_EVERY    tests: the webhook sender crashes after every n-th POST
                                          its receiver answered (the batch is delivered again)
Every other TASKAPI_* variable (e.g. TASKAPI_JWT_AUDIENCE, TASKAPI_MAX_UNFINISHED_FREE) wins over
the template's value for every function.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.faults import (
    DeliveryCrash,
    IngestReadCrash,
    SqsEntryRefusal,
    delivery_crash_from_environ,
    ingest_crash_from_environ,
    refusal_from_environ,
)
from infra.moto_server import EmbeddedMotoServer, MotoServerError, MotoServerProcess
from infra.pollers import build_pollers, discover_mappings
from infra.provision import provision
from infra.runtime import function_specs
from infra.schedule import build_schedules
from infra.stream_pollers import build_stream_pollers, stream_event_mappings
from infra.template import LocalNames, function_environment, load_template, resources
from infra.welcome import DemoCredentials, banner, create_demo_credentials

HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DEFAULT_AWS_PORT = 4566
DEFAULT_REGION = "us-east-1"
API_FUNCTION = "ApiFunction"
# moto accepts any credentials; these only keep boto3 from looking further (profiles, IMDS).
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Template values that only make sense in AWS: when empty they are dropped, so that the documented
# local defaults of taskapi.settings apply (HS256 development secret, issuer "taskapi-local").
DROP_WHEN_EMPTY = ("TASKAPI_JWT_ISSUER", "TASKAPI_JWT_JWKS_URL")
LOCAL_OVERRIDES = {
    "TASKAPI_ENVIRONMENT": "local",
    # API Gateway adds the stage ("/v1") in front of every path; uvicorn serves at the root.
    "TASKAPI_ROOT_PATH": "",
    # Nothing collects EMF output locally; it would only interleave with the logs.
    "POWERTOOLS_METRICS_DISABLED": "true",
    # No Polly offline: video tasks are narrated by eSpeak NG (TASKAPI_NARRATION_PROVIDER wins).
    "TASKAPI_NARRATION_PROVIDER": "espeak",
    # No Bedrock offline either: the builtin engines write every task type. The template's model
    # ids depend on a condition (inference profile or not) that the local resolver cannot
    # evaluate, so they are cleared; TASKAPI_*_PROVIDER/_MODEL_ID of `make dev` still win.
    **{f"TASKAPI_{kind}_PROVIDER": "builtin" for kind in ("QUIZ", "DOCUMENTATION", "ANIMATED_LESSON", "VIDEO_SCRIPT")},
    **{f"TASKAPI_{kind}_MODEL_ID": "" for kind in ("QUIZ", "DOCUMENTATION", "ANIMATED_LESSON", "VIDEO_SCRIPT")},
}
SETTINGS_PREFIX = "TASKAPI_"
"""Every variable of `make dev`'s environment with this prefix wins over the template's value (and
the local overrides) for every function: TASKAPI_JWT_AUDIENCE, TASKAPI_MAX_UNFINISHED_FREE, ..."""
GRACEFUL_SHUTDOWN_SECONDS = 5
DEFAULT_MAX_CONCURRENCY = 2
DEFAULT_RETRY_VISIBILITY_SECONDS = 2
log = logging.getLogger("taskapi.local")


class StackError(Exception):
    """An expected reason the stack cannot start (port taken, endpoint unreachable): no traceback."""


class BackgroundWorker(Protocol):
    """Something that runs beside the API while the stack is up (an SQS poller, the schedule)."""

    name: str

    def start(self) -> None: ...

    def request_stop(self) -> None:
        """Ask it to stop without waiting (every worker is asked first, then each is waited for)."""
        ...

    def stop(self) -> None:
        """Stop and wait for it (a few seconds at most)."""
        ...


@dataclass(frozen=True)
class StackConfig:
    api_port: int = DEFAULT_API_PORT
    aws_port: int = DEFAULT_AWS_PORT
    external_endpoint: str | None = None
    host: str = HOST
    schedule_seconds: float | None = None
    """Period of every Schedule event instead of its rate() (None: the template's)."""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    """Invocations at once per SQS mapping, at most (and never more than its MaximumConcurrency)."""
    retry_visibility_seconds: int = DEFAULT_RETRY_VISIBILITY_SECONDS
    """A failed SQS record is delivered again after this (AWS: the queue's VisibilityTimeout), and
    a failed stream batch too (AWS: at once, with backoff)."""
    sqs_refusal: SqsEntryRefusal | None = None
    """Fault injection (tests): SQS refuses a share of SendMessageBatch entries."""
    ingest_crash: IngestReadCrash | None = None
    """Fault injection (tests): the first read of each uploaded file breaks halfway."""
    delivery_crash: DeliveryCrash | None = None
    """Fault injection (tests): the webhook sender crashes after every n-th answered POST."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StackConfig:
        try:
            refusal = refusal_from_environ(environ)
            ingest_crash = ingest_crash_from_environ(environ)
            delivery_crash = delivery_crash_from_environ(environ)
        except ValueError as exc:
            raise StackError(str(exc)) from exc
        return cls(
            api_port=_port(environ, "TASKAPI_PORT", DEFAULT_API_PORT),
            aws_port=_port(environ, "TASKAPI_AWS_PORT", DEFAULT_AWS_PORT),
            external_endpoint=environ.get("AWS_ENDPOINT_URL") or None,
            schedule_seconds=_positive_seconds(environ, "TASKAPI_LOCAL_SCHEDULE_SECONDS"),
            max_concurrency=_whole(environ, "TASKAPI_LOCAL_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, 1),
            retry_visibility_seconds=_whole(
                environ, "TASKAPI_LOCAL_RETRY_VISIBILITY_SECONDS", DEFAULT_RETRY_VISIBILITY_SECONDS, 0
            ),
            sqs_refusal=refusal,
            ingest_crash=ingest_crash,
            delivery_crash=delivery_crash,
        )


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise StackError(f"{name}={raw!r} is not a port number (0-65535)")
    return int(raw)


def _positive_seconds(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise StackError(f"{name}={raw!r} is not a number of seconds above 0")
    return value


def _whole(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise StackError(f"{name}={raw!r} is not a whole number of at least {minimum}")
    return int(raw)


def http_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def bind_listener(host: str, port: int, purpose: str) -> socket.socket:
    """A listening TCP socket, or StackError naming the variable that moves the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Same option uvicorn and werkzeug set: a restart must not wait for TIME_WAIT to expire.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise StackError(f"cannot listen on {host}:{port} for {purpose}: {exc.strerror or exc}") from exc
    return sock


def start_moto_server(
    host: str = HOST, port: int = DEFAULT_AWS_PORT, *, own_process: bool = False
) -> EmbeddedMotoServer | MotoServerProcess:
    """Start moto's server on a thread of this process (DynamoDB requests one at a time, moto
    itself unpatched), or, with own_process, in a child process with every correction of
    infra.moto_corrections (the local stack's: moto then has a core of its own)."""
    # Bound first, to fail with the variable that moves the port rather than a bare OSError.
    if port:
        bind_listener(host, port, "the embedded moto server (set TASKAPI_AWS_PORT)").close()
    if own_process:
        child = MotoServerProcess(host, port)
        try:
            child.start()
        except (OSError, MotoServerError) as exc:
            raise StackError(f"cannot start the embedded moto server on {host}:{port}: {exc}") from exc
        return child
    # werkzeug logs every request at INFO; the API's own access log says enough.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = EmbeddedMotoServer(host, port)
    try:
        server.start()
    except OSError as exc:
        raise StackError(f"cannot start the embedded moto server on {host}:{port}: {exc.strerror or exc}") from exc
    return server


def aws_environment(endpoint_url: str, environ: Mapping[str, str], *, embedded: bool) -> dict[str, str]:
    """Variables that point boto3 (which honours AWS_ENDPOINT_URL itself) at the stack's endpoint.

    The embedded moto server always gets dummy credentials unless some are set, so a developer's
    real profile never signs local requests. An external endpoint keeps whatever boto3 finds."""
    env = {"AWS_ENDPOINT_URL": endpoint_url}
    if not environ.get("AWS_DEFAULT_REGION"):
        env["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    has_keys = bool(environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"))
    if not has_keys and (embedded or boto3.Session().get_credentials() is None):
        env.update(DUMMY_CREDENTIALS)
    return env


def local_function_environment(
    logical_id: str,
    names: LocalNames,
    refs: Mapping[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> dict[str, str]:
    """What template.yaml gives one function, with the local physical names (`refs`: what
    provisioning answered, e.g. queue URLs), the local overrides, and above both every TASKAPI_*
    variable of this process's environment."""
    env = function_environment(logical_id, template=template, names=names, refs=refs)
    env.update(LOCAL_OVERRIDES)
    env.update({name: value for name, value in os.environ.items() if name.startswith(SETTINGS_PREFIX)})
    for name in DROP_WHEN_EMPTY:
        if not env.get(name):
            env.pop(name, None)
    # Without a Lambda service, the processor's event source mappings are SSM parameters here.
    env["TASKAPI_LOCAL_MAPPINGS_PARAMETER_PREFIX"] = names.mappings_parameter_prefix
    return env


def api_environment(
    names: LocalNames, template: dict[str, Any] | None = None, refs: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What template.yaml gives the API function, with local physical names and local overrides."""
    return local_function_environment(API_FUNCTION, names, refs=refs, template=template)


def stack_environment(
    names: LocalNames, refs: Mapping[str, str] | None = None, template: dict[str, Any] | None = None
) -> dict[str, str]:
    """The environment of every function of the template at once: they all run in this one
    process, so they must agree on every variable they share (they do: Globals set them)."""
    template = template or load_template()
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for logical_id in resources(template, "AWS::Serverless::Function"):
        for name, value in local_function_environment(logical_id, names, refs=refs, template=template).items():
            if name in merged and merged[name] != value:
                raise StackError(
                    f"{owner[name]} and {logical_id} set {name} differently ({merged[name]!r} / {value!r}); "
                    "the local stack runs every function in one process and needs one value"
                )
            merged.setdefault(name, value)
            owner.setdefault(name, logical_id)
    return merged


def apply_environment(env: Mapping[str, str]) -> None:
    """Set the variables and forget what was derived from the old ones (settings, boto3 clients,
    the adapters built on them)."""
    os.environ.update(env)
    from taskapi import aws, wiring
    from taskapi.settings import get_settings

    get_settings.cache_clear()
    aws.reset_clients()
    wiring.reset()


class LocalStack:
    """start() brings up the AWS side, the demo credentials and the template's background
    functions, serve() runs the API until a signal, stop() takes everything down in reverse order.
    Workers (given ones first, then the pollers and schedules of the template) start after
    provisioning."""

    def __init__(self, config: StackConfig, workers: Sequence[BackgroundWorker] = ()) -> None:
        self.config = config
        self.workers: list[BackgroundWorker] = list(workers)
        self.names = LocalNames(region=DEFAULT_REGION)
        self.demo: DemoCredentials | None = None
        self.aws_endpoint = config.external_endpoint or ""
        self.processing_summary: list[str] = []
        self._moto: EmbeddedMotoServer | MotoServerProcess | None = None
        self._listener: socket.socket | None = None
        self._started_workers: list[BackgroundWorker] = []

    @property
    def embedded(self) -> bool:
        return self.config.external_endpoint is None

    @property
    def api_url(self) -> str:
        port = self._listener.getsockname()[1] if self._listener else self.config.api_port
        return http_url(self.config.host, port)

    def start(self) -> DemoCredentials:
        # The API port is claimed first: a taken port fails before anything else is started.
        self._listener = bind_listener(self.config.host, self.config.api_port, "the API (set TASKAPI_PORT)")
        if self.embedded:
            self._moto = start_moto_server(self.config.host, self.config.aws_port, own_process=True)
            self.aws_endpoint = http_url(*self._moto.get_host_and_port())
        apply_environment(aws_environment(self.aws_endpoint, os.environ, embedded=self.embedded))
        self.names = LocalNames(region=os.environ["AWS_DEFAULT_REGION"])
        template = load_template()
        try:
            refs = provision(boto3.Session(), self.names, template)
        except (BotoCoreError, ClientError) as exc:
            raise StackError(f"cannot provision the template's resources at {self.aws_endpoint}: {exc}") from exc
        apply_environment(stack_environment(self.names, refs, template))
        if self.config.sqs_refusal is not None:
            from taskapi import aws

            self.config.sqs_refusal.install(aws.client("sqs"))
        if self.config.ingest_crash is not None:
            from taskapi import aws
            from taskapi.settings import get_settings

            self.config.ingest_crash.install(aws.client("s3"), get_settings().uploads_bucket)
        if self.config.delivery_crash is not None:
            from taskapi.webhooks.wiring import get_deliverer

            self.config.delivery_crash.install(get_deliverer())
        try:
            self.demo = create_demo_credentials()
            self.workers += self._template_workers(template)
        except (BotoCoreError, ClientError) as exc:
            raise StackError(f"cannot prepare the local stack at {self.aws_endpoint}: {exc}") from exc
        for worker in self.workers:
            worker.start()
            self._started_workers.append(worker)
        return self.demo

    def _template_workers(self, template: dict[str, Any]) -> list[BackgroundWorker]:
        """A poller per SQS event source mapping (as provisioning recorded them), one per DynamoDB
        stream event source mapping and a runner per Schedule event; their handlers are loaded from
        the template's CodeUri and Handler."""
        from botocore.config import Config

        session = boto3.session.Session()
        # The pollers' own clients (the functions use taskapi.aws's): long polls need a pool
        # connection each, and no fault injection applies to them.
        config = Config(retries={"mode": "standard", "max_attempts": 4}, read_timeout=30, max_pool_connections=64)
        sqs, ssm = session.client("sqs", config=config), session.client("ssm", config=config)
        specs = function_specs(template, self.names)
        try:
            pollers = build_pollers(
                discover_mappings(ssm, self.names.mappings_parameter_prefix),
                specs,
                self.names,
                sqs=sqs,
                ssm=ssm,
                concurrency_cap=self.config.max_concurrency,
                retry_visibility_seconds=self.config.retry_visibility_seconds,
            )
            schedules = build_schedules(template, self.names, specs, self.config.schedule_seconds)
            stream_pollers = build_stream_pollers(
                stream_event_mappings(template, self.names),
                specs,
                self.names,
                dynamodb=session.client("dynamodb", config=config),
                # Account-based endpoints (<account>.streams-ddb...) are unknown to moto; with an
                # endpoint URL they are not used anyway.
                streams=session.client(
                    "dynamodbstreams", config=config.merge(Config(account_id_endpoint_mode="disabled"))
                ),
                sqs=sqs,
                ssm=ssm,
                retry_delay_seconds=self.config.retry_visibility_seconds,
            )
        except ValueError as exc:
            raise StackError(f"cannot run the template's functions locally: {exc}") from exc
        by_function: dict[str, list[str]] = {}
        for poller in pollers:
            by_function.setdefault(poller.mapping.function, []).append(
                f"{poller.mapping.event_name} x{poller.concurrency}"
            )
        self.processing_summary = [
            f"Processing: {function} polls {', '.join(events)} (SQS event source mappings, batch item failures"
            f" retried after {self.config.retry_visibility_seconds} s)"
            for function, events in by_function.items()
        ]
        self.processing_summary += [
            f"Stream: {mapping.function} reads {mapping.table_name}'s stream ({mapping.event_name}, batches of up"
            f" to {mapping.batch_size}, a failed batch delivered again from its first record)"
            for mapping in (poller.mapping for poller in stream_pollers)
        ]
        self.processing_summary += [
            f"Schedule: {runner.schedule.function} every {runner.schedule.period_seconds:g} s"
            f" (template: {runner.schedule.expression})"
            for runner in schedules
        ]
        refusal = self.config.sqs_refusal
        if refusal is not None:
            self.processing_summary.append(
                f"Fault injection: SQS refuses {refusal.rate:.0%} of SendMessageBatch entries"
            )
        crash = self.config.ingest_crash
        if crash is not None:
            self.processing_summary.append(
                f"Fault injection: the first read of each uploaded file breaks after {crash.after_bytes} bytes"
            )
        return [*pollers, *stream_pollers, *schedules]

    def serve(self) -> None:
        """Serve the API on the socket start() bound, until SIGINT or SIGTERM."""
        import uvicorn

        from taskapi.http.app import create_app, mounted_at
        from taskapi.settings import get_settings

        if self._listener is None:
            raise RuntimeError("start() the stack before serve()")
        # Mounted like functions/api does; the local root path is "" (no API Gateway stage).
        app = mounted_at(create_app(), get_settings().root_path)
        config = uvicorn.Config(
            app,
            log_level="info",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        uvicorn.Server(config).run(sockets=[self._listener])

    def stop(self) -> None:
        """Idempotent; stops what start() got to, newest first. Every worker is asked to stop
        before any is waited for, so they wind down together."""
        if self._started_workers:
            began, count = time.monotonic(), len(self._started_workers)
            for worker in self._started_workers:
                worker.request_stop()
            while self._started_workers:
                self._started_workers.pop().stop()
            log.info("stopped %d background workers in %.1f s", count, time.monotonic() - began)
        if self._moto is not None:
            moto, self._moto = self._moto, None
            moto.stop()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _configure_logging() -> None:
    """The stack's own messages (pollers, schedule) on stderr; the functions log JSON to stdout."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local_stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # --help, or an argument it does not take (it takes none)
        return exc.code if isinstance(exc.code, int) else 2
    _configure_logging()
    # uvicorn handles SIGINT/SIGTERM while it serves and re-raises them afterwards; outside
    # serve() (and after it) SIGTERM must unwind like Ctrl-C so that moto is stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack = LocalStack(StackConfig.from_environ(os.environ))
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with stack:
        try:
            demo = stack.start()
            text = banner(
                api_url=stack.api_url,
                aws_endpoint=stack.aws_endpoint,
                embedded=stack.embedded,
                demo=demo,
                processing=stack.processing_summary,
            )
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            stack.serve()
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            pass
    print("Local stack stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
