"""A model-written quiz through the processor on the real adapters (moto DynamoDB, SQS, S3): the
deployment's policy sends quiz tasks to the "bedrock" provider, served by a generation double
injected through the registry. A user sees the task COMPLETED with who wrote it and what it cost,
and the stored quiz.json is the model's; a permanent generation failure fails the task with the
model's problems in error_details; a transient one is retried, not failed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskapi.engines.generated import GeneratedQuizEngine
from taskapi.engines.registry import EngineRegistry
from taskapi.generation import GenerationError
from taskapi.generation.choice import ProviderPolicy
from taskapi.models.domain import Task, TaskStatus
from taskapi.models.requests import BulkCreateRequest
from taskapi.queueing.messages import TaskMessage
from taskapi.services import tasks as task_service
from taskapi.services.processing import Outcome, Processor
from tests import factories
from tests.integration.processing.support import keys_under, receive_all
from tests.unit.generation.doubles import QUESTIONS, TEXT, USAGE, ScriptedGenerator, quiz_document
from tests.unit.processing.support import ACCOUNT, event_messages, principal

POLICY = ProviderPolicy(defaults={"quiz": "bedrock"}, models={"quiz": "test-model"})
QUIZ_DATA = {"story_prompt": TEXT, "difficulty": "medium", "num_questions": 3}


class Deployment:
    """Quiz tasks created through the service under POLICY, their messages received from the
    template's normal queue and processed by a processor whose registry serves "bedrock" quizzes
    with GeneratedQuizEngine(generator)."""

    def __init__(self, repo: Any, queue: Any, results: Any, clock: Any, sqs: Any, queue_url: str) -> None:
        self.repo, self.queue, self.results, self.clock = repo, queue, results, clock
        self.sqs, self.queue_url = sqs, queue_url

    def processor(self, generator: ScriptedGenerator) -> Processor:
        registry = EngineRegistry(policy=POLICY)
        registry.register(GeneratedQuizEngine(generator), provider="bedrock")
        return Processor(self.repo, self.queue, self.results, registry.get, retry_delay_seconds=0, clock=self.clock)

    def create(self, task_id: str = "q1") -> Task:
        request = BulkCreateRequest.model_validate(factories.bulk(factories.quiz(task_id, request_data=QUIZ_DATA)))
        (created,) = task_service.create_bulk(self.repo, self.queue, principal(), request, providers=POLICY)
        return created

    def process_next(self, processor: Processor) -> Outcome:
        (received,) = receive_all(self.sqs, self.queue_url)
        return processor.process(TaskMessage.parse(received["Body"]))

    def run(self, generator: ScriptedGenerator, task_id: str = "q1") -> tuple[Outcome, Task]:
        """Create a task and process its message: the outcome and the task as stored then."""
        assert self.create(task_id).status is TaskStatus.QUEUED
        outcome = self.process_next(self.processor(generator))
        return outcome, self.repo.get(ACCOUNT, task_id)


@pytest.fixture
def deployment(repo, queue, results, clock, sqs, aws_env) -> Deployment:
    return Deployment(repo, queue, results, clock, sqs, aws_env["TasksNormalQueue"])


def stored_file(s3: Any, bucket: str, task: Task, name: str) -> bytes:
    assert task.result_key is not None
    prefix = task.result_key.rsplit("/", 1)[0]
    return s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()


def test_a_quiz_written_by_the_provider_completes_with_the_models_quiz_stored(deployment, s3, bucket):
    generator = ScriptedGenerator(quiz_document())

    outcome, task = deployment.run(generator)

    assert outcome is Outcome.COMPLETED
    assert task.status is TaskStatus.COMPLETED
    assert task.progress == 100.0
    assert task.error_details is None
    summary = task.result_summary or {}
    assert (summary["provider"], summary["model_id"]) == ("bedrock", "test-model")
    assert summary["usage"] == {"input_tokens": USAGE.input_tokens, "output_tokens": USAGE.output_tokens}
    assert (summary["requested_questions"], summary["produced_questions"]) == (3, 3)
    assert task.result_key is not None
    assert task.result_key.endswith("/quiz.json")
    quiz = json.loads(stored_file(s3, bucket, task, "quiz.json"))
    assert quiz["title"] == "Photosynthesis quiz"
    assert [q["question"] for q in quiz["questions"]] == [q["question"] for q in QUESTIONS]
    assert [q["explanation"] for q in quiz["questions"]] == [q["explanation"] for q in QUESTIONS]
    assert "## Answer key" in stored_file(s3, bucket, task, "quiz.md").decode()
    (request,) = generator.requests
    assert request.prompt == TEXT
    assert "Write exactly 3 questions." in request.instructions


def test_a_permanent_generation_failure_fails_the_task_with_the_models_problems(deployment, s3, bucket):
    problems = ["write exactly 3 questions (this answer has 2)", "question 2 repeats an earlier question"]
    failure = GenerationError(
        "the answer was still invalid after the repair", permanent=True, details={"validation_errors": problems}
    )

    outcome, task = deployment.run(ScriptedGenerator(failure))

    assert outcome is Outcome.FAILED
    assert task.status is TaskStatus.FAILED
    assert task.tries == 1
    assert task.error_message == "bedrock (test-model): the answer was still invalid after the repair"
    details = task.error_details or {}
    assert details["validation_errors"] == problems
    assert (details["provider"], details["model_id"]) == ("bedrock", "test-model")
    assert details["permanent"] is True
    assert task.result_summary is None
    assert keys_under(s3, bucket, f"results/{ACCOUNT}/q1/") == []
    assert any(m.startswith("Task failed (cannot succeed): bedrock (test-model)") for m in event_messages(task))


def test_a_transient_generation_failure_is_retried_and_the_next_try_completes(deployment, s3, bucket):
    failure = GenerationError("Bedrock kept throttling", permanent=False, details={"throttled": 4})
    generator = ScriptedGenerator(failure, quiz_document())

    outcome, task = deployment.run(generator)

    assert outcome is Outcome.RETRY_SCHEDULED
    assert task.status is TaskStatus.QUEUED
    assert task.tries == 1
    details = task.error_details or {}
    assert (details["provider"], details["model_id"], details["throttled"]) == ("bedrock", "test-model", 4)
    assert any(
        m.startswith("Try 1 failed: bedrock (test-model): Bedrock kept throttling") for m in event_messages(task)
    )

    assert keys_under(s3, bucket, f"results/{ACCOUNT}/q1/") == []

    # The retry's message is on the queue: its delivery runs the task again, and the model answers.
    assert deployment.process_next(deployment.processor(generator)) is Outcome.COMPLETED

    task = deployment.repo.get(ACCOUNT, "q1")
    assert task.status is TaskStatus.COMPLETED
    assert task.tries == 2
    assert task.error_details is None
    assert (task.result_summary or {})["provider"] == "bedrock"
    assert len(generator.requests) == 2
    assert json.loads(stored_file(s3, bucket, task, "quiz.json"))["title"] == "Photosynthesis quiz"


def test_a_task_the_deployment_no_longer_serves_fails_at_once_in_words(deployment, repo, queue, s3, bucket):
    """Created while tasks could choose bedrock; the deployment then stopped letting them."""
    generator = ScriptedGenerator(quiz_document())
    data = {**QUIZ_DATA, "provider": "bedrock"}
    request = BulkCreateRequest.model_validate(factories.bulk(factories.quiz("q1", request_data=data)))
    allowed = ProviderPolicy(models={"quiz": "test-model"}, allow_override=True)
    task_service.create_bulk(repo, queue, principal(), request, providers=allowed)
    registry = EngineRegistry(policy=ProviderPolicy(models={"quiz": "test-model"}))
    registry.register(GeneratedQuizEngine(generator), provider="bedrock")
    processor = Processor(repo, queue, deployment.results, registry.get, retry_delay_seconds=0, clock=deployment.clock)

    assert deployment.process_next(processor) is Outcome.FAILED

    task = repo.get(ACCOUNT, "q1")
    assert task.status is TaskStatus.FAILED
    assert task.error_message is not None
    assert task.error_message.startswith("request_data.provider: this deployment does not let a task choose")
    assert "AllowProviderOverride=true" in task.error_message
    assert (task.error_details or {})["permanent"] is True
    assert generator.requests == []
    assert keys_under(s3, bucket, f"results/{ACCOUNT}/q1/") == []
