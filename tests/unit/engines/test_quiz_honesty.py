"""The built-in quiz is honest: every question is a complete sentence of the prompt, a false
statement swaps exactly one term for another term of the same kind, a multiple-choice question
blanks one term and offers only terms of the same kind, and a name is never written lower case.

The checks below read the prompt's text themselves (what is a number, what is only ever written with
a capital letter) rather than the engine's own analysis."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

import pytest

from taskapi.engines.analysis import analyse
from taskapi.engines.quiz import BLANK, QuizEngine
from tests.unit.engines.conftest import PYTHAGORAS, ProgressLog

PYTHAGORAS_TEXT = [
    "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides.",
    "Pythagoras of Samos is credited with the theorem.",
    "The hypotenuse is the longest side of a right triangle.",
    "A triangle with sides 3, 4 and 5 is a right triangle.",
]
HISTORY = [
    "The Roman Empire was founded in 27 BC, when Octavian took the name Augustus.",
    "Augustus ruled Rome for 41 years and reformed the army.",
    "The empire reached its greatest extent under Trajan in 117 AD.",
    "Roman engineers built roads, aqueducts and bridges across the provinces.",
    "Latin was the language of the army, the courts and the law.",
    "The Western Empire fell in 476 AD, when Odoacer deposed the last emperor.",
    "The Eastern Empire, with its capital at Constantinople, lasted until 1453.",
]
BIOLOGY = [
    "Photosynthesis takes place in the chloroplasts of plant cells.",
    "Chlorophyll absorbs light energy from the sun.",
    "The plant uses this energy to turn carbon dioxide and water into glucose.",
    "Oxygen is released as a by-product of photosynthesis.",
    "A cell is the smallest unit of life.",
    "The nucleus contains the genetic material of the cell.",
    "Animals depend on plants for food and oxygen.",
]
NUMBERS = [
    "Mount Everest is 8849 metres high.",
    "The Mariana Trench reaches a depth of 10994 metres.",
    "The Nile is about 6650 kilometres long, and the Amazon is about 6400 kilometres long.",
    "Light travels at about 300000 kilometres per second.",
    "The Moon is 384400 kilometres from the Earth.",
    "A year on Mars lasts 687 days.",
    "Water boils at 100 degrees and freezes at 0 degrees.",
]
FRENCH = [
    "La photosynthèse est le processus par lequel les plantes fabriquent leur nourriture.",
    "Les feuilles contiennent la chlorophylle, qui capte la lumière du soleil.",
    "La plante absorbe le dioxyde de carbone par les stomates.",
    "Les racines puisent l'eau et les sels minéraux dans le sol.",
    "Le glucose est une source d'énergie pour la plante.",
    "La respiration a lieu le jour et la nuit.",
    "Le botaniste Jan Ingenhousz a montré en 1779 le rôle de la lumière.",
]
PROMPTS: dict[str, tuple[str, list[str], str]] = {
    # name: (prompt, its sentences, language). Each prompt opens with a title or a heading that
    # must never carry a question.
    "pythagoras": (f"Pythagoras and right triangles\n\n{' '.join(PYTHAGORAS_TEXT)}", PYTHAGORAS_TEXT, "English"),
    "reference": (PYTHAGORAS, [s.text for s in analyse(PYTHAGORAS).sentences], "English"),
    "history": ("# The Roman Empire\n" + " ".join(HISTORY), HISTORY, "English"),
    "biology": ("Cells and photosynthesis\n\n" + " ".join(BIOLOGY), BIOLOGY, "English"),
    "numbers": ("# Some numbers of the world\n\n" + "\n".join(NUMBERS), NUMBERS, "English"),
    "french": ("# La photosynthèse\n" + " ".join(FRENCH), FRENCH, "French"),
}
_WORD = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")


def quiz(prompt: str, language: str, difficulty: str, **request: Any) -> list[dict[str, Any]]:
    data = {"story_prompt": prompt, "language": language, "difficulty": difficulty, **request}
    return json.loads(QuizEngine().generate(data, ProgressLog()).file("quiz.json").body)["questions"]


def written_in(prompt: str, text: str, at_start: bool) -> bool:
    """The text as the prompt writes it (only its first letter may differ, at a sentence start)."""
    variants = [text, text[:1].lower() + text[1:]] if at_start else [text]
    return any(re.search(rf"(?<!\w){re.escape(variant)}(?!\w)", prompt) for variant in variants)


def kind(prompt: str, text: str) -> str:
    """What a term is, from the prompt's own writing: a number; a common word (its head written
    lower case somewhere); a name (written with a capital letter, not only at sentence starts)."""
    head = text.split()[-1]
    if head[:1].isdigit():
        return "number"
    lower = head[:1].lower() + head[1:]
    if re.search(rf"(?<!\w){re.escape(lower)}(?!\w)", prompt):
        return "common"
    if re.search(rf"(?<![.!?\n])[ ,(]{re.escape(head)}(?!\w)", prompt):
        return "name"
    return "capitalised only at sentence starts: cannot tell"


def swapped(source: str, statement: str) -> tuple[str, str]:
    """The one term a statement swaps (the same swap wherever the term occurs), else fail."""
    before, after = _WORD.findall(source), _WORD.findall(statement)
    changes = {
        (" ".join(before[i1:i2]), " ".join(after[j1:j2]))
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
        if op != "equal"
    }
    assert len(changes) == 1, f"{statement!r} changes {sorted(changes)} in {source!r}"
    old, new = changes.pop()
    assert old, f"{statement!r} adds words to {source!r}"
    assert new, f"{statement!r} drops words of {source!r}"
    return old, new


def check_honest(prompt: str, sentences: list[str], questions: list[dict[str, Any]]) -> None:
    for question in questions:
        source, text = question["source_sentence"], question["question"]
        assert source in sentences, f"not a complete sentence of the prompt: {source!r}"
        if question["type"] == "multiple_choice":
            assert BLANK in text
            assert text.replace(BLANK, question["answer"]) == source
            at_start = text.startswith(BLANK)
            for option in question["options"]:
                assert written_in(prompt, option, at_start), f"{option!r} is not written so in the prompt"
                assert kind(prompt, option) == kind(prompt, question["answer"]), (option, question)
        elif question["answer"] is True:
            assert text == source
        else:
            old, new = swapped(source, text)
            at_start = source.startswith(old)
            assert written_in(prompt, new, at_start), f"{new!r} is not written so in the prompt"
            assert kind(prompt, old) == kind(prompt, new), f"{old!r} -> {new!r} in {source!r}"


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
@pytest.mark.parametrize("name", list(PROMPTS))
def test_every_question_is_a_sentence_of_the_prompt_with_one_term_of_the_same_kind_changed(name, difficulty):
    prompt, sentences, language = PROMPTS[name]

    questions = quiz(prompt, language, difficulty, num_questions=20)

    assert len(questions) >= 8
    assert {q["type"] for q in questions} == {"multiple_choice", "true_false"}
    assert any(q["answer"] is False for q in questions)
    check_honest(prompt, sentences, questions)


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_the_pythagoras_text_never_turns_a_name_into_a_common_noun(difficulty):
    prompt, sentences, _ = PROMPTS["pythagoras"]

    questions = quiz(prompt, "English", difficulty, num_questions=20)
    shown = [q["question"] for q in questions] + [o for q in questions for o in q.get("options", [])]

    assert questions
    assert not [text for text in shown if "pythagoras" in text]  # never written lower case
    assert "Pythagoras" not in [o for q in questions for o in q.get("options", [])]  # nor offered as a term
    assert "A triangle with sides 3, 4 and 5 is a Pythagoras." not in shown
    assert all(q["source_sentence"] in sentences for q in questions)  # never the title line
    check_honest(prompt, sentences, questions)


def test_the_checks_tell_the_old_engines_swap_from_a_fair_one():
    """What the old quiz wrote for the Pythagoras text fails these checks; a fair swap passes."""
    prompt = PROMPTS["pythagoras"][0]
    source = "A triangle with sides 3, 4 and 5 is a right triangle."
    old_engine = (source, source.replace("right triangle", "pythagoras"))
    fair = ("Pythagoras of Samos is credited with the theorem.", "Pythagoras of Samos is credited with the hypotenuse.")

    old, new = swapped(*old_engine)
    assert (old, new) == ("right triangle", "pythagoras")
    assert not written_in(prompt, new, at_start=False)  # a name written lower case
    assert kind(prompt, new) != kind(prompt, old)
    old, new = swapped(*fair)
    assert kind(prompt, old) == kind(prompt, new) == "common"
    assert kind(prompt, "Samos") == "name"
    assert kind(prompt, "Pythagoras") != kind(prompt, "theorem")
    with pytest.raises(AssertionError):
        swapped("In a right triangle, the sum is two.", "In a left triangle, the sum is three.")
