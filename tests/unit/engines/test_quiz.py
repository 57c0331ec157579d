"""Quiz engine: questions drawn from the prompt's sentences, honouring difficulty, count and types."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskapi.engines import EngineError
from taskapi.engines.analysis import analyse
from taskapi.engines.quiz import BLANK, QuizEngine
from taskapi.engines.text import lemma
from taskapi.models.requests import DEFAULT_NUM_QUESTIONS
from tests.unit.engines.conftest import LONG, PYTHAGORAS, REFERENCE, ProgressLog

SENTENCES = [s.text for s in analyse(PYTHAGORAS).sentences]


def quiz(**request: Any) -> dict[str, Any]:
    data = {"story_prompt": PYTHAGORAS, "difficulty": "medium", **request}
    return json.loads(QuizEngine().generate(data, ProgressLog()).file("quiz.json").body)


def run(**request: Any):
    data = {"story_prompt": PYTHAGORAS, "difficulty": "medium", **request}
    return QuizEngine().generate(data, ProgressLog())


def of_type(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [q for q in document["questions"] if q["type"] == kind]


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_default_number_of_questions_follows_difficulty(difficulty):
    document = quiz(difficulty=difficulty)

    assert len(document["questions"]) == DEFAULT_NUM_QUESTIONS[difficulty]


@pytest.mark.parametrize("count", [1, 4, 7, 12])
def test_num_questions_is_honoured(count):
    assert len(quiz(num_questions=count)["questions"]) == count


def test_fifty_questions_from_a_long_prompt():
    artifact = run(story_prompt=LONG, num_questions=50, difficulty="hard")

    assert artifact.summary["produced_questions"] == 50


def test_quiz_document_shape():
    document = quiz(difficulty="easy")

    assert list(document) == ["title", "language", "difficulty", "question_types", "questions"]
    assert document["language"] == "English"
    assert document["difficulty"] == "easy"
    assert [q["id"] for q in document["questions"]] == [f"q{n}" for n in range(1, 6)]
    for question in document["questions"]:
        assert {"id", "type", "question", "answer", "source_sentence"} <= set(question)


def test_language_is_carried_through():
    assert quiz(language="French")["language"] == "French"


def test_both_question_types_by_default():
    document = quiz(num_questions=10)

    assert len(of_type(document, "multiple_choice")) == 5
    assert len(of_type(document, "true_false")) == 5


@pytest.mark.parametrize("kind", ["multiple_choice", "true_false"])
def test_question_types_filter(kind):
    document = quiz(num_questions=8, question_types=[kind])

    assert {q["type"] for q in document["questions"]} == {kind}
    assert document["question_types"] == [kind]
    assert len(document["questions"]) == 8


def test_multiple_choice_answer_is_one_of_four_distinct_options():
    for difficulty in ("easy", "medium", "hard"):
        for question in of_type(quiz(difficulty=difficulty, question_types=["multiple_choice"]), "multiple_choice"):
            options = question["options"]
            assert len(options) == 4
            assert len({o.lower() for o in options}) == 4
            assert question["answer"] in options


def test_multiple_choice_blank_filled_with_the_answer_gives_back_the_source_sentence():
    for question in of_type(quiz(num_questions=12, question_types=["multiple_choice"]), "multiple_choice"):
        assert question["source_sentence"] in SENTENCES
        assert BLANK in question["question"]
        filled = question["question"].replace(BLANK, question["answer"])
        assert filled.lower() == question["source_sentence"].lower()


def test_distractors_come_from_the_prompt_text():
    prompt_words = PYTHAGORAS.lower()
    for question in of_type(quiz(num_questions=12, question_types=["multiple_choice"]), "multiple_choice"):
        for option in question["options"]:
            assert option.lower() in prompt_words


def test_distractors_are_not_visible_in_the_question():
    for question in of_type(quiz(num_questions=6, question_types=["multiple_choice"]), "multiple_choice"):
        shown = question["question"].lower().split()
        distractors = [o for o in question["options"] if o != question["answer"]]
        assert not [d for d in distractors if d.lower() in shown]


def test_number_answers_get_number_distractors():
    prompt = (
        "The Great Pyramid was finished around 2560 BC. It stood 146 metres tall. "
        "Its base covers 53000 square metres. Workers moved 2300000 blocks to build it. "
        "The pyramid was the tallest building for 3800 years."
    )
    document = quiz(story_prompt=prompt, num_questions=10, question_types=["multiple_choice"], difficulty="hard")
    numeric = [q for q in of_type(document, "multiple_choice") if q["answer"].isdigit()]

    assert numeric
    for question in numeric:
        assert all(option.isdigit() for option in question["options"])


def test_true_false_answers_are_booleans_and_half_are_true():
    questions = of_type(quiz(num_questions=10, question_types=["true_false"]), "true_false")

    assert all(isinstance(q["answer"], bool) for q in questions)
    assert sum(q["answer"] for q in questions) == 5
    assert "options" not in questions[0]


def test_true_statements_are_the_source_sentence_and_false_ones_swap_one_key_term():
    for question in of_type(quiz(num_questions=12, question_types=["true_false"]), "true_false"):
        assert question["source_sentence"] in SENTENCES
        if question["answer"]:
            assert question["question"] == question["source_sentence"]
            continue
        assert question["question"] not in SENTENCES
        before, after = question["source_sentence"].split(), question["question"].split()
        changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
        assert 1 <= len(changed) <= 2
        for _, swapped_in in changed:
            assert swapped_in.strip(".,").lower() in PYTHAGORAS.lower()


def test_questions_are_distinct():
    document = quiz(story_prompt=LONG, num_questions=50, difficulty="hard")

    texts = [q["question"] for q in document["questions"]]
    assert len(set(texts)) == len(texts)


def test_questions_spread_over_the_sentences_before_reusing_one():
    document = quiz(num_questions=6, difficulty="easy")

    assert len({q["source_sentence"] for q in document["questions"]}) == 6


def test_difficulty_changes_the_questions():
    easy = quiz(difficulty="easy", num_questions=6)["questions"]
    hard = quiz(difficulty="hard", num_questions=6)["questions"]

    assert [q["question"] for q in easy] != [q["question"] for q in hard]


def _rank_of_answers(difficulty: str) -> float:
    """Mean position of the asked-about terms in the prompt's salience ranking (0 = most salient)."""
    analysis = analyse(PYTHAGORAS)
    position = {term.key: index for index, term in enumerate(analysis.ranked)}
    document = quiz(difficulty=difficulty, num_questions=6, question_types=["multiple_choice"])
    keys = [" ".join(lemma(w) for w in q["answer"].split()) for q in document["questions"]]
    return sum(position[key] for key in keys) / len(keys)


def test_easy_asks_about_salient_terms_and_hard_about_rare_ones():
    assert _rank_of_answers("easy") < _rank_of_answers("medium") < _rank_of_answers("hard")


def _similarity_to_answer(difficulty: str) -> float:
    """Share of distractors that look like the answer (same number: both plural or both singular)."""
    document = quiz(difficulty=difficulty, num_questions=6, question_types=["multiple_choice"])
    same, total = 0, 0
    for question in document["questions"]:
        plural = question["answer"].endswith("s")
        for option in question["options"]:
            if option != question["answer"]:
                same += option.endswith("s") == plural
                total += 1
    return same / total


def test_hard_distractors_resemble_the_answer_more_than_easy_ones():
    assert _similarity_to_answer("hard") >= _similarity_to_answer("easy")


def test_short_prompt_gives_as_many_questions_as_it_can_and_says_so():
    prompt = "Pythagoras discovered a theorem about right triangles. Euclid wrote a famous book on geometry."

    artifact = run(story_prompt=prompt, num_questions=20)
    produced = len(json.loads(artifact.primary_file.body)["questions"])

    assert 1 <= produced < 20
    assert artifact.summary["requested_questions"] == 20
    assert artifact.summary["produced_questions"] == produced
    assert "note" not in artifact.summary
    assert artifact.summary["notes"][0].startswith("The prompt has 2 sentences that can carry a question; 20 were")


def test_two_usable_sentences_asked_for_five_give_what_they_can_with_the_reasons():
    prompt = (
        "Right triangles\n\n"
        "Pythagoras discovered a theorem about right triangles. Euclid wrote a famous book on geometry."
    )

    artifact = run(story_prompt=prompt, num_questions=5, difficulty="easy")
    document = json.loads(artifact.primary_file.body)
    notes = artifact.summary["notes"]

    assert 1 <= len(document["questions"]) < 5
    assert artifact.summary["produced_questions"] == len(document["questions"])
    assert all(isinstance(note, str) and note.endswith(".") for note in notes)
    assert "The prompt has 2 sentences that can carry a question; 5 were requested" in notes[0]
    assert any("1 line of the prompt was not used" in note for note in notes)  # the title line
    assert any("QuizProvider=bedrock" in note for note in notes)
    assert all(q["source_sentence"] != "Right triangles" for q in document["questions"])


def test_full_quiz_has_no_shortfall_notes():
    summary = run(num_questions=5).summary

    assert "notes" not in summary
    assert "note" not in summary


DEMO_TOPIC = "Pythagoras and right triangles"
"""The welcome page's example: a topic, not content."""


def test_a_topic_prompt_fails_and_says_to_send_the_content_or_configure_a_model():
    with pytest.raises(EngineError) as caught:
        run(story_prompt=DEMO_TOPIC, difficulty="easy")

    message = str(caught.value)
    assert caught.value.permanent is True
    assert message.startswith("the built-in quiz engine only asks about sentences it is given")
    assert "send the content itself as story_prompt" in message
    assert "configure a model provider (e.g. QuizProvider=bedrock)" in message


@pytest.mark.parametrize(
    "prompt",
    [
        "Triangles.",
        "x",
        REFERENCE,
        "The the the and of a.",
        DEMO_TOPIC,
        "Lesson 1: Pythagoras and right triangles.",
        "# Right triangles\n- the hypotenuse\n- the legs\n- the right angle",
    ],
    ids=["one-word", "one-letter", "instruction-only", "stopwords", "topic", "titled-topic", "heading-and-list"],
)
def test_prompt_without_a_complete_sentence_is_a_permanent_error(prompt):
    with pytest.raises(EngineError) as caught:
        run(story_prompt=prompt)

    assert caught.value.permanent is True
    assert "only asks about sentences it is given" in str(caught.value)
    assert "QuizProvider=bedrock" in str(caught.value)


@pytest.mark.parametrize(
    "change",
    [
        {"difficulty": None},
        {"difficulty": "expert"},
        {"num_questions": 0},
        {"num_questions": 51},
        {"num_questions": "5"},
        {"question_types": []},
        {"question_types": ["essay"]},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}",
)
def test_invalid_options_are_a_permanent_error(change):
    data = {"story_prompt": PYTHAGORAS, "difficulty": "medium", **change}
    if change.get("difficulty", "") is None:
        del data["difficulty"]

    with pytest.raises(EngineError) as caught:
        QuizEngine().generate(data, ProgressLog())

    assert caught.value.permanent is True
    assert next(iter(change)) in str(caught.value)


def test_markdown_version_lists_every_question_and_the_answer_key():
    artifact = run(num_questions=6)
    markdown = artifact.file("quiz.md").body.decode()
    document = json.loads(artifact.primary_file.body)

    assert markdown.startswith(f"# {document['title']}\n")
    assert "## Answer key" in markdown
    assert markdown.count("True or false: ") == len(of_type(document, "true_false"))
    for number in range(1, 7):
        assert f"\n{number}. " in markdown


def test_summary_counts_questions_by_type():
    summary = run(num_questions=7).summary

    assert summary["question_types"] == {"multiple_choice": 4, "true_false": 3}
    assert summary["difficulty"] == "medium"


def test_instruction_before_a_colon_leaves_the_content_usable():
    prompt = (
        "Create a quiz about the water cycle: water evaporates from the oceans and rises as vapour. "
        "The vapour cools and forms clouds. Rain falls from the clouds back to the oceans and rivers."
    )

    document = quiz(story_prompt=prompt, num_questions=3)

    assert document["title"] == "Water Cycle"
    assert all(not q["source_sentence"].startswith("Create") for q in document["questions"])
