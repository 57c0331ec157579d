"""Plain-Python reading of a prompt, shared by the built-in engines: paragraphs, sentences, words,
key terms (single words and repeated two-word phrases) and, for an instruction such as "Create a
video about X", the subject X.

Deterministic by construction: nothing here iterates over a set of strings (their order changes with
PYTHONHASHSEED); dicts keep insertion order and every ranking has a positional tie-break.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import pairwise

from taskapi.engines.language import is_english, stopwords_for
from taskapi.engines.terms import Term, collect_terms, is_candidate
from taskapi.engines.text import (
    Sentence,
    capitalize_first,
    split_blocks,
    split_sentences,
    title_case,
    tokenize,
    words,
)

_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:"
    r"(?:create|make|generate|write|produce|build|prepare|design|develop|draft|compose|give)\b[^.!?]*?"
    r"\b(?:about|on|covering|explaining|describing|introducing|regarding|that\s+explains|that\s+covers|"
    r"to\s+explain|to\s+teach|teaching|for)\s+"
    r"|(?:an?\s+)?(?:[\w-]+\s+){0,3}?(?:video|lesson|quiz|document|documentation|guide|tutorial|course|"
    r"presentation|animation|explainer)\s+(?:about|on|covering|explaining|introducing)\s+"
    r"|(?:explain|teach|introduce|describe|present)\s+"
    r")(?P<subject>\S.*)$",
    re.IGNORECASE,
)
_TOPIC_BREAK = re.compile(r"\s*(?:,|;|&|\band\b|\bor\b|\bincluding\b|\bsuch\s+as\b|\bas\s+well\s+as\b)\s*", re.I)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|some|basic\s+concepts\s+of|the\s+basics\s+of)\s+", re.I)


@dataclass
class Analysis:
    text: str
    english: bool
    sentences: list[Sentence]
    terms: dict[str, Term]
    ranked: list[Term]
    """Terms by salience, most salient first."""
    subject: str | None
    """What an instruction prompt asks about ("basic mathematics concepts including …"), if any."""
    topics: list[str]
    title: str

    @property
    def subject_phrase(self) -> str:
        """What the text is about, for use inside a sentence (the title is capitalised)."""
        if self.subject:
            return self.subject
        if not self.english:
            return self.title
        top = sorted(self.top_terms(2, kinds=("name", "phrase", "word")), key=lambda t: (t.first_sentence, t.key))
        return " and ".join(t.display for t in top) or self.title

    @property
    def content_sentences(self) -> list[Sentence]:
        """Sentences that say something (not the instruction, not a heading)."""
        return [s for s in self.sentences if not s.instruction and not s.heading]

    @property
    def word_count(self) -> int:
        return sum(s.word_count for s in self.sentences)

    def top_terms(self, limit: int, kinds: tuple[str, ...] = ("name", "phrase", "word", "number")) -> list[Term]:
        chosen: list[Term] = []
        covered: list[str] = []
        for term in self.ranked:
            if term.kind not in kinds:
                continue
            # A single word already inside a chosen phrase adds nothing ("triangle" after "right triangle").
            parts = term.key.split()
            if any(part in covered for part in parts) or any(term.key in c.split() for c in covered):
                continue
            chosen.append(term)
            covered.extend([term.key, *parts])
            if len(chosen) == limit:
                break
        return chosen

    def terms_in(self, text: str) -> list[Term]:
        """Key terms (words and known phrases) used in any text, most salient first."""
        tokens = tokenize(text)
        keys = {t.lemma for t in tokens} | {f"{a.lemma} {b.lemma}" for a, b in pairwise(tokens)}
        return [term for term in self.ranked if term.key in keys]

    def sentence_score(self, sentence: Sentence) -> float:
        keys = sentence.term_keys()
        if not keys:
            return 0.0
        weight = sum(self.terms[key].salience for key in keys)
        return weight / math.sqrt(len(sentence.tokens) + 1)

    def key_sentences(self, limit: int) -> list[Sentence]:
        """The most informative content sentences, in text order (an extractive summary)."""
        content = self.content_sentences
        ranked = sorted(content, key=lambda s: (-self.sentence_score(s), s.index))[:limit]
        return sorted(ranked, key=lambda s: s.index)


def _instruction_subject(sentence: str) -> tuple[str, int] | None:
    match = _INSTRUCTION.match(sentence)
    if match is None:
        return None
    subject = match.group("subject").split(": ")[0].rstrip(" .!?…:")
    if not subject:
        return None
    return subject, match.start("subject")


def topics_of(subject: str) -> list[str]:
    """ "basic mathematics concepts including addition and subtraction" → the three topics."""
    topics: list[str] = []
    for piece in _TOPIC_BREAK.split(subject):
        piece = _LEADING_ARTICLE.sub("", piece.strip(" .:")).strip()
        if piece and any(is_candidate(t) for t in tokenize(piece)) and piece.lower() not in (t.lower() for t in topics):
            topics.append(piece)
    return topics


def analyse(text: str, language: str = "English") -> Analysis:
    english = is_english(language)
    stopwords = stopwords_for(language)
    sentences: list[Sentence] = []
    for paragraph, block, heading in split_blocks(text):
        for piece in [block] if heading else split_sentences(block):
            found = None if heading or not english else _instruction_subject(piece)
            rest = ""
            if found is not None and ": " in piece[found[1] :]:
                # "Create a quiz about the water cycle: water evaporates…" — the part after the colon
                # is content, not instruction.
                cut = piece.index(": ", found[1])
                piece, rest = piece[: cut + 1], capitalize_first(piece[cut + 2 :].strip())
            sentence = Sentence(len(sentences), paragraph, piece, tokenize(piece), heading=heading)
            if found is not None:
                sentence.instruction = True
                sentence.focus_start = found[1]
            for part in (sentence, Sentence(0, paragraph, rest, tokenize(rest))):
                if part.tokens:
                    sentences.append(part)
    for index, sentence in enumerate(sentences):
        sentence.index = index

    terms = collect_terms(sentences, stopwords)
    ranked = sorted(terms.values(), key=lambda t: (-t.salience, t.first_sentence, t.key))
    subject = next((_instruction_subject(s.text) for s in sentences if s.instruction), None)
    subject_text = subject[0] if subject else None
    topics = topics_of(subject_text) if subject_text else []
    analysis = Analysis(text, english, sentences, terms, ranked, subject_text, topics, "")
    analysis.title = _title(analysis)
    return analysis


def _title(analysis: Analysis) -> str:
    if analysis.subject:
        return title_case(_LEADING_ARTICLE.sub("", analysis.subject))
    headings = [s.text for s in analysis.sentences if s.heading]
    if headings:
        return headings[0]
    if not analysis.english:
        # Joining terms needs a conjunction; the prompt's first words need none.
        first = analysis.sentences[0].text.rstrip(" .!?…:;,") if analysis.sentences else ""
        cut = first.split()
        return capitalize_first(" ".join(cut[:8])) + ("…" if len(cut) > 8 else "") if cut else "Untitled"
    top = analysis.top_terms(2, kinds=("name", "phrase", "word"))
    if top:
        top = sorted(top, key=lambda t: (t.first_sentence, t.key))
        return " and ".join(title_case(t.display) for t in top)
    return title_case(" ".join(words(analysis.text)[:8])) or "Untitled"
