"""The functions of template.yaml as the local stack runs them: each handler is imported from its
CodeUri and Handler, once per execution environment, and invoked with a Lambda-shaped context.

Like Lambda, an execution environment runs one invocation at a time and keeps its module state
(Powertools' BatchProcessor, cached clients) between invocations; concurrent invocations of one
function use separate environments, so each loads its own copy of the handler module. Unlike
Lambda, every environment lives in this one process and shares its environment variables and the
shared layer's module state — notably the Powertools logger, so a log record's Lambda context keys
(function_name, function_request_id) may name another function invoked at the same moment — and a
function's Timeout is not enforced (an overrun is logged)."""

from __future__ import annotations

import importlib.util
import itertools
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from infra.template import TEMPLATE_PATH, LocalNames, load_template, resolve, resources

log = logging.getLogger("taskapi.local")

DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class FunctionSpec:
    """What the template says about one AWS::Serverless::Function (Globals applied)."""

    logical_id: str
    function_name: str
    handler_path: Path
    handler_name: str
    timeout_seconds: int
    memory_mb: int
    events: dict[str, dict[str, Any]]

    def arn(self, names: LocalNames) -> str:
        return f"arn:aws:lambda:{names.region}:{names.account}:function:{self.function_name}"


def function_specs(template: dict[str, Any] | None = None, names: LocalNames | None = None) -> dict[str, FunctionSpec]:
    """Every function of the template, keyed by logical id. Handler "app.handler" with CodeUri
    "functions/processor/" is the attribute `handler` of functions/processor/app.py."""
    template = template or load_template()
    names = names or LocalNames()
    root = TEMPLATE_PATH.parent
    defaults = template.get("Globals", {}).get("Function", {})
    specs = {}
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        props = resource["Properties"]
        code_uri = props.get("CodeUri", defaults.get("CodeUri"))
        handler = props.get("Handler", defaults.get("Handler"))
        if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
            raise ValueError(f"{logical_id}: the local stack runs zip functions with a local CodeUri and a Handler")
        module_path, _, attribute = handler.rpartition(".")
        name = props.get("FunctionName")
        timeout = props.get("Timeout", defaults.get("Timeout", DEFAULT_TIMEOUT_SECONDS))
        memory = props.get("MemorySize", defaults.get("MemorySize", DEFAULT_MEMORY_MB))
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            function_name=str(resolve(name, template, names)) if name else names.physical_name(logical_id),
            handler_path=root / code_uri / (module_path.replace(".", "/") + ".py"),
            handler_name=attribute,
            timeout_seconds=int(resolve(timeout, template, names)),
            memory_mb=int(resolve(memory, template, names)),
            events=dict(props.get("Events", {})),
        )
    return specs


@dataclass
class LambdaContext:
    """The attributes and method of the Lambda Python context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


_environment_numbers = itertools.count(1)


def load_handler(spec: FunctionSpec) -> tuple[ModuleType, Handler]:
    """Import the handler's module as a fresh module object (one per execution environment)."""
    module_name = f"_taskapi_local_{spec.logical_id}_{next(_environment_numbers)}"
    module_spec = importlib.util.spec_from_file_location(module_name, spec.handler_path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"{spec.logical_id}: cannot load {spec.handler_path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    handler = getattr(module, spec.handler_name, None)
    if not callable(handler):
        raise ImportError(f"{spec.logical_id}: {spec.handler_path} has no callable {spec.handler_name!r}")
    return module, handler


class ExecutionEnvironment:
    """One initialised copy of a function; invoke() runs one invocation at a time."""

    def __init__(self, spec: FunctionSpec, names: LocalNames) -> None:
        self.spec = spec
        self._arn = spec.arn(names)
        self._module, self._handler = load_handler(spec)
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler; its exception propagates (the caller decides what a failure means)."""
        with self._lock:
            context = LambdaContext(
                function_name=self.spec.function_name,
                invoked_function_arn=self._arn,
                memory_limit_in_mb=self.spec.memory_mb,
                timeout_seconds=self.spec.timeout_seconds,
            )
            started = time.monotonic()
            try:
                return self._handler(event, context)
            finally:
                elapsed = time.monotonic() - started
                if elapsed > self.spec.timeout_seconds:
                    log.warning(
                        "%s ran %.1f s, over its Timeout of %d s (Lambda would have stopped it)",
                        self.spec.logical_id,
                        elapsed,
                        self.spec.timeout_seconds,
                    )


class SingleThreadWorker(ABC):
    """A BackgroundWorker of one thread that runs `_run(environment)` in its function's execution
    environment until stopped (a stream mapping's poller, a schedule)."""

    kind = "worker"
    """Names the thread and the log lines: "<kind> <name>"."""

    def __init__(self, name: str, spec: FunctionSpec, names: LocalNames) -> None:
        self.name = name
        self._spec = spec
        self._names = names
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Created here, so a handler that cannot be imported fails the start.
        environment = ExecutionEnvironment(self._spec, self._names)
        self._thread = threading.Thread(
            target=self._run, args=(environment,), name=f"{self.kind} {self.name}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop; an invocation in progress may finish within the timeout."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s %s did not stop within %.0f s", self.kind, self.name, timeout)
            else:
                self._thread = None

    @abstractmethod
    def _run(self, environment: ExecutionEnvironment) -> None:
        """The worker's loop, until self._stop is set."""
