"""Generation through Amazon Bedrock's Converse API, the answer written as a forced tool call.

Converse has no switch that makes every model answer in a given JSON schema, but the models that use
tools fill a tool's input schema, and toolChoice can make the call compulsory. So the document's
pydantic model becomes the input schema of one tool, `write_<kind>`, the model must call it, and the
call's input is the document, validated by the same model and then by the request's checks. The
schema is sent with its $refs inlined: models follow a plain nested schema better than references.

  an answer that fails validation or the checks       -> one repair: the problems go back to the
                                                         model as the tool's error result
  invalid again                                       -> GenerationError, permanent
  cut off at max tokens, refused by a guardrail or
  a content filter, a prompt over the context window  -> GenerationError, permanent
  throttled, busy, model not ready, timeouts          -> retried with backoff and full jitter while
                                                         the time budget lasts, then GenerationError,
                                                         not permanent
  model not enabled, unknown model, a request
  Bedrock refuses                                     -> GenerationError, permanent

Logs and error details carry model ids, error codes, stop reasons, validation errors and token
counts, never the prompt, the answer or AWS's error messages (which may quote the request)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from pydantic import ValidationError

from taskapi.aws_errors import AWS_ERRORS, AwsError, classify, error_code
from taskapi.generation.base import Document, Generated, GenerationError, GenerationRequest, Usage
from taskapi.observability import logger

TEMPERATURE = 0.2
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 20.0
MAX_REPORTED_ERRORS = 20
MAX_ERROR_LENGTH = 300

RETRYABLE_BEDROCK_CODES = frozenset({"ModelNotReadyException", "ModelTimeoutException"})
"""Bedrock's own "try again" codes, beyond the throttling, 5xx and timeouts aws_errors knows."""

_REFUSALS = {"guardrail_intervened": "a guardrail", "content_filtered": "a content filter"}

_REFUSED_CALLS = {
    "AccessDeniedException": "model {model} is not enabled in this account/region or the processor may not invoke it",
    "ResourceNotFoundException": "Bedrock has no model {model} in this region: check the model id",
    "ValidationException": "Bedrock refused the request for model {model} (a model without forced tool use, "
    "or a prompt too long for it)",
}


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every {"$ref": "#/$defs/Name"} replaced by that definition (keys beside the
    $ref, such as a description, kept) and no "$defs". A recursive model cannot be inlined."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        resolved: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/$defs/")
            if name in seen or name not in definitions:
                raise ValueError(f"cannot inline {ref}: recursive or not among the schema's $defs")
            resolved.update(resolve(definitions[name], seen | {name}))
        resolved.update({key: resolve(value, seen) for key, value in node.items() if key not in ("$ref", "$defs")})
        return resolved

    result: dict[str, Any] = resolve(schema, frozenset())
    return result


class BedrockGenerator:
    """A Generator on Bedrock's Converse API (`client`: a boto3 "bedrock-runtime" client; by default
    one made on first use, in the environment's region, without botocore's retries, since retries
    happen here). `time_budget_seconds` bounds one generate(), retries included; `clock`, `sleep`
    and `jitter` are there for tests."""

    provider = "bedrock"

    def __init__(
        self,
        model_id: str,
        *,
        client: Any = None,
        time_budget_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.model_id = model_id
        self._client = client
        self._budget = time_budget_seconds
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    @property
    def client(self) -> Any:
        if self._client is None:
            config = Config(  # total_max_attempts counts the first call (botocore's max_attempts does not)
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=max(1.0, min(self._budget, 120.0)),
            )
            self._client = boto3.session.Session().client("bedrock-runtime", config=config)  # type: ignore[call-overload]
        return self._client

    def generate(self, request: GenerationRequest[Document]) -> Generated[Document]:
        deadline = self._clock() + self._budget
        tool = f"write_{request.kind}"
        call: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": request.instructions}],
            "inferenceConfig": {"maxTokens": request.max_output_tokens, "temperature": TEMPERATURE},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": tool,
                            "description": f"Write the {request.kind.replace('_', ' ')}: the whole document.",
                            "inputSchema": {"json": inline_refs(request.output.model_json_schema())},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": tool}},
            },
        }
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": request.prompt}]}]
        usage = Usage()
        errors: list[str] = []
        for calls in (1, 2):
            response = self._converse({**call, "messages": messages}, deadline)
            usage += Usage(response["usage"]["inputTokens"], response["usage"]["outputTokens"])
            self._check_stop(str(response.get("stopReason", "")), request, usage)
            message = response["output"]["message"]
            tool_uses = [block["toolUse"] for block in message.get("content", []) if "toolUse" in block]
            document, errors = _validate(request, tool_uses[0]["input"] if tool_uses else None, tool)
            if document is not None:
                logged = {"model_id": self.model_id, "kind": request.kind, "model_calls": calls, "repaired": calls > 1}
                logger.info("Bedrock generated a document", extra={**logged, **usage.to_json()})
                return Generated(document, self.provider, self.model_id, usage, calls=calls, repaired=calls > 1)
            messages = [*messages, _answered(message), _repair(tool, tool_uses, errors)]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise self._failure(
            f"the model's answer failed validation twice: {errors[0][:MAX_ERROR_LENGTH]}{more}",
            validation_errors=[error[:MAX_ERROR_LENGTH] for error in errors[:MAX_REPORTED_ERRORS]],
            usage=usage.to_json(),
        )

    def _converse(self, call: dict[str, Any], deadline: float) -> dict[str, Any]:
        """One Converse call, retried while it fails in a way a retry can change and time remains."""
        retries = 0
        while True:
            try:
                response: dict[str, Any] = self.client.converse(**call)
                return response
            except AWS_ERRORS as exc:
                code = error_code(exc) or type(exc).__name__
                if not _retryable(exc):
                    template = _REFUSED_CALLS.get(code, "Bedrock refused the call to model {model}")
                    raise self._failure(f"{template.format(model=self.model_id)} ({code})", error_code=code) from exc
                delay = self._jitter() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**retries)
                if self._clock() + delay > deadline:
                    raise self._failure(
                        f"Bedrock is busy ({code}) after {retries} retries; try again later",
                        permanent=False,
                        error_code=code,
                        retries=retries,
                    ) from exc
                self._sleep(delay)
                retries += 1

    def _check_stop(self, stop_reason: str, request: GenerationRequest[Any], usage: Usage) -> None:
        """Raises when the answer stopped where no repair can help."""
        if stop_reason == "max_tokens":
            limit = request.max_output_tokens
            raise self._failure(
                f"the model's answer was cut off at {limit} tokens (max_output_tokens): ask for less or allow more",
                stop_reason=stop_reason,
                max_output_tokens=limit,
                usage=usage.to_json(),
            )
        if stop_reason in _REFUSALS:
            raise self._failure(
                f"the model refused to answer: {_REFUSALS[stop_reason]} intervened ({stop_reason})",
                stop_reason=stop_reason,
                usage=usage.to_json(),
            )
        if stop_reason == "model_context_window_exceeded":
            raise self._failure(
                "the prompt and the answer do not fit the model's context window",
                stop_reason=stop_reason,
                usage=usage.to_json(),
            )

    def _failure(self, detail: str, *, permanent: bool = True, **details: Any) -> GenerationError:
        """The error to raise, logged with its codes (never its validation errors or AWS's message)."""
        details["model_id"] = self.model_id
        logged: dict[str, Any] = {
            key: details[key] for key in ("error_code", "retries", "stop_reason") if key in details
        }
        logger.warning("Bedrock generation failed", extra={"model_id": self.model_id, "permanent": permanent, **logged})
        return GenerationError(detail, permanent=permanent, details=details)


def _retryable(exc: AwsError) -> bool:
    return classify(exc) == "retryable" or error_code(exc) in RETRYABLE_BEDROCK_CODES


def _validate(request: GenerationRequest[Document], answer: Any, tool: str) -> tuple[Document | None, list[str]]:
    """The document, or the problems with the answer, one sentence each ("questions.3.answer: ...")."""
    if answer is None:
        return None, [f"the answer did not call the {tool} tool"]
    try:
        document = request.output.model_validate(answer)
    except ValidationError as exc:
        return None, [_described(error) for error in exc.errors(include_url=False, include_input=False)]
    problems = request.check(document)
    return (None, problems) if problems else (document, [])


def _described(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _answered(message: dict[str, Any]) -> dict[str, Any]:
    """The assistant's message as it came (Converse refuses a message without content)."""
    return message if message.get("content") else {"role": "assistant", "content": [{"text": "(no answer)"}]}


def _repair(tool: str, tool_uses: list[dict[str, Any]], errors: list[str]) -> dict[str, Any]:
    """The user's turn asking for a corrected answer: the problems as the tool's error result."""
    if not tool_uses:
        ask = f"Answer by calling the {tool} tool with the whole document as its input, not in text."
        return {"role": "user", "content": [{"text": ask}]}
    text = f"The document is not valid. Call {tool} again with the whole corrected document.\n" + "\n".join(errors)
    results = [
        {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": text}], "status": "error"}}
        for use in tool_uses  # Converse wants a result for every call the assistant made
    ]
    return {"role": "user", "content": results}
