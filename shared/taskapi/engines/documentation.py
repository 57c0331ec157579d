"""Documentation engine: one Markdown document (document.md) structured from the prompt.

Sections follow the prompt's own structure where it has one (Markdown headings, then paragraphs);
otherwise neighbouring sentences are grouped, a new section starting where the key terms change.
Each section is headed by its most salient term. An overview opens the document; a list of key terms
(each with the sentence that best explains it) and an extractive summary close it.

The built-in engine has no model: it arranges text it is given and says nothing of its own about a
topic. A prompt that only names topics (an instruction such as "Create a guide about X, Y and Z", a
title, headings or a list of terms, with no complete sentence) gets an outline: the title and one
heading per topic, and a statement, in the document and in the summary's `notes`, that it is an
outline only and how to get a written document. A prompt that names nothing is a permanent error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskapi.engines.analysis import Analysis, analyse, outline_notes
from taskapi.engines.base import Artifact, ArtifactFile, EngineError, ProgressCallback
from taskapi.engines.formats import MARKDOWN, md_escape
from taskapi.engines.inputs import is_english, language_of, parse_request
from taskapi.engines.terms import Term
from taskapi.engines.text import Sentence, capitalize_first, ensure_period
from taskapi.models.domain import TaskType
from taskapi.models.requests import DocumentationRequestData

MAX_SECTION_SENTENCES = 3
MAX_KEY_TERMS = 8
_DEFINES_AFTER = re.compile(r"^\s+(?:is|are|means|refers\s+to|describes|states)\b", re.I)
_DEFINED_BEFORE = re.compile(r"\b(?:called|named|known\s+as)(?:\s+(?:the|a|an))?\s+$", re.I)
_NOUNISH = ("phrase", "name", "noun", "number")
LABELS = {"contents": "Contents", "overview": "Overview", "terms": "Key terms", "summary": "Summary"}
"""Fixed headings, in English whatever the language (the prompt's own text is never translated)."""
PROVIDER_HINT = "configure a model provider (e.g. DocumentationProvider=bedrock)"


@dataclass
class Section:
    heading: str
    sentences: list[Sentence]


class DocumentationEngine:
    task_type = TaskType.DOCUMENTATION

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(DocumentationRequestData, request_data)
        language = language_of(data.language)
        english = is_english(language)

        progress(10, "Reading the prompt")
        analysis = analyse(data.prompt, language)
        if not analysis.has_text:
            return _outline(analysis, language, progress)

        progress(35, "Outlining sections")
        sections = _sections(analysis, english)

        progress(60, f"Writing {len(sections)} sections")
        terms = _key_terms(analysis)
        summary_sentences = analysis.key_sentences(3 if len(analysis.content_sentences) > 6 else 2)
        labels = LABELS
        lines = [f"# {md_escape(analysis.title)}", ""]
        closing = [labels["terms"]] if terms else []
        if len(sections) >= 3:
            lines += [f"## {labels['contents']}", ""]
            for heading in [labels["overview"], *(s.heading for s in sections), *closing, labels["summary"]]:
                lines.append(f"- [{md_escape(heading)}](#{_anchor(heading)})")
            lines.append("")
        lines += [f"## {labels['overview']}", "", md_escape(_overview(analysis, sections, english)), ""]
        for section in sections:
            lines += [f"## {md_escape(section.heading)}", ""]
            body = " ".join(s.text for s in section.sentences)
            lines += [md_escape(body), ""]

        progress(85, "Listing key terms")
        if terms:
            lines += [f"## {labels['terms']}", ""]
            for label, sentence in terms:
                explanation = f" — {md_escape(sentence.text)}" if sentence is not None else ""
                lines.append(f"- **{md_escape(label)}**{explanation}")
            lines.append("")
        summary_text = " ".join(s.text for s in summary_sentences)
        lines += [f"## {labels['summary']}", "", md_escape(summary_text), ""]
        document = "\n".join(lines).rstrip("\n") + "\n"

        return Artifact(
            files=(ArtifactFile("document.md", MARKDOWN, document.encode()),),
            primary="document.md",
            summary={
                "title": analysis.title,
                "language": language,
                "sections": len(sections),
                "headings": [s.heading for s in sections],
                "key_terms": len(terms),
                "words": len(document.split()),
            },
        )


def _outline(analysis: Analysis, language: str, progress: ProgressCallback) -> Artifact:
    """What a prompt without complete sentences honestly supports: its title and topics."""
    title, topics = analysis.outline()
    if not title:
        raise EngineError(
            "the built-in documentation engine only arranges text it is given, and this prompt names no "
            f"topic and gives no text; send the content itself as story_prompt, or {PROVIDER_HINT}",
            permanent=True,
        )
    progress(50, "Outlining topics")
    notes = outline_notes(topics, "document", "heading", "a written document", PROVIDER_HINT)
    lines = [f"# {md_escape(title)}", ""]
    lines += [f"> {md_escape(notes[0])}", ">", f"> {md_escape(notes[1])}", ""]
    for topic in topics:
        lines += [f"## {md_escape(topic)}", ""]
    document = "\n".join(lines).rstrip("\n") + "\n"
    return Artifact(
        files=(ArtifactFile("document.md", MARKDOWN, document.encode()),),
        primary="document.md",
        summary={
            "title": title,
            "language": language,
            "sections": len(topics),
            "headings": topics,
            "key_terms": 0,
            "words": len(document.split()),
            "outline": True,
            "notes": notes,
        },
    )


def _sections(analysis: Analysis, english: bool) -> list[Section]:
    content = analysis.content_sentences
    groups: list[tuple[str | None, list[Sentence]]] = []
    headings = {s.index: s.text for s in analysis.sentences if s.heading}
    if headings:
        current: tuple[str | None, list[Sentence]] = (None, [])
        for sentence in analysis.sentences:
            if sentence.heading:
                if current[1] or current[0]:
                    groups.append(current)
                current = (sentence.text, [])
            elif not sentence.instruction:
                current[1].append(sentence)
        groups.append(current)
        groups = [g for g in groups if g[1]]
    elif len({s.paragraph for s in content}) > 1:
        by_paragraph: dict[int, list[Sentence]] = {}
        for sentence in content:
            by_paragraph.setdefault(sentence.paragraph, []).append(sentence)
        groups = [(None, group) for group in by_paragraph.values()]
    else:
        groups = [(None, group) for group in _topic_runs(content)]

    sections: list[Section] = []
    used: list[str] = []
    for heading, sentences in groups:
        if heading is None:
            heading = _heading_for(analysis, sentences, used) or (
                analysis.title if analysis.title.lower() not in used else f"{analysis.title} ({len(sections) + 1})"
            )
        used.append(heading.lower())
        sections.append(Section(heading, sentences))
    return sections


def _topic_runs(sentences: list[Sentence]) -> list[list[Sentence]]:
    """Neighbouring sentences stay together while they share a key term (up to a few sentences)."""
    runs: list[list[Sentence]] = []
    for sentence in sentences:
        if runs:
            run = runs[-1]
            shared = set(sentence.term_keys()) & {k for s in run for k in s.term_keys()}
            if len(run) < 2 or (shared and len(run) < MAX_SECTION_SENTENCES):
                run.append(sentence)
                continue
        runs.append([sentence])
    if len(runs) > 1 and len(runs[-1]) == 1 and len(runs[-2]) < MAX_SECTION_SENTENCES:
        runs[-2].extend(runs.pop())
    return runs


def _heading_for(analysis: Analysis, sentences: list[Sentence], used: list[str]) -> str | None:
    keys = {k for s in sentences for k in s.term_keys()}
    for kinds in (_NOUNISH, ("modifier", "verb")):
        for term in analysis.ranked:
            if term.key in keys and term.group in kinds and capitalize_first(term.label).lower() not in used:
                return capitalize_first(term.label)
    return None


def _key_terms(analysis: Analysis) -> list[tuple[str, Sentence | None]]:
    chosen: list[tuple[Term, Sentence | None]] = []
    for term in analysis.top_terms(MAX_KEY_TERMS * 2):
        if term.group not in _NOUNISH:
            continue
        chosen.append((term, _explaining_sentence(analysis, term)))
        if len(chosen) == MAX_KEY_TERMS:
            break
    if not chosen:
        chosen = [(t, None) for t in analysis.top_terms(MAX_KEY_TERMS)]
    return sorted(((t.label, s) for t, s in chosen), key=lambda pair: pair[0].lower())


def _explaining_sentence(analysis: Analysis, term: Term) -> Sentence | None:
    """A sentence that defines the term ("The hypotenuse is …", "… is called the hypotenuse"),
    else the first one that uses it."""
    using = [s for s in analysis.content_sentences if term.key in s.term_keys()]
    for sentence in using:
        for _, first, last in (span for span in sentence.term_spans if span[0] == term.key):
            after = sentence.text[sentence.tokens[last].end :][:24]
            before = sentence.text[: sentence.tokens[first].start][-16:]
            if _DEFINES_AFTER.match(after) or _DEFINED_BEFORE.search(before):
                return sentence
    return using[0] if using else None


def _overview(analysis: Analysis, sections: list[Section], english: bool) -> str:
    if not english:
        lead = analysis.key_sentences(1)
        return lead[0].text if lead else ensure_period(capitalize_first(analysis.subject_phrase))
    listed = _and_list([s.heading for s in sections])
    count = "one section" if len(sections) == 1 else f"{len(sections)} sections"
    return f"This document covers {analysis.subject_phrase}, in {count}: {listed}."


def _anchor(heading: str) -> str:
    """GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
