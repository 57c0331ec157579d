"""Documentation engine: a Markdown document whose structure comes from the prompt."""

from __future__ import annotations

import re
from typing import Any

import pytest

from taskapi.engines import Artifact, EngineError
from taskapi.engines.analysis import analyse
from taskapi.engines.documentation import DocumentationEngine
from tests.unit.engines.conftest import LONG, PYTHAGORAS, REFERENCE, ProgressLog


def run(**request: Any) -> Artifact:
    return DocumentationEngine().generate({"story_prompt": PYTHAGORAS, **request}, ProgressLog())


def markdown(**request: Any) -> str:
    return run(**request).file("document.md").body.decode()


def headings(document: str, level: int = 2) -> list[str]:
    return re.findall(rf"^{'#' * level} (.+)$", document, flags=re.M)


def test_document_has_a_title_overview_sections_key_terms_and_summary():
    document = markdown()
    second = headings(document)

    assert document.startswith("# Pythagorean Theorem and Right Triangle\n\n")
    assert second[0] == "Overview"
    assert second[-2:] == ["Key terms", "Summary"]
    assert len(second) >= 4


def test_every_prompt_sentence_appears_in_a_section():
    document = markdown()

    for sentence in analyse(PYTHAGORAS).sentences:
        assert sentence.text in document


def test_section_headings_are_key_terms_of_their_sections():
    artifact = run()
    document = artifact.file("document.md").body.decode()
    sections = artifact.summary["headings"]

    assert sections
    for heading in sections:
        body = document.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        assert heading.lower() in body.lower()


def test_key_terms_are_explained_by_a_sentence_of_the_prompt():
    document = markdown()
    terms = document.split("## Key terms\n", 1)[1].split("\n## ", 1)[0]
    items = re.findall(r"^- \*\*(.+?)\*\* — (.+)$", terms, flags=re.M)

    assert len(items) >= 5
    assert ("hypotenuse", analyse(PYTHAGORAS).sentences[3].text) in items


def test_summary_quotes_the_most_informative_sentences():
    document = markdown()
    summary = document.split("## Summary\n\n", 1)[1].strip()

    assert summary == " ".join(s.text for s in analyse(PYTHAGORAS).key_sentences(2))
    assert "hypotenuse" in summary


def test_paragraphs_become_sections():
    prompt = (
        "Addition combines two numbers into a sum. Adding zero leaves a number unchanged.\n\n"
        "Subtraction takes one number away from another. The result is called the difference.\n\n"
        "Addition and subtraction are inverse operations. Each one undoes the other."
    )

    artifact = run(story_prompt=prompt)

    assert artifact.summary["sections"] == 3


def test_markdown_headings_in_the_prompt_are_kept():
    prompt = "# Adding\nAddition combines two numbers into a sum.\n# Taking away\nSubtraction finds the difference."

    assert run(story_prompt=prompt).summary["headings"] == ["Adding", "Taking away"]


FILLER = ("This section introduces", "Related topics", "This document introduced", "This document covers")


def test_instruction_prompt_gets_an_outline_that_says_so():
    artifact = run(story_prompt=REFERENCE)
    document = artifact.file("document.md").body.decode()
    notes = artifact.summary["notes"]

    assert document.startswith("# Basic Mathematics Concepts Including Addition and Subtraction\n")
    assert headings(document) == ["Basic mathematics concepts", "Addition", "Subtraction"]
    assert artifact.summary["headings"] == ["Basic mathematics concepts", "Addition", "Subtraction"]
    assert artifact.summary["outline"] is True
    assert notes[0].startswith("Outline only: the prompt names 3 topics but gives no text about them")
    assert "DocumentationProvider=bedrock" in notes[1]
    assert "send the content itself as story_prompt" in notes[1]
    assert "Outline only:" in document  # said in the document too
    assert not [phrase for phrase in FILLER if phrase in document]


@pytest.mark.parametrize(
    ("prompt", "title", "topics"),
    [
        ("Pythagoras and right triangles", "Pythagoras and right triangles", ["Pythagoras", "Right triangles"]),
        (
            "The water cycle: evaporation, condensation and rain.",
            "The water cycle",
            ["Evaporation", "Condensation", "Rain"],
        ),
        ("# Fractions\n- halves\n- quarters", "Fractions", ["Halves", "Quarters"]),
        ("How to use the API", "How to use the API", []),
    ],
    ids=["title", "title-and-list", "heading-and-list", "title-only"],
)
def test_topic_only_prompt_gets_its_title_and_topics_and_nothing_invented(prompt, title, topics):
    artifact = run(story_prompt=prompt)
    document = artifact.file("document.md").body.decode()
    body = [line for line in document.splitlines() if line and not line.startswith(("#", ">"))]

    assert document.startswith(f"# {title}\n")
    assert headings(document) == topics
    assert body == []  # no sentence about a topic: only headings and the outline statement
    assert artifact.summary["outline"] is True
    assert artifact.summary["notes"][0].startswith("Outline only:")
    assert not [phrase for phrase in FILLER if phrase in document]


@pytest.mark.parametrize("prompt", ["x", "The the the and of a."], ids=["one-letter", "stopwords"])
def test_prompt_that_names_nothing_is_a_permanent_error(prompt):
    with pytest.raises(EngineError) as caught:
        run(story_prompt=prompt)

    assert caught.value.permanent is True
    assert "only arranges text it is given" in str(caught.value)
    assert "DocumentationProvider=bedrock" in str(caught.value)


def test_prompt_with_text_is_documented_as_before_and_has_no_outline_notes():
    artifact = run()

    assert "notes" not in artifact.summary
    assert "outline" not in artifact.summary
    assert "Outline only" not in artifact.file("document.md").body.decode()


def test_a_title_line_above_real_text_does_not_make_an_outline():
    artifact = run(story_prompt="Pythagoras and right triangles\n\n" + PYTHAGORAS)

    assert "outline" not in artifact.summary
    assert artifact.summary["key_terms"] >= 5


def test_prompt_text_cannot_inject_markdown():
    prompt = "# Heading\n* not a list * and [a link](http://x) with <script>alert(1)</script> and a|table."

    document = markdown(story_prompt=prompt)

    assert "<script>" not in document
    assert "\\[a link\\]" in document
    assert "\\*" in document


def test_long_prompt_is_sectioned_not_dumped():
    artifact = run(story_prompt=LONG)

    assert artifact.summary["sections"] > 10
    assert artifact.summary["key_terms"] <= 8


def test_language_is_reported():
    assert run(language="German").summary["language"] == "German"


def test_missing_prompt_is_a_permanent_error():
    with pytest.raises(EngineError) as caught:
        DocumentationEngine().generate({"language": "English"}, ProgressLog())

    assert caught.value.permanent is True
    assert "story_prompt" in str(caught.value)
