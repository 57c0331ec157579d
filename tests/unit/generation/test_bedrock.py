"""Generation through Amazon Bedrock's Converse API (taskapi.generation.bedrock.BedrockGenerator).

A real boto3 bedrock-runtime client with dummy credentials and botocore's Stubber: every request
and every canned response is checked against botocore's own Bedrock model (a misshapen repair turn
fails the test as Bedrock would refuse it), and no request leaves the process (tests/unit blocks
sockets). Time is fake: sleeps are recorded and move the clock, nothing waits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import ANY, Stubber

from taskapi.generation import GenerationError, GenerationRequest, Generator, Usage
from taskapi.generation.bedrock import BedrockGenerator, inline_refs
from taskapi.generation.documents import (
    QuizDocument,
    VideoScript,
    quiz_checks,
    script_checks,
)
from tests.support.isolation import captured_logs

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PROMPT = "Photosynthesis, for a curious twelve-year-old named Zoë Secretprompt"
AWS_MESSAGE = "User: arn:aws:sts::123456789012:assumed-role/processor/fn is not authorized to invoke"


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sent(client: Any) -> list[dict[str, Any]]:
    """Every Converse request's parameters, as the generator built them."""
    requests: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.bedrock-runtime.Converse", lambda params, **_: requests.append(params)
    )
    return requests


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def generator(client: Any, fake_time: FakeTime) -> BedrockGenerator:
    return BedrockGenerator(
        MODEL, client=client, time_budget_seconds=60, clock=fake_time.clock, sleep=fake_time.sleep, jitter=lambda: 1.0
    )


# ------------------------------------------------------------------ documents, requests, answers
def question(number: int) -> dict[str, Any]:
    return {
        "type": "multiple_choice",
        "question": f"Question {number}: what do plants need for photosynthesis?",
        "options": ["Light", "Sound", "Magnetism", "Darkness"],
        "answer": "Light",
        "explanation": "Light is the energy photosynthesis turns into sugar.",
    }


def quiz(count: int = 5) -> dict[str, Any]:
    return {"title": "Photosynthesis", "questions": [question(n) for n in range(1, count + 1)]}


def quiz_request(count: int = 5) -> GenerationRequest[QuizDocument]:
    return GenerationRequest(
        kind="quiz",
        instructions=f"Write {count} multiple_choice questions in English.",
        prompt=PROMPT,
        output=QuizDocument,
        check=quiz_checks(count, ["multiple_choice"], None),
        max_output_tokens=2000,
    )


def tool_call(answer: Any, tool: str = "write_quiz", use_id: str = "tooluse_1") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": use_id, "name": tool, "input": answer}}


def answer(*content: dict[str, Any], stop: str = "tool_use", tokens: tuple[int, int] = (1200, 800)) -> dict[str, Any]:
    """A Converse response in Bedrock's shape."""
    return {
        "output": {"message": {"role": "assistant", "content": list(content)}},
        "stopReason": stop,
        "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
        "metrics": {"latencyMs": 2400},
    }


def user(*content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


def assistant(*content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(content)}


def expected(*messages: dict[str, Any]) -> dict[str, Any]:
    """A Converse request with exactly these messages (the rest is the same on every call)."""
    return {"modelId": MODEL, "system": ANY, "inferenceConfig": ANY, "toolConfig": ANY, "messages": list(messages)}


FIRST_TURN = user({"text": PROMPT})


def error_result(text_check: Any, use_id: str = "tooluse_1") -> dict[str, Any]:
    return {"toolResult": {"toolUseId": use_id, "content": [{"text": text_check}], "status": "error"}}


class Containing:
    """Equal to any string that contains every one of `parts`."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and all(part in other for part in self.parts)

    def __repr__(self) -> str:
        return f"<a string containing {self.parts!r}>"


# ------------------------------------------------------------------ a valid answer
def test_a_valid_answer_is_the_document_with_its_cost(generator, stub, sent):
    stub.add_response("converse", answer(tool_call(quiz()), tokens=(1200, 800)), expected(FIRST_TURN))

    generated = generator.generate(quiz_request())

    assert isinstance(generated.document, QuizDocument)
    assert [q.answer for q in generated.document.questions] == ["Light"] * 5
    assert generated.usage == Usage(1200, 800)
    assert (generated.provider, generated.model_id, generated.calls, generated.repaired) == ("bedrock", MODEL, 1, False)
    assert generated.summary()["usage"] == {"input_tokens": 1200, "output_tokens": 800}
    assert isinstance(generator, Generator)


def test_the_request_forces_one_tool_whose_schema_has_no_references(generator, stub, sent):
    stub.add_response("converse", answer(tool_call(quiz())))

    generator.generate(quiz_request())

    (request,) = sent
    assert request["modelId"] == MODEL
    assert request["system"] == [{"text": "Write 5 multiple_choice questions in English."}]
    assert request["inferenceConfig"]["maxTokens"] == 2000
    assert 0 <= request["inferenceConfig"]["temperature"] <= 0.5
    (tool,) = request["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "write_quiz"
    assert request["toolConfig"]["toolChoice"] == {"tool": {"name": "write_quiz"}}
    schema = tool["toolSpec"]["inputSchema"]["json"]
    assert "$ref" not in json.dumps(schema)
    assert "$defs" not in json.dumps(schema)
    assert schema["properties"]["questions"]["items"]["properties"]["type"]["enum"] == ["multiple_choice", "true_false"]


def test_inlining_keeps_what_sits_beside_a_reference_and_refuses_recursion():
    schema = {
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "properties": {"at": {"$ref": "#/$defs/Point", "description": "where"}},
    }
    assert inline_refs(schema) == {
        "properties": {"at": {"type": "object", "properties": {"x": {"type": "integer"}}, "description": "where"}}
    }
    looped = {"$defs": {"Node": {"properties": {"next": {"$ref": "#/$defs/Node"}}}}, "$ref": "#/$defs/Node"}
    with pytest.raises(ValueError, match="recursive"):
        inline_refs(looped)


def test_a_video_script_is_written_through_write_video_script(generator, stub, sent):
    script = {
        "title": "How bees talk",
        "segments": [
            {"title": "The waggle dance", "narration": "Bees dance to point the way.", "image_prompt": "A bee dancing"},
            {"title": "Distance", "narration": "The longer the waggle, the farther.", "image_prompt": "A meadow"},
        ],
    }
    stub.add_response("converse", answer(tool_call(script, tool="write_video_script")))
    request = GenerationRequest(
        kind="video_script", instructions="Two segments.", prompt=PROMPT, output=VideoScript, check=script_checks(2)
    )

    generated = generator.generate(request)

    assert [segment.title for segment in generated.document.segments] == ["The waggle dance", "Distance"]
    assert sent[0]["toolConfig"]["toolChoice"] == {"tool": {"name": "write_video_script"}}
    assert "$ref" not in json.dumps(sent[0]["toolConfig"])


# ------------------------------------------------------------------ repair
def test_an_invalid_answer_is_repaired_with_its_errors_sent_back(generator, stub):
    broken = quiz()
    broken["questions"][3]["answer"] = "Photosynthesis"  # not one of its options
    del broken["questions"][1]["explanation"]
    first = answer({"text": "Here is the quiz."}, tool_call(broken), tokens=(1000, 700))
    stub.add_response("converse", first, expected(FIRST_TURN))
    repair_turn = user(error_result(Containing("questions.1.explanation: Field required", "questions.3: ")))
    stub.add_response(
        "converse",
        answer(tool_call(quiz(), use_id="tooluse_2"), tokens=(1900, 750)),
        expected(FIRST_TURN, first["output"]["message"], repair_turn),
    )

    generated = generator.generate(quiz_request())

    assert generated.repaired is True
    assert generated.calls == 2
    assert generated.usage == Usage(2900, 1450)
    assert len(generated.document.questions) == 5


def test_an_answer_failing_a_check_is_repaired(generator, stub):
    first = answer(tool_call(quiz(4)))
    stub.add_response("converse", first, expected(FIRST_TURN))
    repair_turn = user(error_result(Containing("write exactly 5 questions (this answer has 4)")))
    stub.add_response(
        "converse", answer(tool_call(quiz(5))), expected(FIRST_TURN, first["output"]["message"], repair_turn)
    )

    generated = generator.generate(quiz_request(5))

    assert generated.repaired is True
    assert len(generated.document.questions) == 5


def test_a_plain_text_answer_is_asked_to_call_the_tool(generator, stub):
    first = answer({"text": "Sure! Question 1: what do plants need?"}, stop="end_turn", tokens=(900, 60))
    stub.add_response("converse", first, expected(FIRST_TURN))
    ask = user({"text": Containing("write_quiz")})
    stub.add_response("converse", answer(tool_call(quiz())), expected(FIRST_TURN, first["output"]["message"], ask))

    generated = generator.generate(quiz_request())

    assert (generated.repaired, generated.calls) == (True, 2)
    assert generated.usage == Usage(2100, 860)


def test_an_answer_invalid_twice_is_a_permanent_error_with_the_errors(generator, stub):
    broken = quiz(4)
    broken["questions"][0]["options"] = ["Light", "Light", "Water", "Air"]
    broken["questions"][2]["type"] = "essay"
    stub.add_response("converse", answer(tool_call(broken), tokens=(1000, 600)))
    stub.add_response("converse", answer(tool_call(broken, use_id="tooluse_2"), tokens=(1700, 600)))

    with pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request(5))

    error = caught.value
    assert error.permanent is True
    assert str(error.detail).startswith("the model's answer failed validation twice: questions.0: ")
    assert "(and 1 more)" in str(error.detail)
    assert error.details["model_id"] == MODEL
    assert error.details["usage"] == {"input_tokens": 2700, "output_tokens": 1200}
    assert error.details["validation_errors"] == [
        "questions.0: Value error, the 4 options must be distinct",
        "questions.2.type: Input should be 'multiple_choice' or 'true_false'",
    ]
    json.dumps(error.details)  # it goes to the task's error_details


def test_reported_validation_errors_are_bounded(generator, stub):
    huge = {"title": "x" * 5000, "questions": [{"type": "essay"}] * 40}
    stub.add_response("converse", answer(tool_call(huge)))
    stub.add_response("converse", answer(tool_call(huge, use_id="tooluse_2")))

    with pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request())

    errors = caught.value.details["validation_errors"]
    assert len(errors) == 20
    assert all(len(error) <= 300 for error in errors)
    assert "x" * 300 not in str(caught.value.detail)


# ------------------------------------------------------------------ stop reasons
def test_an_answer_cut_off_at_max_tokens_is_permanent(generator, stub):
    stub.add_response("converse", answer(tool_call({"title": "Photo"}), stop="max_tokens", tokens=(1000, 2000)))

    with pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request())

    assert caught.value.permanent is True
    assert "cut off at 2000 tokens" in str(caught.value.detail)
    assert caught.value.details["stop_reason"] == "max_tokens"
    assert caught.value.details["max_output_tokens"] == 2000


@pytest.mark.parametrize(("stop", "names"), [("guardrail_intervened", "guardrail"), ("content_filtered", "filter")])
def test_a_refusal_is_permanent(generator, stub, stop, names):
    stub.add_response("converse", answer({"text": "Sorry, I can't help with that."}, stop=stop))

    with pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request())

    assert caught.value.permanent is True
    assert "refused" in str(caught.value.detail)
    assert names in str(caught.value.detail)
    assert caught.value.details["stop_reason"] == stop


# ------------------------------------------------------------------ AWS errors
@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 429), ("ModelNotReadyException", 429), ("ServiceUnavailableException", 503)],
)
def test_a_busy_bedrock_is_retried_with_growing_delays(generator, stub, fake_time, code, status):
    stub.add_client_error("converse", service_error_code=code, service_message=AWS_MESSAGE, http_status_code=status)
    stub.add_client_error("converse", service_error_code=code, service_message=AWS_MESSAGE, http_status_code=status)
    stub.add_response("converse", answer(tool_call(quiz()), tokens=(1200, 800)))

    generated = generator.generate(quiz_request())

    assert fake_time.slept == [1.0, 2.0]
    assert generated.calls == 1  # retries of throttled calls are not model calls
    assert generated.usage == Usage(1200, 800)


def test_delays_are_jittered_below_the_backoff(client, stub, fake_time):
    generator = BedrockGenerator(MODEL, client=client, clock=fake_time.clock, sleep=fake_time.sleep, jitter=lambda: 0.5)
    for _ in range(7):
        stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
    stub.add_response("converse", answer(tool_call(quiz())))

    generator.generate(quiz_request())

    assert fake_time.slept == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # half of 1, 2, 4 ... capped at 20


def test_throttled_past_the_time_budget_is_not_permanent(client, stub, fake_time):
    generator = BedrockGenerator(
        MODEL, client=client, time_budget_seconds=10, clock=fake_time.clock, sleep=fake_time.sleep, jitter=lambda: 1.0
    )
    for _ in range(4):  # sleeps 1 + 2 + 4 = 7 s; the next 8 s would pass the 10 s budget
        stub.add_client_error("converse", service_error_code="ThrottlingException", service_message=AWS_MESSAGE)

    with pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request())

    assert caught.value.permanent is False
    assert caught.value.details["error_code"] == "ThrottlingException"
    assert caught.value.details["retries"] == 3
    assert fake_time.slept == [1.0, 2.0, 4.0]
    assert AWS_MESSAGE not in str(caught.value.detail)


def test_timeouts_are_retried_until_the_budget_runs_out(client, fake_time):
    def time_out(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com/")

    client.meta.events.register("before-send", time_out)
    generator = BedrockGenerator(
        MODEL, client=client, time_budget_seconds=5, clock=fake_time.clock, sleep=fake_time.sleep, jitter=lambda: 1.0
    )

    with pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request())

    assert caught.value.permanent is False
    assert caught.value.details["error_code"] == "ReadTimeoutError"
    assert fake_time.slept == [1.0, 2.0]


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        ("AccessDeniedException", 403, "not enabled in this account/region"),
        ("ResourceNotFoundException", 404, "check the model id"),
        ("ValidationException", 400, "refused the request"),
    ],
)
def test_a_refused_call_is_permanent_and_not_retried(generator, stub, fake_time, capsys, caplog, code, status, says):
    stub.add_client_error("converse", service_error_code=code, service_message=AWS_MESSAGE, http_status_code=status)

    with captured_logs(capsys, caplog) as logs, pytest.raises(GenerationError) as caught:
        generator.generate(quiz_request())

    assert caught.value.permanent is True
    assert says in str(caught.value.detail)
    assert MODEL in str(caught.value.detail)
    assert caught.value.details["error_code"] == code
    assert fake_time.slept == []
    logged = logs.text()
    assert code in logged
    assert AWS_MESSAGE not in logged
    assert AWS_MESSAGE not in str(caught.value.detail) + json.dumps(caught.value.details)
    assert "Secretprompt" not in logged


# ------------------------------------------------------------------ logs
def test_one_line_is_logged_per_generation_without_the_prompt_or_the_answer(generator, stub, capsys, caplog):
    stub.add_response("converse", answer(tool_call(quiz()), tokens=(1200, 800)))

    with captured_logs(capsys, caplog) as logs:
        generator.generate(quiz_request())
        text = logs.text()

    records = [json.loads(line) for line in text.splitlines() if line.startswith("{") and "Bedrock" in line]
    (record,) = [r for r in records if r.get("message") == "Bedrock generated a document"]
    assert record["model_id"] == MODEL
    assert (record["model_calls"], record["input_tokens"], record["output_tokens"]) == (1, 1200, 800)
    assert record["repaired"] is False
    assert "Secretprompt" not in text
    assert "what do plants need" not in text


def test_the_client_is_made_on_first_use_without_botocores_retries(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    generator = BedrockGenerator(MODEL, time_budget_seconds=300)

    client = generator.client

    assert client is generator.client
    assert client.meta.region_name == "eu-west-3"
    assert client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}  # one attempt: no retry
    assert client.meta.config.read_timeout == 120
