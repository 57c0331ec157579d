"""The building blocks: sentence splitting, key terms, instruction prompts, formats, artifacts."""

from __future__ import annotations

import pytest

from taskapi.engines import Artifact, ArtifactFile, EngineError
from taskapi.engines.analysis import analyse, topics_of
from taskapi.engines.formats import json_bytes, md_escape, narration_ms, timed_cues, vtt_timestamp
from taskapi.engines.text import lemma, split_clauses, split_sentences
from tests.unit.engines.conftest import PYTHAGORAS, REFERENCE


def test_sentences_split_at_terminal_punctuation():
    assert split_sentences("One is odd. Two is even! Is three odd? Yes.") == [
        "One is odd.",
        "Two is even!",
        "Is three odd?",
        "Yes.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Square corners, e.g. in a house, use it.",
        "Dr. Smith measured 3.14 units.",
        "J. Smith wrote it.",
        "He said it works. and then left.",
    ],
)
def test_abbreviations_initials_decimals_and_lower_case_continuations_do_not_split(text):
    assert split_sentences(text) == [text]


def test_bullets_headings_and_paragraphs_are_separate_blocks():
    analysis = analyse("# Angles\n- A right angle has 90 degrees\n- A straight angle has 180 degrees\n\nThe end.")

    assert [s.text for s in analysis.sentences] == [
        "Angles",
        "A right angle has 90 degrees",
        "A straight angle has 180 degrees",
        "The end.",
    ]
    assert analysis.sentences[0].heading
    assert analysis.sentences[-1].paragraph > analysis.sentences[1].paragraph


def test_hard_wrapped_lines_are_joined():
    analysis = analyse("The hypotenuse is the longest\nside of a right triangle.")

    assert [s.text for s in analysis.sentences] == ["The hypotenuse is the longest side of a right triangle."]


def test_lemma_groups_plural_forms():
    assert lemma("triangles") == lemma("Triangle") == "triangle"
    assert lemma("theories") == "theory"
    assert lemma("boxes") == "box"
    assert lemma("class") == "class"
    assert lemma("90") == "90"


def test_key_terms_include_repeated_phrases_and_skip_function_words():
    analysis = analyse(PYTHAGORAS)
    keys = [t.key for t in analysis.ranked]

    assert keys[0] == "right triangle"
    assert "pythagorean theorem" in keys
    assert "hypotenuse" in keys
    assert not {"the", "is", "and", "of", "called"} & set(keys)


def test_names_keep_their_capital_letter():
    terms = analyse(PYTHAGORAS).terms

    assert terms["pythagorean theorem"].display == "Pythagorean theorem"
    assert terms["bc"].display == "BC"
    assert terms["triangle"].display == "triangle"


def test_roles_tell_nouns_from_verbs_and_modifiers():
    terms = analyse(PYTHAGORAS).terms

    assert terms["hypotenuse"].group == "noun"
    assert terms["longest"].group == "modifier"
    assert terms["lived"].group == "verb"
    assert terms["90"].group == "number"


def test_instruction_prompt_yields_subject_topics_and_title():
    analysis = analyse(REFERENCE)

    assert analysis.subject == "basic mathematics concepts including addition and subtraction"
    assert analysis.topics == ["basic mathematics concepts", "addition", "subtraction"]
    assert analysis.title == "Basic Mathematics Concepts Including Addition and Subtraction"
    assert analysis.content_sentences == []


@pytest.mark.parametrize(
    ("prompt", "subject"),
    [
        ("Make a short lesson on fractions.", "fractions"),
        ("Explain photosynthesis to children", "photosynthesis to children"),
        ("A video about the solar system", "the solar system"),
    ],
)
def test_instruction_forms(prompt, subject):
    assert analyse(prompt).subject == subject


def test_instructions_are_only_recognised_in_english():
    assert analyse("Explain photosynthesis", "German").subject is None


def test_topics_split_on_lists_and_drop_articles():
    assert topics_of("the water cycle, evaporation and the rain") == ["water cycle", "evaporation", "rain"]


def test_clauses_are_merged_until_they_read_as_phrases():
    assert split_clauses("First, we add the numbers; then, we carry the tens.") == [
        "First, we add the numbers;",
        "then, we carry the tens.",
    ]


def test_other_languages_use_their_own_function_words():
    keys = [t.key for t in analyse("Los triángulos tienen tres lados. Los lados forman ángulos.", "Spanish").ranked]

    assert "los" not in keys
    assert "lado" in keys


def test_vtt_timestamps():
    assert vtt_timestamp(0) == "00:00:00.000"
    assert vtt_timestamp(3_723_456) == "01:02:03.456"


def test_cues_share_their_span_in_proportion_and_end_exactly():
    cues = timed_cues("One two three four. Five six seven eight.", 1_000, 9_000, max_words=4)

    assert [(c.start_ms, c.end_ms, c.text) for c in cues] == [
        (1_000, 5_000, "One two three four."),
        (5_000, 9_000, "Five six seven eight."),
    ]


def test_narration_time():
    assert narration_ms(150) == 60_000
    assert narration_ms(150, 2.0) == 30_000
    assert narration_ms(1) == 3_000


def test_markdown_escaping():
    assert md_escape("a *b* _c_ [d](e) <f> |g|") == r"a \*b\* \_c\_ \[d\](e) \<f\> \|g\|"
    assert md_escape("# not a heading") == r"\# not a heading"
    assert md_escape("1. not a list") == r"1\. not a list"


def test_json_bytes_are_stable_and_keep_unicode():
    assert json_bytes({"b": 1, "a": "é"}) == b'{\n  "b": 1,\n  "a": "\xc3\xa9"\n}\n'


def test_artifact_checks_its_primary_and_file_names():
    file = ArtifactFile("quiz.json", "application/json", b"{}")

    with pytest.raises(ValueError, match="primary"):
        Artifact((file,), "other.json", {})
    with pytest.raises(ValueError, match="repeat"):
        Artifact((file, file), "quiz.json", {})
    with pytest.raises(ValueError, match="plain file name"):
        ArtifactFile("../quiz.json", "application/json", b"{}")
    with pytest.raises(KeyError):
        Artifact((file,), "quiz.json", {}).file("missing.json")


def test_engine_error_carries_permanence():
    error = EngineError("generator unavailable", permanent=False)

    assert error.permanent is False
    assert str(error) == "generator unavailable"
