"""What one Bedrock generation of each task type costs (make bench): the example documents of
tests/support/generation_examples.py, written by Claude Haiku 4.5 (the template's default model)
through the us. cross-region inference profile (the template's default BedrockInferenceProfile).

The requests are the ones BedrockGenerator really sends: it runs against a bedrock-runtime double
that records each Converse request and answers with the example as the forced tool call. Tokens are
ESTIMATES, since there is no tokenizer offline: characters / 3.5 (English prose and JSON), rounded up
per call.

- input, per call: the system instructions, the messages (the prompt; for a repair also the first
  answer and the validation errors sent back), the tool's name, description and inlined JSON schema,
  plus the tool-use system prompt Anthropic adds for a forced tool (TOOL_SYSTEM_PROMPT_TOKENS);
- output, per call: the tool call's input, the document as JSON.

The double reports these estimates as each call's usage, so the totals are added up by the
generator's own accounting: the `usage` that result_summary records. The worst case is one repair:
the first answer carries a field the schema forbids, the second call re-sends the conversation with
that answer and the error, and the model writes the whole document again.

The video row is its script only: narration (Amazon Polly, billed per character) and rendering
(the processor's Lambda time) are priced elsewhere.

    .venv/bin/pytest tests/perf/test_generation_cost.py -q -s
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from taskapi.generation.base import Generated, Usage
from taskapi.generation.bedrock import BedrockGenerator
from tests.perf.support import Figure, Recorder
from tests.support.generation_examples import Example, examples

PRICES: dict[str, Any] = {
    "model": "Claude Haiku 4.5 (anthropic.claude-haiku-4-5-20251001-v1:0), Amazon Bedrock on-demand",
    "looked_up": "2026-12-07",
    "usd_per_million_tokens": {
        # the global. cross-region inference profile
        "global": {"input": 1.00, "output": 5.00},
        # geographic profiles (us., eu., apac., ...) and in-region calls: 10% more
        "regional": {"input": 1.10, "output": 5.50},
    },
    "sources": (
        "https://platform.claude.com/docs/en/about-claude/pricing: Claude Haiku 4.5 $1 / MTok input, $5 / MTok output",
        "https://platform.claude.com/docs/en/build-with-claude/claude-on-amazon-bedrock: from Claude Sonnet 4.5 "
        "on, Bedrock's regional endpoints include a 10% pricing premium over global endpoints",
        "https://aws.amazon.com/bedrock/pricing/: Bedrock's own rate card, to check these against",
    ),
}
"""Published prices, and when they were looked up. Re-check before quoting a figure."""

PROFILE = "us"
"""The template's default BedrockInferenceProfile: a geographic profile, priced "regional"."""
MODEL_ID = f"{PROFILE}.anthropic.claude-haiku-4-5-20251001-v1:0"
CHARS_PER_TOKEN = 3.5
"""The estimate: characters per token of English prose and JSON."""
TOOL_SYSTEM_PROMPT_TOKENS = 588
"""The system prompt Anthropic adds when tools are given, for Claude Haiku 4.5 with tool_choice any
or tool (496 with auto or none): "Tool use with Claude", Pricing,
https://platform.claude.com/docs/en/agents-and-tools/tool-use/overview (looked up 2026-12-07;
earlier versions of that page gave 313 for the Claude 4 models, Haiku 4.5 included)."""
INVALID_FIELD = {"language": "English"}
"""What spoils the first answer in the worst case: a field the document's schema does not have."""
REPRODUCE = ".venv/bin/pytest tests/perf/test_generation_cost.py -q -s"


def estimated_tokens(characters: int) -> int:
    return math.ceil(characters / CHARS_PER_TOKEN)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def request_characters(call: dict[str, Any]) -> int:
    """The characters of a Converse request that the model reads: the system prompt, each tool's
    name, description and JSON schema, and the messages (text, tool calls' inputs, tool results)."""
    parts = [block["text"] for block in call.get("system", []) if "text" in block]
    for tool in call["toolConfig"]["tools"]:
        spec = tool["toolSpec"]
        parts += [spec["name"], spec["description"], _json(spec["inputSchema"]["json"])]
    for message in call["messages"]:
        for block in message["content"]:
            if "text" in block:
                parts.append(block["text"])
            elif "toolUse" in block:
                parts += [block["toolUse"]["name"], _json(block["toolUse"]["input"])]
            elif "toolResult" in block:
                parts += [part["text"] for part in block["toolResult"]["content"] if "text" in part]
    return sum(len(part) for part in parts)


def input_tokens(call: dict[str, Any]) -> int:
    return estimated_tokens(request_characters(call)) + TOOL_SYSTEM_PROMPT_TOKENS


def output_tokens(answer: dict[str, Any]) -> int:
    return estimated_tokens(len(_json(answer)))


class EstimatingBedrock:
    """A bedrock-runtime client double: converse() records the request, answers the next of
    `answers` as the forced tool call, and reports the estimated tokens as the call's usage."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def converse(self, **call: Any) -> dict[str, Any]:
        self.calls.append(call)
        answer = self.answers.pop(0)
        used = {"inputTokens": input_tokens(call), "outputTokens": output_tokens(answer)}
        tool = call["toolConfig"]["tools"][0]["toolSpec"]["name"]
        tool_use = {"toolUseId": f"tooluse_{len(self.calls)}", "name": tool, "input": answer}
        return {
            "output": {"message": {"role": "assistant", "content": [{"toolUse": tool_use}]}},
            "stopReason": "tool_use",
            "usage": {**used, "totalTokens": used["inputTokens"] + used["outputTokens"]},
        }


def cost_usd(usage: Usage, endpoint: str) -> float:
    price = PRICES["usd_per_million_tokens"][endpoint]
    return (usage.input_tokens * price["input"] + usage.output_tokens * price["output"]) / 1_000_000


@dataclass(frozen=True)
class Row:
    task_type: str
    generated: Generated[Any]
    bedrock: EstimatingBedrock

    @property
    def usage(self) -> Usage:
        return self.generated.usage

    def per_task(self, endpoint: str = "regional") -> float:
        return cost_usd(self.usage, endpoint)


def generate(example: Example, *, repaired: bool) -> Row:
    answer = json.loads(example.document.model_dump_json(exclude_none=True))
    answers = [{**answer, **INVALID_FIELD}, answer] if repaired else [answer]
    bedrock = EstimatingBedrock(*answers)
    generated = BedrockGenerator(MODEL_ID, client=bedrock).generate(example.request)
    return Row(example.task_type, generated, bedrock)


def table(title: str, rows: list[Row]) -> str:
    header = ("type", "calls", "input tokens", "output tokens", "$ per task (us.)", "$ per million tasks (us.)")
    body = [
        (
            row.task_type + (" (script only)" if row.task_type == "video" else ""),
            str(row.generated.calls),
            f"{row.usage.input_tokens:,}",
            f"{row.usage.output_tokens:,}",
            f"{row.per_task():.5f}",
            f"{row.per_task() * 1_000_000:,.0f}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def aligned(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([title, aligned(header), *(aligned(line) for line in body)])


def test_bedrock_generation_cost_per_task(bench: Recorder) -> None:
    once = [generate(example, repaired=False) for example in examples()]
    repaired = [generate(example, repaired=True) for example in examples()]

    for example, row in zip(examples(), once, strict=True):
        assert row.generated.document == example.document
        assert (row.generated.calls, row.generated.repaired) == (1, False)
        assert row.generated.summary()["usage"] == row.usage.to_json()
        call = row.bedrock.calls[0]
        assert call["modelId"] == MODEL_ID
        assert call["toolConfig"]["toolChoice"] == {"tool": {"name": f"write_{example.request.kind}"}}
    for example, row, single in zip(examples(), repaired, once, strict=True):
        assert row.generated.document == example.document
        assert (row.generated.calls, row.generated.repaired) == (2, True)
        repair = row.bedrock.calls[1]["messages"][-1]["content"][0]["toolResult"]
        assert "Extra inputs are not permitted" in repair["content"][0]["text"]
        # input about doubles, plus the first answer; output about doubles
        assert row.usage.input_tokens > 2 * single.usage.input_tokens + single.usage.output_tokens
        assert row.usage.output_tokens >= 2 * single.usage.output_tokens

    regional = PRICES["usd_per_million_tokens"]["regional"]
    print()
    print(f"Bedrock generation cost per task: {PRICES['model']}, called as {MODEL_ID}")
    print(
        f"prices (looked up {PRICES['looked_up']}): ${regional['input']:.2f} / ${regional['output']:.2f} per million "
        f"input / output tokens on us./eu./... profiles (global.: "
        f"${PRICES['usd_per_million_tokens']['global']['input']:.2f} / "
        f"${PRICES['usd_per_million_tokens']['global']['output']:.2f})"
    )
    print(
        f"tokens are ESTIMATES: characters / {CHARS_PER_TOKEN:g}, rounded up, per call; input adds "
        f"{TOOL_SYSTEM_PROMPT_TOKENS} tokens of Anthropic's tool-use system prompt per call"
    )
    print(table("one call (the example prompt of tests/support/generation_examples.py):", once))
    print(table("worst case, one repair (an invalid first answer; the conversation and its errors re-sent):", repaired))
    print(
        "video: the script only; narration (Amazon Polly) and rendering (Lambda) are priced elsewhere. "
        "global. profile: 10% less than these figures."
    )

    for row, worst in zip(once, repaired, strict=True):
        for name, measured in ((row.task_type, row), (f"{row.task_type}_with_one_repair", worst)):
            bench.record(
                Figure(
                    f"generation.bedrock_cost_per_million_tasks.{name}",
                    round(measured.per_task() * 1_000_000, 2),
                    "USD",
                    note=f"{measured.generated.calls} call(s), {measured.usage.input_tokens} input + "
                    f"{measured.usage.output_tokens} output tokens (estimated: characters / {CHARS_PER_TOKEN:g}); "
                    f"{PRICES['model']} on the {PROFILE}. profile, prices of {PRICES['looked_up']}; "
                    f"reproduce: {REPRODUCE}",
                )
            )
